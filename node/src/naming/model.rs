//! Naming domain types: namespace → group → service → cluster → instance.
//! These are free of any wire format; `api::*` converts to and from Nacos JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The default group (`DEFAULT_GROUP`).
pub const DEFAULT_GROUP: &str = "DEFAULT_GROUP";
/// The default cluster (`DEFAULT`).
pub const DEFAULT_CLUSTER: &str = "DEFAULT";
/// The public namespace id. `""` and `"public"` name the same namespace.
pub const PUBLIC_NAMESPACE: &str = "public";
/// Separator between group and service in a grouped name (`group@@service`).
pub const GROUP_SPLITTER: &str = "@@";

/// Metadata key overriding the heartbeat interval (ms) of a v1 instance.
pub const META_BEAT_INTERVAL: &str = "preserved.heart.beat.interval";
/// Metadata key overriding the heartbeat timeout (ms) of a v1 instance.
pub const META_BEAT_TIMEOUT: &str = "preserved.heart.beat.timeout";
/// Metadata key overriding the delete timeout (ms) of a v1 instance.
pub const META_DELETE_TIMEOUT: &str = "preserved.ip.delete.timeout";
/// Metadata key naming the instance id generator.
pub const META_ID_GENERATOR: &str = "preserved.instance.id.generator";

/// Maps `""` and `"public"` to one namespace key.
pub fn normalize_namespace(ns: &str) -> &str {
    if ns.is_empty() { PUBLIC_NAMESPACE } else { ns }
}

/// Instance metadata: key/value pairs sorted by key, stored compactly and shareable. (A
/// `BTreeMap` allocates a whole ~550-byte node even for one entry, which dominated the memory of
/// 100,000 instances; and instances of one service usually carry identical metadata, which
/// [`Metadata::share`] then stores once.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata(Arc<[(Box<str>, Box<str>)]>);

impl Metadata {
    /// Takes `other`'s storage when both hold the same entries, so equal metadata is kept once.
    pub fn share(&mut self, other: &Metadata) {
        if !Arc::ptr_eq(&self.0, &other.0) && self.0 == other.0 {
            self.0 = other.0.clone();
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok().map(|i| &*self.0[i].1)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<String, String>> for Metadata {
    fn from(m: BTreeMap<String, String>) -> Self {
        Metadata(m.into_iter().map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str())).collect())
    }
}

impl Serialize for Metadata {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(d).map(Metadata::from)
    }
}

/// Identity of a service: (namespace, group, name), namespace normalised.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
    /// Namespace id (`public` for the default).
    pub namespace: Arc<str>,
    /// Group name.
    pub group: Arc<str>,
    /// Bare service name (no group prefix).
    pub name: Arc<str>,
}

impl ServiceKey {
    /// Builds a key, normalising the namespace and defaulting an empty group.
    pub fn new(namespace: &str, group: &str, name: &str) -> Self {
        let group = if group.is_empty() { DEFAULT_GROUP } else { group };
        ServiceKey { namespace: normalize_namespace(namespace).into(), group: group.into(), name: name.into() }
    }

    /// `group@@name`.
    pub fn grouped_name(&self) -> String {
        format!("{}{GROUP_SPLITTER}{}", self.group, self.name)
    }
}

impl fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@@{}", self.namespace, self.group, self.name)
    }
}

/// Who published or subscribed: a gRPC connection, or a v1 HTTP `ip:port` client.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum ClientId {
    /// A registered gRPC connection, by its node-local number.
    Conn(u64),
    /// A v1 HTTP heartbeat client `ip:port` (ephemeral).
    Beat(Arc<str>),
    /// Persistent instances of `ip:port`, kept in Raft (no liveness; health from active checks).
    Persistent(Arc<str>),
    /// A client owned by another node, replicated here by Distro: `owner|incarnation|local id`.
    Remote(Arc<str>),
}

impl ClientId {
    /// Whether this node owns the client's ephemeral data (and replicates it to peers).
    pub fn is_local_ephemeral(&self) -> bool {
        matches!(self, ClientId::Conn(_) | ClientId::Beat(_))
    }
}

