//! `RegistryCluster` spec: what a user asks for. Validation lives in the schema (ranges, patterns,
//! enums, CEL rules with messages) so the API server rejects a bad spec before the operator sees it;
//! [`crate::validate`] repeats the checks that matter for safety.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, EnvVar, LocalObjectReference, ResourceRequirements, Toleration};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::RegistryClusterStatus;

/// Desired state of a Cairn registry cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cairn.dev",
    version = "v1alpha1",
    kind = "RegistryCluster",
    namespaced,
    shortname = "regc",
    category = "cairn",
    status = "RegistryClusterStatus",
    derive = "PartialEq",
    doc = "A Cairn registry cluster (Nacos-compatible service registry and config center) run as a StatefulSet \
           whose Raft membership the operator manages one member at a time.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".spec.replicas", description = "Desired members"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.ready", description = "Ready pods / desired"),
    printcolumn(name = "Leader", type_ = "string", json_path = ".status.leader", description = "Pod holding Raft leadership"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase", description = "Summary of the cluster state"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 52").message(
        "metadata.name must be at most 52 characters: it names the StatefulSet, whose pods carry a \
         controller-revision-hash label of at most 63 characters"
    ),
)]
#[serde(rename_all = "camelCase")]
pub struct RegistryClusterSpec {
    /// Number of Raft members (pods). Odd, 1 to 9: Raft needs a majority, and an even count tolerates no more
    /// failures than the odd count below it. Changed one member at a time by the operator.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 9))]
    #[x_kube(validation = Rule::new("self % 2 == 1").message(
        "replicas must be odd (1, 3, 5, 7 or 9): an even member count tolerates no more failures than the odd count below it"
    ))]
    pub replicas: i32,

    /// Container image of `cairn-node`. Defaults to the operator's `--default-node-image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// Image pull policy of the node container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,

    /// Secrets for pulling the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// CPU/memory requests and limits of the node container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Persistent storage of each member (Raft log and state machine).
    #[serde(default)]
    pub storage: StorageSpec,

    /// Ports of each node. Immutable: member addresses include the port.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message(
        "ports are immutable: Raft member addresses include the HTTP port"
    ))]
    pub ports: PortsSpec,

    /// Node configuration, passed to `cairn-node` as `CAIRN_*` environment variables through a ConfigMap.
    #[serde(default)]
    pub node: NodeConfig,

    /// Overrides merged into the pod template.
    #[serde(default)]
    pub pod_template: PodTemplateOverrides,

    /// How pods are replaced when the pod template changes.
    #[serde(default)]
    pub update_strategy: UpdateStrategy,

    /// PodDisruptionBudget of the cluster's pods.
    #[serde(default)]
    pub pdb: PdbSpec,

    /// Prometheus Operator integration.
    #[serde(default)]
    pub monitoring: MonitoringSpec,

    /// When true the operator only refreshes status: it applies no object and changes no membership.
    #[serde(default)]
    pub paused: bool,

    /// DNS suffix of the Kubernetes cluster, used in member addresses. Immutable.
    #[serde(default = "default_cluster_domain")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf").message(
        "clusterDomain is immutable: Raft member addresses include it"
    ))]
    pub cluster_domain: String,
}

/// Image pull policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when the image is not on the node.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// Persistent storage of each member.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "has(self.storageClassName) == has(oldSelf.storageClassName) && \
     (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)"
).message("storage.storageClassName is immutable: StatefulSet volume claim templates cannot change"))]
pub struct StorageSpec {
    /// Size of each member's PersistentVolumeClaim (a Kubernetes quantity such as `1Gi`). Immutable.
    #[serde(default = "default_storage_size")]
    #[schemars(length(min = 1, max = 32), regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message(
        "storage.size is immutable: StatefulSet volume claim templates cannot change (expand the PVCs directly)"
    ))]
    pub size: String,

    /// StorageClass of the claims; absent = the cluster's default class. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,

    /// What happens to the claims when the cluster is deleted or scaled down.
    #[serde(default)]
    pub retention: RetentionSpec,
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self { size: default_storage_size(), storage_class_name: None, retention: RetentionSpec::default() }
    }
}

