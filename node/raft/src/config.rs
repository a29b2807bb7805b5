//! Configuration of a Raft node.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
use crate::error::Result;
use crate::types::NodeId;

/// When the state machine builds a snapshot (after which the log before it is purged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotPolicy {
    /// Build a snapshot once this many entries were applied since the last one.
    LogsSinceLast(u64),
    /// Only when asked ([`RaftNode::trigger_snapshot`](crate::RaftNode::trigger_snapshot)), or
    /// when a lagging follower needs one.
    Never,
}

/// Everything a [`RaftNode`](crate::RaftNode) needs. Build it with [`RaftConfig::new`] and
/// adjust fields; [`RaftNode::start`](crate::RaftNode::start) validates it.
#[derive(Debug, Clone)]
pub struct RaftConfig {
    /// The node's data directory; Raft files go to `<data_dir>/raft/`.
    pub data_dir: PathBuf,
    /// This node's id, from [`NodeIdentity::load_or_create`](crate::NodeIdentity::load_or_create).
    pub node_id: NodeId,
    /// The cluster address peers reach this node at, `host:port` (cluster gRPC port, P+1001).
    pub advertise_addr: String,
    /// A name for logs and openraft's tracing spans.
    pub cluster_name: String,
    /// Leader heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// When to build snapshots. Default: every 10,000 applied entries.
    pub snapshot_policy: SnapshotPolicy,
    /// Entries kept in the log after a snapshot covers them (lets a briefly lagging follower
    /// catch up from the log instead of a snapshot). Default 1,000.
    pub max_in_snapshot_log_to_keep: u64,
    /// A follower this many entries behind is sent a snapshot instead of entries. Must exceed
    /// the snapshot interval. Default 20,000.
    pub replication_lag_threshold: u64,
    /// Most entries in one AppendEntries message. Default 1,024.
    pub max_payload_entries: u64,
    /// Timeout for establishing a TCP connection to a peer. Default 2 s.
    pub connect_timeout: Duration,
    /// Time allowed to send and install a whole snapshot. Default 60 s.
    pub install_snapshot_timeout: Duration,
    /// Largest gRPC message sent or accepted on the cluster port (both directions). Default 64 MiB.
    pub max_message_bytes: usize,
    /// Snapshot transfer chunk size. Default 1 MiB. Must be below `max_message_bytes`.
    pub snapshot_chunk_bytes: usize,
    /// Largest snapshot a node accepts from a leader. Default 4 GiB.
    pub max_snapshot_bytes: u64,
    /// How long [`RaftNode::write`](crate::RaftNode::write) and
    /// [`RaftNode::ensure_linearizable`](crate::RaftNode::ensure_linearizable) keep trying
    /// (waiting for a leader, following redirects, waiting for the commit) before they give up.
    /// Default 5 s.
    pub write_timeout: Duration,
    /// The state machine commits each applied batch at once, but fsyncs it only when this much
    /// time passed since its last fsync. Committed entries are durable in the fsynced log anyway
    /// and are re-applied after a crash; see [`crate::store`]. Default 1 s. Zero fsyncs every
    /// batch: it only shortens re-apply after a crash, and costs dearly (openraft applies batches
    /// one after another, so under load they shrink to ~1 entry: ≈2,000 writes/s measured
    /// instead of ≈60,000).
    pub state_machine_sync_interval: Duration,
    /// Enable redb quick repair (2-phase commit + saved allocator state) on the log database as
    /// well: no repair scan of the log after a crash, at the price of a second fsync on every
    /// append. The state machine database always uses it. Default false: the log is compacted
    /// at every snapshot, so its repair scan is short (0.27 s for 200,000 entries measured).
    pub log_quick_repair: bool,
}

impl RaftConfig {
    /// A configuration with production defaults.
    pub fn new(data_dir: impl Into<PathBuf>, node_id: NodeId, advertise_addr: impl Into<String>) -> Self {
        Self {
            data_dir: data_dir.into(),
            node_id,
            advertise_addr: advertise_addr.into(),
            cluster_name: "cairn".to_string(),
            heartbeat_interval: Duration::from_millis(150),
            election_timeout_min: Duration::from_millis(1000),
            election_timeout_max: Duration::from_millis(2000),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(10_000),
            max_in_snapshot_log_to_keep: 1_000,
            replication_lag_threshold: 20_000,
            max_payload_entries: 1_024,
            connect_timeout: Duration::from_secs(2),
            install_snapshot_timeout: Duration::from_secs(60),
            max_message_bytes: 64 << 20,
            snapshot_chunk_bytes: 1 << 20,
            max_snapshot_bytes: 4 << 30,
            write_timeout: Duration::from_secs(5),
            state_machine_sync_interval: Duration::from_secs(1),
            log_quick_repair: false,
        }
    }

