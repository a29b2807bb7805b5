//! Config center domain types: a config is addressed by (namespace, group, dataId) and carries
//! its content, md5 and descriptive metadata; an optional gray (beta) version is served only to
//! listed client IPs. Free of wire formats.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::naming::model::normalize_namespace;

/// The default config group.
pub const DEFAULT_GROUP: &str = "DEFAULT_GROUP";

/// The config types Nacos knows; anything else is stored as `text`.
pub const CONFIG_TYPES: [&str; 8] = ["properties", "xml", "json", "text", "html", "yaml", "toml", "unset"];

/// Identity of a config. The namespace is canonical (`""` → `public`), as in naming.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConfigKey {
    /// Namespace id (`public` for the default).
    pub namespace: Arc<str>,
    /// Group.
    pub group: Arc<str>,
    /// Data id.
    pub data_id: Arc<str>,
}

impl ConfigKey {
    /// Builds a key, normalising the namespace and defaulting an empty group.
    pub fn new(namespace: &str, group: &str, data_id: &str) -> Self {
        let group = if group.is_empty() { DEFAULT_GROUP } else { group };
        ConfigKey { namespace: normalize_namespace(namespace).into(), group: group.into(), data_id: data_id.into() }
    }

    /// The tenant as Nacos 2.x shows it: `""` for the public namespace.
    pub fn tenant(&self) -> &str {
        if &*self.namespace == crate::naming::model::PUBLIC_NAMESPACE { "" } else { &self.namespace }
    }
}

impl fmt::Debug for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.group, self.data_id)
    }
}

/// Lowercase hex MD5 of the UTF-8 bytes (Nacos's `md5`).
pub fn md5_hex(content: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = md5::compute(content.as_bytes());
    let mut out = String::with_capacity(32);
    for b in digest.0 {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
    out
}

/// Descriptive fields of a config (all optional on publish).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigMeta {
    /// `type` (properties, yaml, json, …; unknown → text).
    pub kind: String,
    /// `appName`.
    pub app_name: String,
    /// `desc`.
    pub desc: String,
    /// `config_tags`, at most 5.
    pub tags: Vec<String>,
    /// `use`.
    pub usage: String,
    /// `effect`.
    pub effect: String,
    /// `schema`.
    pub schema: String,
    /// `encryptedDataKey` (encryption plugin).
    pub encrypted_data_key: String,
}

/// A gray (beta) version served to the listed client IPs only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beta {
    /// Client IPs that get this version.
    pub ips: Vec<String>,
    /// Content.
    pub content: String,
    /// MD5 of the content.
    pub md5: String,
    /// Last change (epoch ms).
    pub modified_ms: i64,
}

/// A stored config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigItem {
    /// Row id, stable for the config's life.
    pub id: u64,
    /// Content.
    pub content: String,
    /// MD5 of the content.
    pub md5: String,
    /// Descriptive fields.
    pub meta: ConfigMeta,
    /// Who wrote it last.
    pub src_user: String,
    /// From where.
    pub src_ip: String,
    /// Creation time (epoch ms).
    pub created_ms: i64,
    /// Last change (epoch ms).
    pub modified_ms: i64,
    /// Gray version, if any.
    pub beta: Option<Beta>,
}

impl ConfigItem {
    /// The (content, md5, is_beta) a client at `client_ip` sees.
    pub fn view_for(&self, client_ip: &str) -> (&str, &str, bool) {
        match &self.beta {
            Some(b) if b.ips.iter().any(|ip| ip == client_ip) => (&b.content, &b.md5, true),
            _ => (&self.content, &self.md5, false),
        }
    }
}

/// History operation: insert, update, delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpType {
    /// `I`.
    Insert,
    /// `U` (the record holds the previous content).
    Update,
    /// `D` (the record holds the previous content).
    Delete,
}

impl OpType {
    /// Nacos's one-letter form.
    pub fn letter(self) -> &'static str {
        match self {
            OpType::Insert => "I",
            OpType::Update => "U",
            OpType::Delete => "D",
        }
    }
}

/// One history record (`his_config_info`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// History id (`nid`), increasing.
    pub nid: u64,
    /// The config's row id.
    pub id: u64,
    /// The config.
    pub key: ConfigKey,
    /// Content: new for inserts, previous for updates and deletes (as Nacos).
    pub content: String,
    /// MD5 of `content`.
    pub md5: String,
    /// App name at the time.
    pub app_name: String,
    /// Who.
    pub src_user: String,
    /// From where.
    pub src_ip: String,
    /// I/U/D.
    pub op: OpType,
    /// `formal` or `gray`.
    pub publish_type: String,
    /// When the operation happened (epoch ms).
    pub modified_ms: i64,
}

/// A namespace (`tenant_info`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// Id (`public` for the default one).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub desc: String,
    /// Creation time (epoch ms).
    pub created_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_is_lowercase_hex_of_utf8() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex("héllo"), format!("{:x}", md5::compute("héllo".as_bytes())));
    }

    #[test]
    fn public_tenant_is_empty() {
        let k = ConfigKey::new("", "", "a");
        assert_eq!(k, ConfigKey::new("public", "DEFAULT_GROUP", "a"));
        assert_eq!(k.tenant(), "");
        assert_eq!(ConfigKey::new("dev", "g", "a").tenant(), "dev");
    }

    #[test]
    fn beta_view_only_for_listed_ips() {
        let item = ConfigItem {
            id: 1,
            content: "a".into(),
            md5: md5_hex("a"),
            meta: ConfigMeta::default(),
            src_user: String::new(),
            src_ip: String::new(),
            created_ms: 0,
            modified_ms: 0,
            beta: Some(Beta { ips: vec!["10.0.0.1".into()], content: "b".into(), md5: md5_hex("b"), modified_ms: 0 }),
        };
        assert_eq!(item.view_for("10.0.0.1").0, "b");
        assert_eq!(item.view_for("10.0.0.2").0, "a");
    }
}