/// PersistentVolumeClaim retention (the StatefulSet's `persistentVolumeClaimRetentionPolicy`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionSpec {
    /// Claims of all members when the RegistryCluster is deleted.
    #[serde(default)]
    pub when_deleted: RetentionPolicy,
    /// The claim of a member removed by scaling down. `Delete` makes a later scale-up start that member empty.
    #[serde(default)]
    pub when_scaled: RetentionPolicy,
}

/// Keep or delete claims.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum RetentionPolicy {
    /// Keep the claims (and the data).
    #[default]
    Retain,
    /// Delete the claims.
    Delete,
}

impl RetentionPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retain => "Retain",
            Self::Delete => "Delete",
        }
    }
}

/// Ports of each node: HTTP `http`, client gRPC `http + 1000`, cluster (Raft) gRPC `http + 1001`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortsSpec {
    /// HTTP port P; the node also listens on P+1000 (client gRPC) and P+1001 (Raft).
    #[serde(default = "default_http_port")]
    #[schemars(range(min = 1024, max = 64534))]
    pub http: i32,
}

impl Default for PortsSpec {
    fn default() -> Self {
        Self { http: default_http_port() }
    }
}

impl PortsSpec {
    /// Client gRPC port (P+1000).
    pub fn grpc(&self) -> i32 {
        self.http + 1000
    }
    /// Cluster gRPC (Raft) port (P+1001).
    pub fn raft(&self) -> i32 {
        self.http + 1001
    }
}

/// Node configuration: typed common settings plus any other `CAIRN_*` variable.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NodeConfig {
    /// Log filter (`CAIRN_LOG`, tracing EnvFilter syntax), e.g. `info` or `cairn_node=debug,info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub log: Option<String>,
    /// Largest HTTP body / gRPC message in bytes (`CAIRN_MAX_BODY_BYTES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024, max = 1073741824))]
    pub max_body_bytes: Option<i64>,
    /// Raft snapshot every n log entries (`CAIRN_RAFT_SNAPSHOT_EVERY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100))]
    pub raft_snapshot_every: Option<i64>,
    /// Idle gRPC connections are probed after this many ms (`CAIRN_CLIENT_IDLE_MS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1000, max = 3600000))]
    pub client_idle_ms: Option<i64>,
    /// Time given to clients to leave on shutdown, in ms (`CAIRN_SHUTDOWN_GRACE_MS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 600000))]
    pub shutdown_grace_ms: Option<i64>,
    /// Any other node setting as `CAIRN_<FLAG>: value`. Settings the operator owns (members, addresses,
    /// ports, data directory, auto-join) are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(
        validation = Rule::new("self.all(k, k.matches('^CAIRN_[A-Z0-9_]+$'))")
            .message("node.extraEnv keys must look like CAIRN_<FLAG> (upper case letters, digits, _)"),
        validation = Rule::new(
            "self.all(k, !(k in ['CAIRN_MEMBERS', 'CAIRN_PEER_DOMAIN', 'CAIRN_ADVERTISE_HOST', 'CAIRN_AUTO_JOIN', \
             'CAIRN_DATA_DIR', 'CAIRN_HTTP_PORT', 'CAIRN_BIND', 'CAIRN_NAMESPACE', 'CAIRN_BOOTSTRAP_EXPECT']))"
        )
        .message("node.extraEnv must not set CAIRN_MEMBERS, CAIRN_PEER_DOMAIN, CAIRN_ADVERTISE_HOST, CAIRN_AUTO_JOIN, \
                  CAIRN_DATA_DIR, CAIRN_HTTP_PORT, CAIRN_BIND, CAIRN_NAMESPACE or CAIRN_BOOTSTRAP_EXPECT: the operator sets them")
    )]
    pub extra_env: BTreeMap<String, String>,
}

