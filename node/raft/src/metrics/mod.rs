//! What a node exports: openraft's view (term, leader, indexes, membership) plus Cairn's own
//! counters and latency histograms. The node turns a [`RaftNodeMetrics`] into Prometheus gauges.

mod histogram;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

pub(crate) use histogram::Histogram;
pub use histogram::HistogramSnapshot;
pub use histogram::LATENCY_BUCKETS;
use openraft::ServerState;

use crate::types::NodeId;
use crate::types::NodeInfo;
use crate::types::TypeConfig;

/// Counters and histograms updated by the storage and write paths.
#[derive(Debug, Default)]
pub(crate) struct RaftStats {
    pub(crate) log_flush: Histogram,
    pub(crate) log_flushes: AtomicU64,
    pub(crate) log_entries_appended: AtomicU64,
    pub(crate) apply_batch: Histogram,
    pub(crate) applied_entries: AtomicU64,
    pub(crate) rejected_commands: AtomicU64,
    pub(crate) snapshots_built: AtomicU64,
    pub(crate) snapshots_installed: AtomicU64,
    pub(crate) last_snapshot_bytes: AtomicU64,
    pub(crate) write: Histogram,
    pub(crate) writes_forwarded: AtomicU64,
    pub(crate) write_errors: AtomicU64,
}

impl RaftStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A node's role in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeRole {
    /// The leader.
    Leader,
    /// A voter following a leader.
    Follower,
    /// A voter campaigning.
    Candidate,
    /// Not a voter (or not yet part of a cluster).
    Learner,
    /// Stopped.
    Shutdown,
}

impl NodeRole {
    /// The role's name, as used by openraft and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Leader => "Leader",
            NodeRole::Follower => "Follower",
            NodeRole::Candidate => "Candidate",
            NodeRole::Learner => "Learner",
            NodeRole::Shutdown => "Shutdown",
        }
    }
}

impl From<ServerState> for NodeRole {
    fn from(s: ServerState) -> Self {
        match s {
            ServerState::Leader => NodeRole::Leader,
            ServerState::Follower => NodeRole::Follower,
            ServerState::Candidate => NodeRole::Candidate,
            ServerState::Learner => NodeRole::Learner,
            ServerState::Shutdown => NodeRole::Shutdown,
        }
    }
}

/// A point-in-time view of a Raft node, for gauges, the admin API and readiness.
/// Indexes are 0 when nothing is there yet (Raft's first real entry has index 1 or more).
#[derive(Debug, Clone)]
pub struct RaftNodeMetrics {
    /// This node's id.
    pub node_id: NodeId,
    /// Its role.
    pub role: NodeRole,
    /// The current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
    /// Index of the last log entry.
    pub last_log_index: u64,
    /// Index of the last entry known committed.
    pub committed_index: u64,
    /// Index of the last entry applied to the state machine.
    pub applied_index: u64,
    /// Index of the last entry in the current snapshot.
    pub snapshot_index: u64,
    /// Index of the last purged log entry.
    pub purged_index: u64,
    /// Voters of the effective membership.
    pub voters: BTreeMap<NodeId, NodeInfo>,
    /// Learners of the effective membership.
    pub learners: BTreeMap<NodeId, NodeInfo>,
    /// Leader only: the highest log index each follower/learner has acknowledged.
    pub replication: BTreeMap<NodeId, u64>,
    /// Why the Raft core stopped, when it did.
    pub fatal: Option<String>,
    /// Log flushes (redb commits with fsync) and their latency.
    pub log_flush: HistogramSnapshot,
    /// Entries appended to the log.
    pub log_entries_appended: u64,
    /// Apply batches (one redb transaction each) and their latency.
    pub apply_batch: HistogramSnapshot,
    /// Entries applied to the state machine (including blank and membership entries).
    pub applied_entries: u64,
    /// Commands the application rejected.
    pub rejected_commands: u64,
    /// Snapshots built by this node.
    pub snapshots_built: u64,
    /// Snapshots received from a leader and installed.
    pub snapshots_installed: u64,
    /// Size of the last snapshot built or installed, in bytes.
    pub last_snapshot_bytes: u64,
    /// [`RaftNode::write`](crate::RaftNode::write) calls and their end-to-end latency.
    pub write: HistogramSnapshot,
    /// Writes forwarded to another node.
    pub writes_forwarded: u64,
    /// Writes that returned an error.
    pub write_errors: u64,
}

impl RaftNodeMetrics {
    pub(crate) fn collect(m: &openraft::RaftMetrics<TypeConfig>, stats: &RaftStats) -> Self {
        let membership = m.membership_config.membership();
        let node = |id: NodeId| membership.get_node(&id).cloned().unwrap_or_default();
        let index = |l: Option<&crate::types::LogId>| l.map(|l| l.index()).unwrap_or(0);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Self {
            node_id: m.id,
            role: m.state.into(),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index.unwrap_or(0),
            committed_index: index(m.local_committed.as_ref()),
            applied_index: index(m.last_applied.as_ref()),
            snapshot_index: index(m.snapshot.as_ref()),
            purged_index: index(m.purged.as_ref()),
            voters: membership.voter_ids().map(|id| (id, node(id))).collect(),
            learners: membership.learner_ids().map(|id| (id, node(id))).collect(),
            replication: m
                .replication
                .as_ref()
                .map(|r| r.iter().map(|(id, l)| (*id, index(l.as_ref()))).collect())
                .unwrap_or_default(),
            fatal: m.running_state.as_ref().err().map(|e| e.to_string()),
            log_flush: stats.log_flush.snapshot(),
            log_entries_appended: load(&stats.log_entries_appended),
            apply_batch: stats.apply_batch.snapshot(),
            applied_entries: load(&stats.applied_entries),
            rejected_commands: load(&stats.rejected_commands),
            snapshots_built: load(&stats.snapshots_built),
            snapshots_installed: load(&stats.snapshots_installed),
            last_snapshot_bytes: load(&stats.last_snapshot_bytes),
            write: stats.write.snapshot(),
            writes_forwarded: load(&stats.writes_forwarded),
            write_errors: load(&stats.write_errors),
        }
    }
}
