//! Nacos naming JSON shapes shared by the gRPC and HTTP edges, and their conversion to and from
//! the domain types.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::naming::model::{DEFAULT_CLUSTER, GROUP_SPLITTER, Instance, Selection, ServiceKey};
use crate::naming::validate;

/// `cacheMillis` of every ServiceInfo (Nacos `defaultPushCacheMillis`).
pub const CACHE_MILLIS: u64 = 10_000;

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// An instance as clients send it.
#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct InstanceIn {
    /// Optional custom id.
    pub instance_id: Option<String>,
    /// IP.
    pub ip: Option<String>,
    /// Port (signed on the wire).
    pub port: Option<i64>,
    /// Weight.
    pub weight: Option<f64>,
    /// Health.
    pub healthy: Option<bool>,
    /// Enabled.
    pub enabled: Option<bool>,
    /// Ephemeral.
    pub ephemeral: Option<bool>,
    /// Cluster.
    pub cluster_name: Option<String>,
    /// Service name (ignored: the request's service wins).
    pub service_name: Option<String>,
    /// Metadata.
    pub metadata: Option<BTreeMap<String, String>>,
}

impl InstanceIn {
    /// Applies defaults and validates.
    pub fn into_domain(self, key: &ServiceKey) -> Result<Instance> {
        let ip = self.ip.unwrap_or_default();
        let port = validate::port(self.port.ok_or_else(|| Error::InvalidParam("Param 'port' is required".into()))?)?;
        let cluster = match self.cluster_name {
            Some(c) if !c.trim().is_empty() => c,
            _ => DEFAULT_CLUSTER.to_owned(),
        };
        let mut inst = Instance {
            ip,
            port,
            cluster: cluster.into(),
            weight: self.weight.unwrap_or(1.0),
            healthy: self.healthy.unwrap_or(true),
            enabled: self.enabled.unwrap_or(true),
            ephemeral: self.ephemeral.unwrap_or(true),
            metadata: self.metadata.unwrap_or_default().into(),
            custom_id: None,
        };
        if let Some(id) = self.instance_id.filter(|id| !id.is_empty())
            && id != inst.id(key)
        {
            inst.custom_id = Some(id.into());
        }
        validate::instance(&inst)?;
        Ok(inst)
    }
}

/// An instance's id, written straight into the output (custom, or `ip#port#cluster#group@@svc`).
#[derive(Debug)]
struct IdOut<'a> {
    i: &'a Instance,
    grouped: &'a str,
}

impl Serialize for IdOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match &self.i.custom_id {
            Some(id) => s.serialize_str(id),
            None => s.collect_str(&format_args!("{}#{}#{}#{}", self.i.ip, self.i.port, self.i.cluster, self.grouped)),
        }
    }
}

/// An instance as Nacos returns it.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct InstanceOut<'a> {
    instance_id: IdOut<'a>,
    ip: &'a str,
    port: u16,
    weight: f64,
    healthy: bool,
    enabled: bool,
    ephemeral: bool,
    cluster_name: &'a str,
    service_name: &'a str,
    metadata: &'a crate::naming::model::Metadata,
    instance_heart_beat_interval: u64,
    instance_heart_beat_time_out: u64,
    ip_delete_timeout: u64,
    instance_id_generator: &'a str,
}

impl<'a> InstanceOut<'a> {
    /// Renders an instance of the service whose grouped name (`group@@svc`) is `grouped`,
    /// reporting `healthy` as its health.
    pub fn new(i: &'a Instance, grouped: &'a str, healthy: bool) -> Self {
        InstanceOut {
            instance_id: IdOut { i, grouped },
            ip: &i.ip,
            port: i.port,
            weight: i.weight,
            healthy,
            enabled: i.enabled,
            ephemeral: i.ephemeral,
            cluster_name: &i.cluster,
            service_name: grouped,
            metadata: &i.metadata,
            instance_heart_beat_interval: i.beat_interval_ms(),
            instance_heart_beat_time_out: i.beat_timeout_ms(15_000),
            ip_delete_timeout: i.delete_timeout_ms(30_000),
            instance_id_generator: i.metadata.get(crate::naming::model::META_ID_GENERATOR).unwrap_or("simple"),
        }
    }
}

/// The `hosts` array: the grouped name is computed once per answer, not per instance.
#[derive(Debug)]
struct HostsOut<'a> {
    key: &'a ServiceKey,
    sel: &'a Selection,
}

