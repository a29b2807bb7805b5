//! [`RaftNode`]: the facade the registry node uses — start, write, read, admin, metrics, stop.

mod admin;
mod forwarder;
pub(crate) mod outcome;
mod write;

use std::fs;
use std::sync::Arc;

use openraft::async_runtime::watch::WatchReceiver;
use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;

use self::forwarder::Forwarder;
use crate::app::Application;
use crate::config::RaftConfig;
use crate::error::Error;
use crate::error::Result;
use crate::identity::NODE_ID_FILE;
use crate::identity::raft_dir;
use crate::metrics::RaftNodeMetrics;
use crate::metrics::RaftStats;
use crate::network::ChannelPool;
use crate::network::NetworkFactory;
use crate::store::LOG_DB;
use crate::store::LogStore;
use crate::store::StateMachineStore;
use crate::types::NodeId;
use crate::types::NodeInfo;
use crate::types::Raft;

/// A running Raft member: openraft plus Cairn's storage, network and write forwarding.
/// Cheap to clone; every clone is the same node.
#[derive(Clone)]
pub struct RaftNode {
    inner: Arc<Inner>,
}

struct Inner {
    config: RaftConfig,
    raft: Raft,
    /// Read access to the state machine; `None` once shut down (so the database can close).
    state_machine: RwLock<Option<StateMachineStore>>,
    pool: ChannelPool,
    /// Batches writes this node forwards to the leader.
    forwarder: Forwarder,
    stats: Arc<RaftStats>,
    /// Cancels waiting writes and reads on shutdown.
    shutdown: CancellationToken,
}

impl RaftNode {
    /// Opens the node's storage under `<data_dir>/raft/` and starts Raft. The node joins a
    /// cluster when a leader adds it, or forms one with [`initialize`](Self::initialize).
    ///
    /// `config.node_id` must be the id stored in `<data_dir>/raft/node-id`
    /// ([`NodeIdentity::load_or_create`](crate::NodeIdentity::load_or_create)).
    /// The node serves peers once the caller mounts [`raft_service`](crate::raft_service).
    pub async fn start(config: RaftConfig, app: Arc<dyn Application>) -> Result<Self> {
        config.validate()?;
        let dir = raft_dir(&config.data_dir);
        check_identity(&config)?;
        let stats = Arc::new(RaftStats::default());
        let log = LogStore::open_with(
            &dir.join(LOG_DB),
            config.log_quick_repair,
            config.max_message_bytes / 2,
            stats.clone(),
        )?;
        let sm = StateMachineStore::open_with(&dir, app, config.state_machine_sync_interval, stats.clone())?;
        let pool = ChannelPool::new(config.connect_timeout, config.max_message_bytes);
        let network = NetworkFactory::new(config.node_id, pool.clone(), config.snapshot_chunk_bytes);
        let raft_config = Arc::new(config.to_openraft()?);
        let raft = Raft::new(config.node_id, raft_config, network, log, sm.clone())
            .await
            .map_err(|e| Error::Start { node_id: config.node_id, reason: e.to_string() })?;
        tracing::info!(node_id = config.node_id, addr = %config.advertise_addr, "raft node started");
        let shutdown = CancellationToken::new();
        let forwarder = Forwarder::spawn(config.node_id, pool.clone(), config.max_message_bytes / 2, shutdown.clone());
        let inner = Inner { config, raft, state_machine: RwLock::new(Some(sm)), pool, forwarder, stats, shutdown };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.config.node_id
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &RaftConfig {
        &self.inner.config
    }

    /// The openraft handle, for what the facade does not cover (e.g. `raft().wait(..)`).
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The leader this node knows of, with its address.
    pub fn leader(&self) -> Option<(NodeId, NodeInfo)> {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow_watched();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id).cloned().unwrap_or_default();
        Some((id, node))
    }

    /// Whether this node is the leader (as far as it knows: use
    /// [`ensure_linearizable`](Self::ensure_linearizable) before acting on it).
    pub fn is_leader(&self) -> bool {
        self.leader().is_some_and(|(id, _)| id == self.id())
    }

    /// A token that fires when [`shutdown`](Self::shutdown) starts.
    pub(crate) fn closing(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Runs `f` on a read transaction of the local state machine (the application's tables).
    /// Reads are local, like Nacos: call [`ensure_linearizable`](Self::ensure_linearizable)
    /// first for a linearizable read.
    pub fn read<T>(&self, f: impl FnOnce(&redb::ReadTransaction) -> T) -> Result<T> {
        let guard = self.inner.state_machine.read();
        let sm = guard.as_ref().ok_or_else(|| Error::Stopped("raft node was shut down".into()))?;
        sm.read(f)
    }

    /// A point-in-time view for gauges, the admin API and readiness.
    pub fn metrics(&self) -> RaftNodeMetrics {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow_watched();
        RaftNodeMetrics::collect(&m, &self.inner.stats)
    }

    /// Stops Raft (waiting for its tasks), makes the state machine durable and closes the
    /// databases. Writes and reads waiting for a leader fail with [`Error::Stopped`].
    pub async fn shutdown(&self) -> Result<()> {
        self.inner.shutdown.cancel();
        self.inner.forwarder.join().await;
        let result = self.inner.raft.shutdown().await.map_err(|e| Error::Stopped(format!("raft shutdown: {e}")));
        let sm = self.inner.state_machine.write().take();
        if let Some(sm) = sm {
            sm.sync()?;
        }
        tracing::info!(node_id = self.id(), "raft node stopped");
        result
    }
}

/// The configured id must be the one stored beside the data, or this node would vote under
/// another node's name.
fn check_identity(config: &RaftConfig) -> Result<()> {
    let path = raft_dir(&config.data_dir).join(NODE_ID_FILE);
    let text = fs::read_to_string(&path).map_err(|e| Error::Identity {
        path: path.clone(),
        reason: format!("cannot read ({e}); create it with NodeIdentity::load_or_create"),
    })?;
    if text.trim() != config.node_id.to_string() {
        return Err(Error::Identity {
            path,
            reason: format!("holds id {}, but the node was configured with {}", text.trim(), config.node_id),
        });
    }
    Ok(())
}
