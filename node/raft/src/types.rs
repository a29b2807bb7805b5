//! The Raft type configuration: node ids, node information, commands and replies.

use std::fmt;

use serde::Deserialize;
use serde::Serialize;

/// A Raft node id: random, non-zero, generated on first boot and never reused
/// (see [`NodeIdentity`](crate::NodeIdentity)).
pub type NodeId = u64;

/// What the cluster knows about a member: where its cluster gRPC port listens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The member's cluster address, `host:port` (the cluster gRPC port, HTTP port + 1001).
    pub cluster_addr: String,
}

impl NodeInfo {
    /// A member listening on `cluster_addr` (`host:port`).
    pub fn new(cluster_addr: impl Into<String>) -> Self {
        Self { cluster_addr: cluster_addr.into() }
    }
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cluster_addr)
    }
}

/// An opaque application command: the payload of a normal Raft log entry.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command(pub Vec<u8>);

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({} bytes)", self.0.len())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What applying one log entry produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The entry was applied; the application's response (empty for blank and membership entries).
    Applied(Vec<u8>),
    /// The application rejected the command ([`AppError::Rejected`](crate::AppError::Rejected)).
    Rejected(String),
}

impl Default for Reply {
    fn default() -> Self {
        Reply::Applied(Vec::new())
    }
}

openraft::declare_raft_types!(
    /// Cairn's openraft type configuration.
    pub TypeConfig:
        D = Command,
        R = Reply,
        NodeId = NodeId,
        Node = NodeInfo,
);

/// The openraft handle for Cairn's types and state machine.
pub type Raft = openraft::Raft<TypeConfig, crate::store::StateMachineStore>;
/// A log id (leader id + index).
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
/// A Raft log entry.
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
/// A vote.
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
/// A membership config with the log id that introduced it.
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
/// Snapshot metadata (last included log id and membership).
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot: metadata plus the serialized state machine (see [`crate::store::snapshot`]).
pub type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, Vec<u8>>;