    /// Checks ranges and relations between fields.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidConfig(m));
        if self.node_id == 0 {
            return bad("node_id must be non-zero".into());
        }
        if self.advertise_addr.rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()) {
            return bad(format!("advertise_addr {:?} is not host:port", self.advertise_addr));
        }
        if self.heartbeat_interval.is_zero() || self.election_timeout_min <= self.heartbeat_interval * 2 {
            return bad("election_timeout_min must exceed twice the heartbeat_interval".into());
        }
        if self.election_timeout_max <= self.election_timeout_min {
            return bad("election_timeout_max must exceed election_timeout_min".into());
        }
        if self.snapshot_chunk_bytes == 0 || self.snapshot_chunk_bytes + (64 << 10) > self.max_message_bytes {
            return bad("snapshot_chunk_bytes must be non-zero and at least 64 KiB below max_message_bytes".into());
        }
        if self.max_payload_entries == 0 {
            return bad("max_payload_entries must be non-zero".into());
        }
        if let SnapshotPolicy::LogsSinceLast(n) = self.snapshot_policy
            && (n == 0 || self.replication_lag_threshold <= n)
        {
            return bad("snapshot interval must be non-zero and below replication_lag_threshold".into());
        }
        Ok(())
    }

    /// The openraft configuration derived from this one.
    pub(crate) fn to_openraft(&self) -> Result<openraft::Config> {
        let ms = |d: Duration| d.as_millis().min(u64::MAX as u128) as u64;
        let cfg = openraft::Config {
            cluster_name: self.cluster_name.clone(),
            heartbeat_interval: ms(self.heartbeat_interval),
            election_timeout_min: ms(self.election_timeout_min),
            election_timeout_max: ms(self.election_timeout_max),
            install_snapshot_timeout: ms(self.install_snapshot_timeout),
            max_payload_entries: self.max_payload_entries,
            replication_lag_threshold: self.replication_lag_threshold,
            snapshot_policy: match self.snapshot_policy {
                SnapshotPolicy::LogsSinceLast(n) => openraft::SnapshotPolicy::LogsSinceLast(n),
                SnapshotPolicy::Never => openraft::SnapshotPolicy::Never,
            },
            max_in_snapshot_log_to_keep: self.max_in_snapshot_log_to_keep,
            enable_pre_vote: Some(true),
            ..openraft::Config::default()
        };
        cfg.validate().map_err(|e| Error::InvalidConfig(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_map_to_openraft() {
        let c = RaftConfig::new("/tmp/x", 7, "node-0.cairn:9849");
        c.validate().expect("valid");
        let o = c.to_openraft().expect("openraft config");
        assert_eq!(o.heartbeat_interval, 150);
        assert_eq!(o.snapshot_policy, openraft::SnapshotPolicy::LogsSinceLast(10_000));
    }

    #[test]
    fn bad_values_are_refused() {
        let base = RaftConfig::new("/tmp/x", 7, "127.0.0.1:9849");
        let cases: [fn(&mut RaftConfig); 8] = [
            |c| c.node_id = 0,
            |c| c.advertise_addr = "nope".into(),
            |c| c.advertise_addr = ":9849".into(),
            |c| c.advertise_addr = "h:99999".into(),
            |c| c.election_timeout_min = c.heartbeat_interval,
            |c| c.election_timeout_max = c.election_timeout_min,
            |c| c.snapshot_chunk_bytes = c.max_message_bytes,
            |c| c.snapshot_policy = SnapshotPolicy::LogsSinceLast(c.replication_lag_threshold),
        ];
        for (i, f) in cases.iter().enumerate() {
            let mut c = base.clone();
            f(&mut c);
            assert!(c.validate().is_err(), "case {i} accepted: {c:?}");
        }
    }
}
