//! Config-center commands: what goes through Raft, and what applying one answers. Commands carry
//! their own timestamp (stamped where the request arrived) so every replica applies them the same.

use serde::{Deserialize, Serialize};

use crate::configs::model::{ConfigKey, ConfigMeta, Namespace};

/// A replicated config-center write.
#[allow(clippy::large_enum_variant)] // short-lived values, moved once into the Raft log
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ConfigCommand {
    /// Create or update a config (or its gray version when `beta_ips` is set).
    Publish {
        /// The config.
        key: ConfigKey,
        /// New content.
        content: String,
        /// Descriptive fields.
        meta: ConfigMeta,
        /// Compare-and-set: apply only if the current md5 equals this (missing config: insert).
        cas_md5: Option<String>,
        /// Gray publish for these client IPs.
        beta_ips: Option<Vec<String>>,
        /// Who.
        src_user: String,
        /// From where.
        src_ip: String,
        /// When (epoch ms).
        at_ms: i64,
    },
    /// Delete a config, or only its gray version.
    Remove {
        /// The config.
        key: ConfigKey,
        /// Remove the gray version only.
        beta_only: bool,
        /// Who.
        src_user: String,
        /// From where.
        src_ip: String,
        /// When (epoch ms).
        at_ms: i64,
    },
    /// Create a namespace.
    CreateNamespace(Namespace),
    /// Rename / re-describe a namespace.
    UpdateNamespace {
        /// Id.
        id: String,
        /// New name.
        name: String,
        /// New description.
        desc: String,
    },
    /// Delete an empty namespace.
    DeleteNamespace {
        /// Id.
        id: String,
    },
    /// Delete config history recorded before `before_ms` (epoch ms), oldest first, at most
    /// `limit` records (one bounded transaction; the purger repeats while the limit is reached).
    PurgeHistory {
        /// Cut-off (epoch ms), decided by the proposer so every replica deletes the same records.
        before_ms: i64,
        /// Most records deleted by this command.
        limit: u32,
    },
}

/// What applying a command answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigOutcome {
    /// Applied; `changed` = the visible content changed (listeners were notified).
    Done {
        /// Content md5 changed.
        changed: bool,
    },
    /// CAS failed: the server md5 differs from `casMd5`.
    CasMismatch,
    /// The addressed config or namespace does not exist.
    NotFound,
    /// Refused with a reason (e.g. namespace exists, namespace not empty).
    Rejected(String),
    /// History records deleted by [`ConfigCommand::PurgeHistory`].
    Purged {
        /// How many.
        count: u32,
    },
}
