//! Names, labels and addresses of everything a `RegistryCluster` owns. One place, so builders,
//! the planner and the tests agree.

use std::collections::BTreeMap;

use crate::config::Addressing;

/// `app.kubernetes.io/name` of every object (value [`APP_NAME`]).
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`: the RegistryCluster's name.
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/managed-by` (value [`MANAGER`]).
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// `app.kubernetes.io/component`.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// Value of [`LABEL_NAME`].
pub const APP_NAME: &str = "cairn";
/// Field manager, event reporter and [`LABEL_MANAGED_BY`] value.
pub const MANAGER: &str = "cairn-operator";
/// Pod template annotation: hash of the node ConfigMap, so a config change rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "cairn.dev/config-hash";
/// Label the StatefulSet controller puts on pods: the revision they were created from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// Key of the generated auth key in the Secret.
pub const AUTH_KEY: &str = "token-secret-key";
/// Where the data volume is mounted in the node container.
pub const DATA_MOUNT: &str = "/var/lib/cairn";
/// `CAIRN_DATA_DIR` (a directory on the data volume, so `lost+found` stays out of it).
pub const DATA_DIR: &str = "/var/lib/cairn/data";
/// Name of the node container.
pub const CONTAINER: &str = "cairn-node";
/// Name of the data volume claim template.
pub const DATA_VOLUME: &str = "data";

/// Names and addresses derived from a RegistryCluster's name, namespace and immutable settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNames {
    /// RegistryCluster name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// `spec.clusterDomain`.
    pub cluster_domain: String,
    /// `spec.ports.http`.
    pub http_port: i32,
}

impl ClusterNames {
    /// StatefulSet (and client Service, PDB, ServiceAccount, ServiceMonitor) name.
    pub fn base(&self) -> &str {
        &self.name
    }
    /// Headless Service giving pods stable DNS names.
    pub fn headless(&self) -> String {
        format!("{}-headless", self.name)
    }
    /// ConfigMap with the node's `CAIRN_*` settings.
    pub fn config_map(&self) -> String {
        format!("{}-config", self.name)
    }
    /// Secret with the generated auth key.
    pub fn secret(&self) -> String {
        format!("{}-auth", self.name)
    }
    /// Role and RoleBinding letting the nodes watch their pods.
    pub fn discovery_role(&self) -> String {
        format!("{}-discovery", self.name)
    }
    /// Pod name of an ordinal.
    pub fn pod(&self, ordinal: i32) -> String {
        format!("{}-{ordinal}", self.name)
    }
    /// Ordinal of one of this cluster's pod names.
    pub fn ordinal_of(&self, pod: &str) -> Option<i32> {
        let rest = pod.strip_prefix(&self.name)?.strip_prefix('-')?;
        if rest.is_empty() || (rest.len() > 1 && rest.starts_with('0')) || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse().ok()
    }
    /// DNS domain of the pods: `<name>-headless.<ns>.svc.<clusterDomain>`.
    pub fn peer_domain(&self) -> String {
        format!("{}.{}.svc.{}", self.headless(), self.namespace, self.cluster_domain)
    }
    /// Labels selecting this cluster's pods.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(LABEL_NAME.to_owned(), APP_NAME.to_owned()), (LABEL_INSTANCE.to_owned(), self.name.clone())])
    }
    /// [`Self::selector_labels`] as a label selector string.
    pub fn selector(&self) -> String {
        format!("{LABEL_NAME}={APP_NAME},{LABEL_INSTANCE}={}", self.name)
    }
    /// Labels of every owned object: selector labels, managed-by and the component.
    pub fn labels(&self, component: &str) -> BTreeMap<String, String> {
        let mut l = self.selector_labels();
        l.insert(LABEL_MANAGED_BY.to_owned(), MANAGER.to_owned());
        l.insert(LABEL_COMPONENT.to_owned(), component.to_owned());
        l
    }
    /// The HTTP address (`host:port`) the operator and Raft use for a pod: `<pod>.<peer-domain>:<P>` with
    /// DNS addressing, `<podIP>:<P>` with IP addressing (`None` while the pod has no IP).
    pub fn member_address(&self, addressing: Addressing, ordinal: i32, pod_ip: Option<&str>) -> Option<String> {
        match addressing {
            Addressing::Dns => Some(format!("{}.{}:{}", self.pod(ordinal), self.peer_domain(), self.http_port)),
            Addressing::Ip => pod_ip.filter(|ip| !ip.is_empty()).map(|ip| format!("{ip}:{}", self.http_port)),
        }
    }
}

#[cfg(test)]
impl ClusterNames {
    /// Cluster `reg` in namespace `ns`, domain `cluster.local`, HTTP port 8848 (tests).
    pub(crate) fn sample() -> ClusterNames {
        ClusterNames {
            name: "reg".into(),
            namespace: "ns".into(),
            cluster_domain: "cluster.local".into(),
            http_port: 8848,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ClusterNames {
        ClusterNames::sample()
    }

    #[test]
    fn ordinals_parse_only_own_pods() {
        let n = names();
        for (pod, want) in [
            ("reg-0", Some(0)),
            ("reg-12", Some(12)),
            ("reg-", None),
            ("reg-01", None),
            ("reg-x", None),
            ("reg2-0", None),
            ("other-1", None),
            ("reg-headless-0", None),
        ] {
            assert_eq!(n.ordinal_of(pod), want, "{pod}");
        }
    }

    #[test]
    fn addresses_per_mode() {
        let n = names();
        assert_eq!(
            n.member_address(Addressing::Dns, 2, Some("10.0.0.9")).as_deref(),
            Some("reg-2.reg-headless.ns.svc.cluster.local:8848")
        );
        assert_eq!(n.member_address(Addressing::Ip, 2, Some("127.0.1.3")).as_deref(), Some("127.0.1.3:8848"));
        assert_eq!(n.member_address(Addressing::Ip, 2, None), None);
        assert_eq!(n.member_address(Addressing::Ip, 2, Some("")), None);
        assert_eq!(n.selector(), "app.kubernetes.io/name=cairn,app.kubernetes.io/instance=reg");
    }
}
