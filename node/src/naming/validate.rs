//! Input validation for naming, following Nacos's rules (2.3+ parameter checks), with limits
//! of our own where Nacos has none (documented on each constant).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::naming::model::{Instance, META_BEAT_INTERVAL, META_BEAT_TIMEOUT, META_DELETE_TIMEOUT};

/// Longest service name (Nacos: 512).
pub const MAX_SERVICE_NAME: usize = 512;
/// Longest group name (Nacos: 128).
pub const MAX_GROUP_NAME: usize = 128;
/// Longest namespace id (Nacos: 64).
pub const MAX_NAMESPACE: usize = 64;
/// Longest cluster name (Nacos: 64).
pub const MAX_CLUSTER_NAME: usize = 64;
/// Longest ip / host name.
pub const MAX_IP: usize = 128;
/// Most metadata entries per instance or service (Cairn's own limit).
pub const MAX_METADATA_ENTRIES: usize = 128;
/// Longest metadata key (Cairn's own limit).
pub const MAX_METADATA_KEY: usize = 256;
/// Longest metadata value (Cairn's own limit).
pub const MAX_METADATA_VALUE: usize = 16 * 1024;
/// Largest weight (Nacos: 10000).
pub const MAX_WEIGHT: f64 = 10_000.0;

fn invalid(msg: String) -> Error {
    Error::InvalidParam(msg)
}

/// Namespace id: `^[\w-]+$`, at most 64 characters; empty means public.
pub fn namespace(ns: &str) -> Result<()> {
    if ns.len() > MAX_NAMESPACE {
        return Err(invalid(format!("Param 'namespaceId' is illegal, the length should not exceed {MAX_NAMESPACE}")));
    }
    if !ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(invalid(
            "Param 'namespaceId' is illegal, illegal characters should not appear in the param".into(),
        ));
    }
    Ok(())
}

/// Group name: `^[a-zA-Z0-9-_:.]*$`, at most 128 characters.
pub fn group(g: &str) -> Result<()> {
    if g.len() > MAX_GROUP_NAME {
        return Err(invalid(format!("Param 'groupName' is illegal, the length should not exceed {MAX_GROUP_NAME}")));
    }
    if !g.chars().all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c)) {
        return Err(invalid("Param 'groupName' is illegal, illegal characters should not appear in the param".into()));
    }
    Ok(())
}

/// Service name: not blank, at most 512 characters, no `@@`, no control characters and none of
/// `\"'&<>#\\/:$,;=?+%` (Nacos's parameter check).
pub fn service_name(s: &str) -> Result<()> {
    if s.trim().is_empty() {
        return Err(invalid("Param 'serviceName' is illegal, serviceName is blank".into()));
    }
    if s.len() > MAX_SERVICE_NAME {
        return Err(invalid(format!(
            "Param 'serviceName' is illegal, the length should not exceed {MAX_SERVICE_NAME}"
        )));
    }
    if s.contains("@@") || s.starts_with('@') {
        return Err(invalid("Param 'serviceName' is illegal, it must not contain '@@' or start with '@'".into()));
    }
    if s.chars().any(|c| c.is_control() || "\"'&<>#\\/:$,;=?+%".contains(c)) {
        return Err(invalid(
            "Param 'serviceName' is illegal, illegal characters should not appear in the param".into(),
        ));
    }
    Ok(())
}