/// Overrides merged into the generated pod template.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateOverrides {
    /// Extra pod labels (the `app.kubernetes.io/name`, `instance` and `managed-by` labels are the operator's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = Rule::new(
        "!('app.kubernetes.io/name' in self) && !('app.kubernetes.io/instance' in self) && \
         !('app.kubernetes.io/managed-by' in self)"
    ).message("podTemplate.labels must not set app.kubernetes.io/name, instance or managed-by: the operator selects pods by them"))]
    pub labels: BTreeMap<String, String>,
    /// Extra pod annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Node selector of the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Affinity of the pods. Absent = a preferred anti-affinity spreading members over nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Extra environment variables of the node container (applied after the operator's; names the
    /// operator sets are refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new(
        "self.all(e, !(e.name in ['POD_NAME', 'POD_NAMESPACE', 'POD_IP', 'CAIRN_MEMBERS', 'CAIRN_PEER_DOMAIN', \
         'CAIRN_ADVERTISE_HOST', 'CAIRN_AUTO_JOIN', 'CAIRN_DATA_DIR', 'CAIRN_HTTP_PORT', 'CAIRN_BIND', 'CAIRN_NAMESPACE', \
         'CAIRN_BOOTSTRAP_EXPECT']))"
    ).message("podTemplate.env must not set POD_NAME, POD_NAMESPACE, POD_IP or the CAIRN_* variables the operator sets"))]
    pub env: Vec<EnvVar>,
    /// Seconds a stopping pod is given before it is killed.
    #[serde(default = "default_termination_grace")]
    #[schemars(range(min = 1, max = 3600))]
    pub termination_grace_period_seconds: i64,
}

impl Default for PodTemplateOverrides {
    fn default() -> Self {
        Self {
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            affinity: None,
            priority_class_name: None,
            env: Vec::new(),
            termination_grace_period_seconds: default_termination_grace(),
        }
    }
}

/// How pods get a new pod template.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStrategy {
    /// `QuorumAware` (default): the operator replaces outdated pods one at a time — not-ready ones first, then
    /// followers, the leader last after a leadership transfer — waiting for each to be ready and caught up.
    /// `Manual`: the operator never deletes pods; delete them yourself to roll them.
    #[serde(default, rename = "type")]
    pub type_: UpdateStrategyType,
}

/// Update strategy type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum UpdateStrategyType {
    /// Operator-driven, quorum-aware roll.
    #[default]
    QuorumAware,
    /// Pods are replaced only when someone deletes them.
    Manual,
}

/// PodDisruptionBudget settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PdbSpec {
    /// Whether the operator keeps a PodDisruptionBudget.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Pods that voluntary disruptions (drains) may take down at once.
    #[serde(default = "default_max_unavailable")]
    #[schemars(range(min = 1, max = 4))]
    pub max_unavailable: i32,
}

impl Default for PdbSpec {
    fn default() -> Self {
        Self { enabled: true, max_unavailable: default_max_unavailable() }
    }
}

/// Prometheus Operator integration: a ServiceMonitor scraping every node's `/metrics`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// Create a ServiceMonitor (only when the `monitoring.coreos.com` CRDs are installed).
    #[serde(default)]
    pub enabled: bool,
    /// Scrape interval.
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub interval: String,
    /// Extra labels on the ServiceMonitor (e.g. what your Prometheus' `serviceMonitorSelector` wants).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Default for MonitoringSpec {
    fn default() -> Self {
        Self { enabled: false, interval: default_interval(), labels: BTreeMap::new() }
    }
}

fn default_replicas() -> i32 {
    3
}
fn default_storage_size() -> String {
    "1Gi".into()
}
fn default_http_port() -> i32 {
    8848
}
fn default_cluster_domain() -> String {
    "cluster.local".into()
}
fn default_termination_grace() -> i64 {
    30
}
fn default_true() -> bool {
    true
}
fn default_max_unavailable() -> i32 {
    1
}
fn default_interval() -> String {
    "30s".into()
}

impl Default for RegistryClusterSpec {
    fn default() -> Self {
        Self {
            replicas: default_replicas(),
            image: None,
            image_pull_policy: None,
            image_pull_secrets: Vec::new(),
            resources: None,
            storage: StorageSpec::default(),
            ports: PortsSpec::default(),
            node: NodeConfig::default(),
            pod_template: PodTemplateOverrides::default(),
            update_strategy: UpdateStrategy::default(),
            pdb: PdbSpec::default(),
            monitoring: MonitoringSpec::default(),
            paused: false,
            cluster_domain: default_cluster_domain(),
        }
    }
}
