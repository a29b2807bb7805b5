//! Starting the node's Raft: identity, state machine application, bootstrap of a standalone
//! node (a one-member cluster), and the replicator every persistent write goes through.
//!
//! Bootstrap: a node without `--members` initialises a one-member cluster of itself exactly
//! once (on an empty data dir; `initialize` is a no-op on a node that already has state). A
//! restarted node finds its log, vote and membership in its data dir and resumes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        let rc = RaftConfig::new(&config.data_dir, identity.id(), advertise);
        let configs = Arc::new(ConfigStore::new());
        let app = Arc::new(NodeState::new(configs.clone(), NamingPersist::new(registry)));
        let raft = Arc::new(RaftNode::start(rc, app.clone()).await.map_err(raft_err("starting"))?);
        metrics.register_collector(Box::new(RaftCollector::new(raft.clone())?))?;
        tracing::info!(node_id = identity.id(), "raft started");
        let replicator = Arc::new(RaftReplicator::new(raft.clone()));
        Ok(Persist { raft, app, configs, replicator })
    }

    /// Standalone: initialise a one-member cluster once, then wait (≤ 30 s) for leadership so
    /// the node reports ready only when it can take writes.
    pub async fn bootstrap(&self, config: &Config) -> Result<()> {
        let me = self.raft.id();
        let addr = format!("{}:{}", config.advertise_host(), config.cluster_grpc_addr().port());
        self.raft.initialize(BTreeMap::from([(me, NodeInfo::new(addr))])).await.map_err(raft_err("initialising"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.raft.is_leader() {
            if Instant::now() > deadline {
                return Err(Error::Raft { action: "electing a leader", message: "no leader within 30 s".into() });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}
