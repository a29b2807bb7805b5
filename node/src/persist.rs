//! Starting the node's Raft: identity, state machine application, bootstrap of a standalone
//! node (a one-member cluster), and the replicator every persistent write goes through.
//!
//! Bootstrap: a node without `--members` initialises a one-member cluster of itself exactly
//! once (on an empty data dir; `initialize` is a no-op on a node that already has state). A
//! restarted node finds its log, vote and membership in its data dir and resumes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use cairn_raft::{NodeIdentity, NodeInfo, RaftConfig, RaftNode};

use crate::config::Config;
use crate::configs::store::ConfigStore;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::naming::Registry;
use crate::naming::persist::NamingPersist;
use crate::raft_metrics::RaftCollector;
use crate::state::{NodeState, RaftReplicator};

fn raft_err(action: &'static str) -> impl Fn(cairn_raft::Error) -> Error {
    move |e| Error::Raft { action, message: e.to_string() }
}

/// The started Raft side of a node.
pub struct Persist {
    /// The Raft node.
    pub raft: Arc<RaftNode>,
    /// The application applied by Raft.
    pub app: Arc<NodeState>,
    /// Committed configs.
    pub configs: Arc<ConfigStore>,
    /// Writes and reads through Raft.
    pub replicator: Arc<RaftReplicator>,
}

impl Persist {
    /// Loads or creates the node id and starts Raft on `<data-dir>/raft`.
    pub async fn start(config: &Config, registry: Arc<Registry>, metrics: &Metrics) -> Result<Persist> {
        let identity = NodeIdentity::load_or_create(&config.data_dir).map_err(raft_err("loading the node id"))?;
        let advertise = format!("{}:{}", config.advertise_host(), config.cluster_grpc_addr().port());
        let mut rc = RaftConfig::new(&config.data_dir, identity.id(), advertise);
        // A snapshot carries every table (config history included), so build one rarely; the
        // log in between stays on disk, not in memory.
        rc.snapshot_policy = cairn_raft::SnapshotPolicy::LogsSinceLast(config.raft_snapshot_every);
        rc.replication_lag_threshold = rc.replication_lag_threshold.max(config.raft_snapshot_every.saturating_mul(2));
        let configs = Arc::new(ConfigStore::new());
        let app = Arc::new(NodeState::new(configs.clone(), NamingPersist::new(registry)));
        let raft = Arc::new(RaftNode::start(rc, app.clone()).await.map_err(raft_err("starting"))?);
        metrics.register_collector(Box::new(RaftCollector::new(raft.clone())?))?;
        tracing::info!(node_id = identity.id(), "raft started");
        let replicator = Arc::new(RaftReplicator::new(raft.clone()));
        Ok(Persist { raft, app, configs, replicator })
    }

    /// Forms the cluster exactly once, then waits until a leader is known and this node has
    /// caught up with it.
    ///
    /// - Standalone: initialise a one-member cluster of this node (a no-op once it has state).
    /// - Static `--members`: only the member whose address sorts first (the *bootstrapper*) may
    ///   initialise, and only when every member answers and none belongs to a cluster yet; it
    ///   then initialises with all members' ids. Every other member waits to be contacted by the
    ///   leader. A node that already has state (a restart) never initialises again.
    pub async fn bootstrap(raft: Arc<RaftNode>, config: Arc<Config>, cancel: CancellationToken) -> Result<()> {
        let members = config.static_members()?;
        let me = raft.id();
        let my_addr = Config::member_cluster_addr(&config.self_address());
        let initialized = |r: &RaftNode| !r.metrics().voters.is_empty();
        if members.is_empty() {
            raft.initialize(BTreeMap::from([(me, NodeInfo::new(my_addr))])).await.map_err(raft_err("initialising"))?;
        } else if members.first() == Some(&config.self_address()) {
            while !initialized(&raft) {
                let mut ids = BTreeMap::from([(me, NodeInfo::new(my_addr.clone()))]);
                let (mut reachable, mut formed) = (true, false);
                for m in members.iter().filter(|m| **m != config.self_address()) {
                    let addr = Config::member_cluster_addr(m);
                    match raft.peer_status(&addr).await {
                        Ok(st) => {
                            formed |= st.initialized;
                            ids.insert(st.node_id, NodeInfo::new(addr));
                        }
                        Err(e) => {
                            tracing::info!(member = %m, error = %e, "waiting for members before forming the cluster");
                            reachable = false;
                        }
                    }
                }
                if formed {
                    tracing::warn!(
                        "another member already belongs to a cluster; not initialising (a wiped node must be re-added through membership changes)"
                    );
                    break;
                }
                if reachable {
                    tracing::info!(members = ids.len(), "forming the cluster");
                    raft.initialize(ids).await.map_err(raft_err("initialising"))?;
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = cancel.cancelled() => return Ok(()),
                }
            }
        }
        // Ready means caught up: a linearizable read succeeds only once a leader is known and
        // this node has applied everything committed before the read began.
        loop {
            if raft.leader().is_some() && raft.ensure_linearizable().await.is_ok() {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = cancel.cancelled() => return Ok(()),
            }
        }
    }
}