impl Serialize for HostsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let grouped = self.key.grouped_name();
        let mut seq = s.serialize_seq(Some(self.sel.hosts.len()))?;
        for i in &self.sel.hosts {
            seq.serialize_element(&InstanceOut::new(i, &grouped, self.sel.healthy(i)))?;
        }
        seq.end()
    }
}

/// Whether `name` in a ServiceInfo is bare (gRPC) or `group@@service` (HTTP v1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameStyle {
    /// `svc` (gRPC replies and pushes).
    Bare,
    /// `group@@svc` (v1 `instance/list`, UDP push).
    Grouped,
}

/// Nacos `ServiceInfo`.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInfoOut<'a> {
    name: String,
    group_name: &'a str,
    clusters: &'a str,
    cache_millis: u64,
    hosts: HostsOut<'a>,
    last_ref_time: i64,
    checksum: &'a str,
    #[serde(rename = "allIPs")]
    all_ips: bool,
    reach_protection_threshold: bool,
    valid: bool,
}

impl<'a> ServiceInfoOut<'a> {
    /// Renders a selection of service `key`; `last_ref_time` comes from [`crate::naming::Registry::ref_time`].
    pub fn new(
        key: &'a ServiceKey,
        style: NameStyle,
        clusters: &'a str,
        sel: &'a Selection,
        last_ref_time: i64,
    ) -> Self {
        ServiceInfoOut {
            name: match style {
                NameStyle::Bare => key.name.to_string(),
                NameStyle::Grouped => key.grouped_name(),
            },
            group_name: &key.group,
            clusters,
            cache_millis: CACHE_MILLIS,
            hosts: HostsOut { key, sel },
            last_ref_time,
            checksum: "",
            all_ips: false,
            reach_protection_threshold: sel.reach_protection_threshold,
            valid: true,
        }
    }
}

/// Splits a service name that may carry its group (`group@@svc`); otherwise uses `group`.
pub fn split_grouped<'a>(service: &'a str, group: &'a str) -> (&'a str, &'a str) {
    match service.split_once(GROUP_SPLITTER) {
        Some((g, s)) if !g.is_empty() => (g, s),
        _ => (group, service),
    }
}

/// Validates and builds a service key from request fields (namespace may be empty = public).
pub fn service_key(namespace: &str, group: &str, service: &str) -> Result<ServiceKey> {
    let (group, service) = split_grouped(service, group);
    let group = if group.is_empty() { crate::naming::model::DEFAULT_GROUP } else { group };
    validate::service_key(namespace, group, service)?;
    Ok(ServiceKey::new(namespace, group, service))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_defaults_and_id() {
        let key = ServiceKey::new("", "", "svc");
        let i: InstanceIn = serde_json::from_str(r#"{"ip":"10.0.0.1","port":80}"#).unwrap();
        let i = i.into_domain(&key).unwrap();
        assert_eq!(&*i.cluster, "DEFAULT");
        assert_eq!(i.weight, 1.0);
        let grouped = key.grouped_name();
        let out = serde_json::to_value(InstanceOut::new(&i, &grouped, true)).unwrap();
        assert_eq!(out["instanceId"], "10.0.0.1#80#DEFAULT#DEFAULT_GROUP@@svc");
        assert_eq!(out["serviceName"], "DEFAULT_GROUP@@svc");
        assert_eq!(out["instanceHeartBeatTimeOut"], 15000);
    }

    #[test]
    fn bad_instances_are_rejected() {
        let key = ServiceKey::new("", "", "svc");
        for bad in [
            r#"{"ip":"10.0.0.1","port":70000}"#,
            r#"{"ip":"10.0.0.1","port":-1}"#,
            r#"{"ip":"","port":80}"#,
            r#"{"ip":"10.0.0.1"}"#,
            r#"{"ip":"10.0.0.1","port":80,"weight":-1}"#,
            r#"{"ip":"10.0.0.1","port":80,"clusterName":"a b"}"#,
        ] {
            let i: InstanceIn = serde_json::from_str(bad).unwrap();
            assert!(i.into_domain(&key).is_err(), "{bad}");
        }
    }

    #[test]
    fn grouped_names_split() {
        assert_eq!(split_grouped("g@@s", "x"), ("g", "s"));
        assert_eq!(split_grouped("s", "x"), ("x", "s"));
        let k = service_key("", "", "g@@s").unwrap();
        assert_eq!(&*k.group, "g");
        assert!(service_key("", "bad group", "s").is_err());
    }
}
