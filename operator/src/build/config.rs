//! The node ConfigMap (`CAIRN_*` settings, read by the pods through `envFrom`) and the Secret with
//! the generated auth key.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use rand::RngCore as _;

use super::owned_meta;
use crate::names::AUTH_KEY;
use crate::validate::ValidatedCluster;

/// The node settings of the spec as environment variables: the typed fields, then `extraEnv`.
pub fn node_env(vc: &ValidatedCluster) -> BTreeMap<String, String> {
    let n = &vc.spec.node;
    let mut env = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            env.insert(k.to_owned(), v);
        }
    };
    put("CAIRN_LOG", n.log.clone());
    put("CAIRN_MAX_BODY_BYTES", n.max_body_bytes.map(|v| v.to_string()));
    put("CAIRN_RAFT_SNAPSHOT_EVERY", n.raft_snapshot_every.map(|v| v.to_string()));
    put("CAIRN_CLIENT_IDLE_MS", n.client_idle_ms.map(|v| v.to_string()));
    put("CAIRN_SHUTDOWN_GRACE_MS", n.shutdown_grace_ms.map(|v| v.to_string()));
    for (k, v) in &n.extra_env {
        env.entry(k.clone()).or_insert_with(|| v.clone());
    }
    env
}

/// ConfigMap `<name>-config` holding [`node_env`].
pub fn config_map(vc: &ValidatedCluster) -> ConfigMap {
    ConfigMap {
        metadata: owned_meta(vc, vc.names.config_map(), "registry"),
        data: Some(node_env(vc)),
        ..Default::default()
    }
}

/// Stable hash (FNV-1a, 64 bit, hex) of ConfigMap data; it goes into a pod template annotation so
/// that a settings change rolls the pods.
pub fn config_hash(data: &BTreeMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (k, v) in data {
        feed(k.as_bytes());
        feed(&[0]);
        feed(v.as_bytes());
        feed(&[0xff]);
    }
    format!("{h:016x}")
}

/// A new auth key: 48 random bytes, base64 (64 characters).
pub fn generate_auth_key() -> String {
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Secret `<name>-auth` with the auth key under [`AUTH_KEY`]. The caller passes the key already
/// stored in the Secret when there is one, so the key never rotates on reconcile.
pub fn auth_secret(vc: &ValidatedCluster, key: &str) -> Secret {
    Secret {
        metadata: owned_meta(vc, vc.names.secret(), "registry"),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(AUTH_KEY.to_owned(), ByteString(key.as_bytes().to_vec()))])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::tests::vc;
    use crate::crd::RegistryClusterSpec;

    #[test]
    fn env_from_typed_and_extra_settings() {
        let mut spec = RegistryClusterSpec::default();
        spec.node.log = Some("debug".into());
        spec.node.raft_snapshot_every = Some(5000);
        spec.node.extra_env.insert("CAIRN_HEALTH_CHECK_INTERVAL_MS".into(), "1000".into());
        spec.node.extra_env.insert("CAIRN_LOG".into(), "ignored: typed field wins".into());
        let env = node_env(&vc(spec));
        assert_eq!(
            env,
            BTreeMap::from([
                ("CAIRN_LOG".to_owned(), "debug".to_owned()),
                ("CAIRN_RAFT_SNAPSHOT_EVERY".to_owned(), "5000".to_owned()),
                ("CAIRN_HEALTH_CHECK_INTERVAL_MS".to_owned(), "1000".to_owned()),
            ])
        );
        assert!(node_env(&vc(RegistryClusterSpec::default())).is_empty());
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let a = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        let b = BTreeMap::from([("A".to_owned(), "2".to_owned())]);
        let c = BTreeMap::from([("A1".to_owned(), String::new())]);
        assert_eq!(config_hash(&a), config_hash(&a.clone()));
        assert_ne!(config_hash(&a), config_hash(&b));
        assert_ne!(config_hash(&a), config_hash(&c));
        assert_eq!(config_hash(&BTreeMap::new()), "cbf29ce484222325");
    }

    #[test]
    fn secret_keeps_the_given_key() {
        let key = generate_auth_key();
        assert_eq!(key.len(), 64);
        assert_ne!(key, generate_auth_key());
        let s = auth_secret(&vc(RegistryClusterSpec::default()), &key);
        assert_eq!(s.metadata.name.as_deref(), Some("reg-auth"));
        assert_eq!(s.data.unwrap()[AUTH_KEY].0, key.as_bytes());
    }
}
