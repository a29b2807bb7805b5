//! The crate's error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::types::NodeId;

/// Everything that can go wrong in the Raft core, with the context of the failed action.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A [`RaftConfig`](crate::RaftConfig) field is out of range.
    #[error("invalid raft configuration: {0}")]
    InvalidConfig(String),

    /// The node identity file is unreadable, malformed, or missing while Raft data exists.
    #[error("node identity {path}: {reason}")]
    Identity {
        /// The identity file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "write snapshot".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A redb operation failed.
    #[error("{action}: {source}")]
    Storage {
        /// What was being done, e.g. "open log database".
        action: &'static str,
        /// The underlying error.
        #[source]
        source: redb::Error,
    },

    /// The application failed (storage or corrupt data): the Raft node stops rather than diverge.
    #[error("application {action}: {source}")]
    Application {
        /// What the application was doing: "apply", "snapshot", "restore", "open".
        action: &'static str,
        /// Its error.
        #[source]
        source: crate::app::AppError,
    },

    /// The data on disk was written by an incompatible version of Cairn.
    #[error("{path}: unsupported on-disk format version {found} (this build reads {expected})")]
    Format {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The version this build understands.
        expected: u32,
    },

    /// A value could not be decoded (corrupt data or a peer speaking another version).
    #[error("decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },

    /// openraft could not start.
    #[error("start raft node {node_id}: {reason}")]
    Start {
        /// This node's id.
        node_id: NodeId,
        /// Why.
        reason: String,
    },

    /// The Raft core stopped (shut down, or a storage error made it stop).
    #[error("raft node stopped: {0}")]
    Stopped(String),

    /// No leader accepted the call within the time allowed.
    #[error("no raft leader after {waited:?}: {reason}")]
    NoLeader {
        /// How long the call waited for one.
        waited: Duration,
        /// Why the last attempt failed.
        reason: String,
    },

    /// The operation must run on the leader and this node is not it.
    #[error("not the raft leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<NodeId>,
    },

    /// The command is larger than a Raft message may carry
    /// ([`RaftConfig::max_message_bytes`](crate::RaftConfig::max_message_bytes) / 2).
    #[error("command of {bytes} bytes exceeds the {limit} byte limit")]
    CommandTooLarge {
        /// The command's size.
        bytes: usize,
        /// The largest command accepted.
        limit: usize,
    },

    /// The application rejected the command (it was committed and applied, and changed nothing).
    #[error("command rejected: {0}")]
    Rejected(String),

    /// The write may or may not have been applied (the leader changed or the connection broke
    /// after the command was sent); retrying may apply it twice.
    #[error("write outcome unknown: {0}")]
    Indeterminate(String),

    /// A gRPC call to a peer failed.
    #[error("{rpc} to node {target} at {addr}: {status}")]
    Rpc {
        /// The RPC name.
        rpc: &'static str,
        /// The peer's node id.
        target: NodeId,
        /// The peer's cluster address.
        addr: String,
        /// The gRPC status.
        #[source]
        status: Box<tonic::Status>,
    },

    /// A peer address is not a valid `host:port`.
    #[error("invalid peer address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address.
        addr: String,
        /// Why it is invalid.
        reason: String,
    },

    /// `initialize` was refused (other than "already initialized", which is not an error).
    #[error("initialize cluster: {0}")]
    Initialize(String),

    /// A membership change was refused.
    #[error("change membership: {0}")]
    Membership(String),

    /// A linearizable read could not be confirmed.
    #[error("linearizable read: {0}")]
    Linearizable(String),

    /// A call did not finish in time.
    #[error("{action} timed out after {after:?}")]
    Timeout {
        /// What timed out.
        action: &'static str,
        /// The time allowed.
        after: Duration,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short, stable label for metrics (`cairn_raft_errors_total{kind=…}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidConfig(_) => "invalid_config",
            Error::Identity { .. } => "identity",
            Error::Io { .. } => "io",
            Error::Storage { .. } => "storage",
            Error::Application { .. } => "application",
            Error::Format { .. } => "format",
            Error::Decode { .. } => "decode",
            Error::Start { .. } => "start",
            Error::Stopped(_) => "stopped",
            Error::NoLeader { .. } => "no_leader",
            Error::NotLeader { .. } => "not_leader",
            Error::CommandTooLarge { .. } => "command_too_large",
            Error::Rejected(_) => "rejected",
            Error::Indeterminate(_) => "indeterminate",
            Error::Rpc { .. } => "rpc",
            Error::InvalidAddress { .. } => "invalid_address",
            Error::Initialize(_) => "initialize",
            Error::Membership(_) => "membership",
            Error::Linearizable(_) => "linearizable",
            Error::Timeout { .. } => "timeout",
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }

    pub(crate) fn storage(action: &'static str, source: impl Into<redb::Error>) -> Self {
        Error::Storage { action, source: source.into() }
    }
}

/// Converts any error into the `io::Error` openraft's storage traits return.
pub(crate) fn to_io(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}