/// One instance as held by the registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// IP address or host name.
    pub ip: String,
    /// Port.
    pub port: u16,
    /// Cluster name (`DEFAULT` when blank); instances of a service share equal names.
    pub cluster: Arc<str>,
    /// Load-balancing weight, 0..=10000.
    pub weight: f64,
    /// Health as reported (gRPC) or observed from heartbeats (v1).
    pub healthy: bool,
    /// Disabled instances are held but not returned by queries or pushes.
    pub enabled: bool,
    /// Ephemeral (connection- or heartbeat-bound) instance.
    pub ephemeral: bool,
    /// User metadata.
    pub metadata: Metadata,
    /// A client-chosen instance id; the default is generated by [`Instance::id`].
    pub custom_id: Option<Box<str>>,
}

impl Instance {
    /// The instance id: the custom one, or `ip#port#cluster#group@@service`.
    pub fn id(&self, key: &ServiceKey) -> String {
        match &self.custom_id {
            Some(id) => id.to_string(),
            None => format!("{}#{}#{}#{}", self.ip, self.port, self.cluster, key.grouped_name()),
        }
    }

    /// Whether this is the same endpoint (ip, port, cluster) as another.
    pub fn same_endpoint(&self, ip: &str, port: u16, cluster: &str) -> bool {
        self.ip == ip && self.port == port && &*self.cluster == cluster
    }

    fn meta_ms(&self, key: &str, default: u64) -> u64 {
        self.metadata.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    /// Heartbeat interval (ms): metadata override or 5000.
    pub fn beat_interval_ms(&self) -> u64 {
        self.meta_ms(META_BEAT_INTERVAL, 5_000)
    }

    /// Heartbeat timeout (ms) after which a v1 instance is unhealthy.
    pub fn beat_timeout_ms(&self, default: u64) -> u64 {
        self.meta_ms(META_BEAT_TIMEOUT, default)
    }

    /// Delete timeout (ms) after which a silent v1 instance is removed.
    pub fn delete_timeout_ms(&self, default: u64) -> u64 {
        self.meta_ms(META_DELETE_TIMEOUT, default)
    }
}

/// Service-level settings (created explicitly through the service API, or implicit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceMeta {
    /// Protect threshold 0..=1: when the healthy share is at or below it, all instances are returned.
    pub protect_threshold: f32,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
    /// Selector JSON as given (`{"type":"none"}` by default).
    pub selector: Option<String>,
}

impl Default for ServiceMeta {
    fn default() -> Self {
        ServiceMeta { protect_threshold: 0.0, metadata: BTreeMap::new(), selector: None }
    }
}

/// The result of a query: the instances to return and whether protection kicked in.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Selected instances (shared with the registry, not copied).
    pub hosts: Vec<Arc<Instance>>,
    /// True when the protect threshold was reached: every returned instance is reported healthy.
    pub reach_protection_threshold: bool,
}

impl Selection {
    /// Health to report for `i` (all healthy once protection kicked in).
    pub fn healthy(&self, i: &Instance) -> bool {
        self.reach_protection_threshold || i.healthy
    }
}

