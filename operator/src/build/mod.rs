//! Step 3 of a reconcile: the desired objects of a [`ValidatedCluster`], as pure functions.
//! Each builder returns a complete object for server-side apply (apiVersion, kind, name,
//! namespace, labels, controller owner reference).

mod config;
mod policy;
mod rbac;
mod services;
mod statefulset;

pub use config::{auth_secret, config_hash, config_map, generate_auth_key, node_env};
pub use policy::{pod_disruption_budget, service_monitor, service_monitor_resource};
pub use rbac::{discovery_role, discovery_role_binding, service_account};
pub use services::{client_service, headless_service};
pub use statefulset::{initial_replicas, statefulset};

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;

use crate::config::Addressing;
use crate::validate::ValidatedCluster;

/// Inputs of the builders that do not come from the RegistryCluster itself.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildParams {
    /// How members are addressed.
    pub addressing: Addressing,
    /// `spec.replicas` of the StatefulSet (the operator moves it one member at a time).
    pub statefulset_replicas: i32,
    /// The auth key to keep in the Secret (the existing one, or a freshly generated one).
    pub auth_key: String,
    /// Whether the `monitoring.coreos.com/v1` ServiceMonitor kind is served.
    pub service_monitor_available: bool,
}

/// Every object a RegistryCluster owns, in apply order.
#[derive(Clone, Debug)]
pub struct DesiredObjects {
    /// Node identity for the Kubernetes API.
    pub service_account: ServiceAccount,
    /// `get,list,watch` on pods (the node's `k8s:` member discovery).
    pub role: Role,
    /// Binds the Role to the ServiceAccount.
    pub role_binding: RoleBinding,
    /// `<name>-headless`: stable pod DNS names, not-ready addresses published.
    pub headless_service: Service,
    /// `<name>`: client traffic (HTTP + gRPC) to ready members.
    pub client_service: Service,
    /// Node settings as `CAIRN_*` variables.
    pub config_map: ConfigMap,
    /// Generated auth key.
    pub secret: Secret,
    /// The pods and their claims.
    pub statefulset: StatefulSet,
    /// `None` when `spec.pdb.enabled` is false.
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
    /// `None` when monitoring is off or the ServiceMonitor kind is not served.
    pub service_monitor: Option<DynamicObject>,
}

/// Builds every desired object.
pub fn desired(vc: &ValidatedCluster, params: &BuildParams) -> DesiredObjects {
    let config_map = config_map(vc);
    let hash = config_hash(config_map.data.as_ref().unwrap_or(&BTreeMap::new()));
    DesiredObjects {
        service_account: service_account(vc),
        role: discovery_role(vc),
        role_binding: discovery_role_binding(vc),
        headless_service: headless_service(vc),
        client_service: client_service(vc),
        config_map,
        secret: auth_secret(vc, &params.auth_key),
        statefulset: statefulset(vc, params.addressing, params.statefulset_replicas, &hash),
        pod_disruption_budget: pod_disruption_budget(vc),
        service_monitor: if params.service_monitor_available { service_monitor(vc) } else { None },
    }
}

/// Metadata of an owned object: name, namespace, labels, controller owner reference.
pub(crate) fn owned_meta(vc: &ValidatedCluster, name: String, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(vc.names.namespace.clone()),
        labels: Some(vc.names.labels(component)),
        owner_references: Some(vec![vc.owner.clone()]),
        ..Default::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crd::RegistryClusterSpec;
    use crate::validate::{tests::cluster, validate};

    pub(crate) fn vc(spec: RegistryClusterSpec) -> ValidatedCluster {
        validate(&cluster("reg", spec), "cairn/cairn-node:test").unwrap()
    }

    pub(crate) fn params() -> BuildParams {
        BuildParams {
            addressing: Addressing::Dns,
            statefulset_replicas: 1,
            auth_key: "k".into(),
            service_monitor_available: false,
        }
    }

    #[test]
    fn every_object_is_owned_labelled_and_namespaced() {
        let mut spec = RegistryClusterSpec::default();
        spec.monitoring.enabled = true;
        let d = desired(&vc(spec), &BuildParams { service_monitor_available: true, ..params() });
        let metas = [
            &d.service_account.metadata,
            &d.role.metadata,
            &d.role_binding.metadata,
            &d.headless_service.metadata,
            &d.client_service.metadata,
            &d.config_map.metadata,
            &d.secret.metadata,
            &d.statefulset.metadata,
            &d.pod_disruption_budget.as_ref().unwrap().metadata,
            &d.service_monitor.as_ref().unwrap().metadata,
        ];
        for m in metas {
            let name = m.name.as_deref().unwrap();
            assert_eq!(m.namespace.as_deref(), Some("ns"), "{name}");
            let owners = m.owner_references.as_ref().unwrap();
            assert_eq!(owners.len(), 1, "{name}");
            assert_eq!(owners[0].controller, Some(true), "{name}");
            assert_eq!(owners[0].uid, "uid-1", "{name}");
            let labels = m.labels.as_ref().unwrap();
            assert_eq!(labels.get("app.kubernetes.io/instance").map(String::as_str), Some("reg"), "{name}");
            assert_eq!(labels.get("app.kubernetes.io/managed-by").map(String::as_str), Some("cairn-operator"));
        }
    }

    #[test]
    fn optional_objects_follow_the_spec() {
        let mut spec = RegistryClusterSpec::default();
        spec.pdb.enabled = false;
        spec.monitoring.enabled = true;
        let d = desired(&vc(spec.clone()), &params());
        assert!(d.pod_disruption_budget.is_none());
        assert!(d.service_monitor.is_none(), "kind not served: no ServiceMonitor");
        spec.monitoring.enabled = false;
        let d = desired(&vc(spec), &BuildParams { service_monitor_available: true, ..params() });
        assert!(d.service_monitor.is_none(), "monitoring off: no ServiceMonitor");
    }
}
