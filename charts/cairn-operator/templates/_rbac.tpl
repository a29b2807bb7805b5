{{/*
Rules of the operator's (Cluster)Role: exactly what the operator reads and writes, the same list as
operator/src/rbac.rs (`operator_rules`, minus the Lease rule below). The chart tests fail when the
two differ.
*/}}
{{- define "cairn-operator.rules" -}}
# RegistryClusters: watched and read; only their status is written.
- apiGroups: ["cairn.dev"]
  resources: ["registryclusters"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["cairn.dev"]
  resources: ["registryclusters/status"]
  verbs: ["patch"]
# Objects created and owned per RegistryCluster, written with server-side apply (which needs
# create for a new object and patch afterwards). Owned objects are removed by garbage collection.
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services", "configmaps", "serviceaccounts"]
  verbs: ["create", "patch"]
# The generated auth key is read back so it never changes.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch"]
# The nodes' pod-discovery Role and RoleBinding.
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["create", "patch"]
# Registry pods: observed, and deleted one at a time for quorum-aware rolling updates. The Role the
# operator creates grants the nodes get/list/watch on pods (member discovery), which Kubernetes only
# allows to someone who holds those permissions.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "delete"]
# Optional objects are deleted when the spec stops asking for them.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["get", "create", "patch", "delete"]
# Events about RegistryClusters.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
Leader election: the operator's own Lease in the release namespace. `create` cannot be limited to a
name (the object does not exist yet); reading and renewing are limited to the operator's Lease.
*/}}
{{- define "cairn-operator.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ .Values.leaderElection.leaseName | quote }}]
  verbs: ["get", "update"]
{{- end }}