/// Cluster name: `^[0-9a-zA-Z-_.]*$`, at most 64 characters.
pub fn cluster(c: &str) -> Result<()> {
    if c.len() > MAX_CLUSTER_NAME {
        return Err(invalid(format!(
            "Param 'clusterName' is illegal, the length should not exceed {MAX_CLUSTER_NAME}"
        )));
    }
    if !c.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)) {
        return Err(invalid(format!(
            "Param 'clusterName' is illegal, cluster name {c:?} should only contain letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

/// IP or host name: not blank, at most 128 characters, no whitespace or control characters.
pub fn ip(ip: &str) -> Result<()> {
    if ip.trim().is_empty() {
        return Err(invalid("Param 'ip' is illegal, ip is blank".into()));
    }
    if ip.len() > MAX_IP || ip.chars().any(|c| c.is_whitespace() || c.is_control() || c == '#' || c == ',') {
        return Err(invalid(format!("Param 'ip' is illegal: {ip:?}")));
    }
    Ok(())
}

/// Port: 0..=65535 (Nacos's range), given as a signed number on the wire.
pub fn port(p: i64) -> Result<u16> {
    u16::try_from(p)
        .map_err(|_| invalid(format!("Param 'port' is illegal, the value should be between 0 and 65535, got {p}")))
}

/// Weight: finite, 0..=10000.
pub fn weight(w: f64) -> Result<()> {
    if !w.is_finite() || !(0.0..=MAX_WEIGHT).contains(&w) {
        return Err(invalid(format!("instance format invalid: The weights range from 0.00 to 10000.00, got {w}")));
    }
    Ok(())
}

/// Metadata size limits.
pub fn metadata(m: &BTreeMap<String, String>) -> Result<()> {
    metadata_entries(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn metadata_entries<'a>(m: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> Result<()> {
    if m.len() > MAX_METADATA_ENTRIES {
        return Err(invalid(format!("metadata has {} entries; at most {MAX_METADATA_ENTRIES} are allowed", m.len())));
    }
    for (k, v) in m {
        if k.is_empty() || k.len() > MAX_METADATA_KEY {
            return Err(invalid(format!("metadata key must be 1..={MAX_METADATA_KEY} bytes")));
        }
        if v.len() > MAX_METADATA_VALUE {
            return Err(invalid(format!("metadata value of {k:?} exceeds {MAX_METADATA_VALUE} bytes")));
        }
    }
    Ok(())
}

/// Protect threshold: finite, 0..=1.
pub fn protect_threshold(t: f32) -> Result<()> {
    if !t.is_finite() || !(0.0..=1.0).contains(&t) {
        return Err(invalid(format!("Param 'protectThreshold' is illegal, it must be between 0 and 1, got {t}")));
    }
    Ok(())
}

/// The whole service address.
pub fn service_key(ns: &str, grp: &str, name: &str) -> Result<()> {
    namespace(ns)?;
    group(grp)?;
    service_name(name)
}

/// An instance (after defaults were applied): ip, cluster, weight, metadata and the
/// heartbeat rule `interval ≤ timeout` and `interval ≤ delete timeout`.
pub fn instance(i: &Instance) -> Result<()> {
    ip(&i.ip)?;
    cluster(&i.cluster)?;
    weight(i.weight)?;
    metadata_entries(i.metadata.iter())?;
    if let Some(id) = &i.custom_id
        && (id.len() > 512 || id.chars().any(char::is_control))
    {
        return Err(invalid("Param 'instanceId' is illegal".into()));
    }
    let num = |k: &str| -> Result<Option<u64>> {
        match i.metadata.get(k) {
            None => Ok(None),
            Some(v) => {
                v.parse().map(Some).map_err(|_| invalid(format!("metadata {k} must be a number of ms, got {v:?}")))
            }
        }
    };
    let interval = num(META_BEAT_INTERVAL)?.unwrap_or(5_000);
    let timeout = num(META_BEAT_TIMEOUT)?.unwrap_or(15_000);
    let delete = num(META_DELETE_TIMEOUT)?.unwrap_or(30_000);
    if interval > timeout || interval > delete {
        return Err(invalid(
            "Instance 'heart beat interval' must less than 'heart beat timeout' and 'ip delete timeout'.".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(service_name("svc-1.a_b").is_ok());
        assert!(service_name("").is_err());
        assert!(service_name("  ").is_err());
        assert!(service_name("a@@b").is_err());
        assert!(service_name("a/b").is_err());
        assert!(service_name(&"x".repeat(513)).is_err());
        assert!(group("DEFAULT_GROUP").is_ok());
        assert!(group("bad group").is_err());
        assert!(namespace("").is_ok());
        assert!(namespace("dev-1").is_ok());
        assert!(namespace("dev/1").is_err());
        assert!(cluster("DEFAULT").is_ok());
        assert!(cluster("a b").is_err());
    }

    #[test]
    fn numbers() {
        assert!(port(-1).is_err());
        assert!(port(65536).is_err());
        assert_eq!(port(8080).unwrap(), 8080);
        assert!(weight(f64::NAN).is_err());
        assert!(weight(-0.5).is_err());
        assert!(weight(10_001.0).is_err());
        assert!(protect_threshold(1.5).is_err());
    }
}