/// Splits a comma-separated cluster list; empty means all clusters.
pub fn parse_clusters(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

/// Selects the instances to answer with: enabled only, cluster filter, protect threshold
/// (only when the service has explicit metadata), then `healthy_only`.
pub fn select(all: &[Arc<Instance>], clusters: &[String], healthy_only: bool, protect: Option<f32>) -> Selection {
    let mut hosts: Vec<Arc<Instance>> = all
        .iter()
        .filter(|i| i.enabled)
        .filter(|i| clusters.is_empty() || clusters.iter().any(|c| **c == *i.cluster))
        .cloned()
        .collect();
    let mut reach = false;
    if let Some(threshold) = protect {
        let total = hosts.len();
        let healthy = hosts.iter().filter(|i| i.healthy).count();
        if total > 0 && (healthy as f32) / (total as f32) <= threshold.max(0.0) {
            reach = true;
        }
    }
    if healthy_only && !reach {
        hosts.retain(|i| i.healthy);
    }
    Selection { hosts, reach_protection_threshold: reach }
}

#[cfg(test)]
impl Instance {
    /// A healthy, enabled, ephemeral `ip:port` in cluster `DEFAULT` without metadata (tests).
    pub(crate) fn sample(ip: &str, port: u16) -> Instance {
        Instance {
            ip: ip.into(),
            port,
            cluster: DEFAULT_CLUSTER.into(),
            weight: 1.0,
            healthy: true,
            enabled: true,
            ephemeral: true,
            metadata: Metadata::default(),
            custom_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(ip: &str, cluster: &str, healthy: bool, enabled: bool) -> Arc<Instance> {
        Arc::new(Instance { cluster: cluster.into(), healthy, enabled, ..Instance::sample(ip, 80) })
    }

    #[test]
    fn metadata_is_sorted_and_serialises_as_a_map() {
        let m: Metadata =
            BTreeMap::from([("b".to_string(), "2".to_string()), ("a".to_string(), "1".to_string())]).into();
        assert_eq!(m.get("a"), Some("1"));
        assert_eq!(m.get("c"), None);
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"a":"1","b":"2"}"#);
        let back: Metadata = serde_json::from_str(r#"{"b":"2","a":"1"}"#).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn equal_metadata_is_stored_once() {
        let one = || -> Metadata { BTreeMap::from([("k".to_string(), "v".to_string())]).into() };
        let first = one();
        let mut second = one();
        assert!(!Arc::ptr_eq(&first.0, &second.0));
        second.share(&first);
        assert!(Arc::ptr_eq(&first.0, &second.0), "equal metadata shares one allocation");
        let mut other: Metadata = BTreeMap::from([("k".to_string(), "w".to_string())]).into();
        other.share(&first);
        assert_eq!(other.get("k"), Some("w"), "different metadata is never replaced");
        assert!(!Arc::ptr_eq(&first.0, &other.0));
    }

    #[test]
    fn namespace_public_and_empty_are_one() {
        assert_eq!(ServiceKey::new("", "", "s"), ServiceKey::new("public", "DEFAULT_GROUP", "s"));
        assert_ne!(ServiceKey::new("dev", "g", "s"), ServiceKey::new("public", "g", "s"));
    }

    #[test]
    fn instance_id_format() {
        let k = ServiceKey::new("", "g", "svc");
        assert_eq!(inst("1.2.3.4", "DEFAULT", true, true).id(&k), "1.2.3.4#80#DEFAULT#g@@svc");
    }

    #[test]
    fn select_filters_disabled_cluster_and_health() {
        let all = vec![inst("a", "A", true, true), inst("b", "B", false, true), inst("c", "A", true, false)];
        assert_eq!(select(&all, &[], false, None).hosts.len(), 2);
        assert_eq!(select(&all, &["A".into()], false, None).hosts.len(), 1);
        assert_eq!(select(&all, &[], true, None).hosts.len(), 1);
    }

    #[test]
    fn protect_threshold_returns_all_as_healthy() {
        let all = vec![inst("a", "A", true, true), inst("b", "A", false, true), inst("c", "A", false, true)];
        let s = select(&all, &[], true, Some(0.5));
        assert!(s.reach_protection_threshold);
        assert_eq!(s.hosts.len(), 3);
        assert!(s.hosts.iter().all(|h| s.healthy(h)));
        let s = select(&all, &[], true, Some(0.2));
        assert!(!s.reach_protection_threshold);
        assert_eq!(s.hosts.len(), 1);
        // threshold 0 with zero healthy still triggers (Nacos semantics)
        let none = vec![inst("a", "A", false, true)];
        assert!(select(&none, &[], false, Some(0.0)).reach_protection_threshold);
    }

    #[test]
    fn parse_clusters_trims() {
        assert_eq!(parse_clusters(" A, ,B"), vec!["A".to_string(), "B".to_string()]);
        assert!(parse_clusters("").is_empty());
    }
}
