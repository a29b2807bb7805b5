//! Starting the node's Raft: identity, state machine application, bootstrap of a standalone
//! node (a one-member cluster), and the replicator every persistent write goes through.
//!
//! Bootstrap (see [`Persist::bootstrap`]): a node without `--members` initialises a one-member
//! cluster of itself exactly once (on an empty data dir; `initialize` is a no-op on a node that
//! already has state); with a static or discovered member set only the member whose address
//! sorts first forms the cluster. A restarted node finds its log, vote and membership in its
//! data dir and resumes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use cairn_raft::{NodeIdentity, NodeInfo, RaftConfig, RaftNode};

use crate::config::Config;
use crate::configs::store::ConfigStore;
use crate::error::{Error, Result};
use crate::membership::{MembersSpec, Membership};
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
        rc.log_quick_repair = config.raft_log_quick_repair;
        let configs = Arc::new(ConfigStore::new());
        let app = Arc::new(NodeState::new(configs.clone(), NamingPersist::new(registry)));
        let raft = Arc::new(RaftNode::start(rc, app.clone()).await.map_err(raft_err("starting"))?);
        metrics.register_collector(Box::new(RaftCollector::new(raft.clone())?))?;
        tracing::info!(node_id = identity.id(), "raft started");
        let replicator = Arc::new(RaftReplicator::new(raft.clone()));
        Ok(Persist { raft, app, configs, replicator })
    }

    /// Forms the cluster exactly once, then waits until a leader is known and this node has
    /// caught up with it. A node that already has state (a restart) never initialises again.
    ///
    /// - Standalone: initialise a one-member cluster of this node (a no-op once it has state).
    /// - Static `--members`: only the member whose address sorts first (the *bootstrapper*) may
    ///   initialise, and only when every member answers and none belongs to a cluster yet; it
    ///   then initialises with all members' ids. Every other member waits to be contacted by the
    ///   leader.
    /// - Discovered members (`file:`, `dns:`, `k8s:`): the same rule over the discovered set,
    ///   re-evaluated as it changes, which must also hold at least `--bootstrap-expect` members
    ///   and contain this node. Every other node waits to be added (by auto-join on the leader,
    ///   or through the admin API).
    pub async fn bootstrap(
        raft: Arc<RaftNode>,
        config: Arc<Config>,
        membership: Membership,
        cancel: CancellationToken,
    ) -> Result<()> {
        let me = raft.id();
        let my_addr = Config::member_cluster_addr(&config.self_address());
        match membership.spec() {
            MembersSpec::Standalone => {
                raft.initialize(BTreeMap::from([(me, NodeInfo::new(my_addr))]))
                    .await
                    .map_err(raft_err("initialising"))?;
            }
            MembersSpec::Static(members) => {
                if members.first() == Some(&config.self_address()) {
                    let mut log = Waiting::default();
                    while !initialized(&raft) {
                        match try_form(&raft, &config, members, &mut log).await? {
                            Formation::Formed | Formation::Refused => break,
                            Formation::Wait => {}
                        }
                        if !pause(&cancel, Duration::from_secs(1)).await {
                            return Ok(());
                        }
                    }
                }
            }
            MembersSpec::File(_) | MembersSpec::Dns(_) | MembersSpec::K8s(_) => {
                if membership.first_discovery(&cancel).await.is_none() {
                    return Ok(());
                }
                let mut log = Waiting::default();
                while !initialized(&raft) {
                    let found: Vec<String> = membership
                        .discovered()
                        .map(|d| {
                            let mut a: Vec<String> = d.iter().map(|m| m.address.clone()).collect();
                            a.sort();
                            a.dedup();
                            a
                        })
                        .unwrap_or_default();
                    let me_addr = config.self_address();
                    if !found.contains(&me_addr) {
                        log.note(format!(
                            "this node ({me_addr}) is not among the discovered members {found:?}; waiting"
                        ));
                    } else if found.first() != Some(&me_addr) {
                        log.note(format!("{} sorts first and forms the cluster; waiting to be added", found[0]));
                    } else if found.len() < config.bootstrap_expect {
                        log.note(format!(
                            "{} of --bootstrap-expect {} members discovered; waiting",
                            found.len(),
                            config.bootstrap_expect
                        ));
                    } else if let Formation::Formed = try_form(&raft, &config, &found, &mut log).await? {
                        break;
                    }
                    if !pause(&cancel, Duration::from_secs(1)).await {
                        return Ok(());
                    }
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

fn initialized(r: &RaftNode) -> bool {
    !r.metrics().voters.is_empty()
}

/// Sleeps for `d`; false when cancelled first.
async fn pause(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = cancel.cancelled() => false,
    }
}

/// Logs a waiting reason once, not every retry.
#[derive(Default)]
struct Waiting(Option<String>);

impl Waiting {
    fn note(&mut self, why: String) {
        if self.0.as_deref() != Some(why.as_str()) {
            tracing::info!("bootstrap: {why}");
            self.0 = Some(why);
        }
    }
}

/// Outcome of one attempt to form the cluster.
enum Formation {
    /// Initialised with every member.
    Formed,
    /// Another member already belongs to a cluster: this node must not form one.
    Refused,
    /// Some member did not answer yet.
    Wait,
}

/// Forms the cluster of `members` (HTTP addresses, this node among them) when every member
/// answers on its cluster port and none already belongs to a cluster.
async fn try_form(raft: &RaftNode, config: &Config, members: &[String], log: &mut Waiting) -> Result<Formation> {
    let me = config.self_address();
    let mut ids = BTreeMap::from([(raft.id(), NodeInfo::new(Config::member_cluster_addr(&me)))]);
    let mut missing = Vec::new();
    let mut formed = Vec::new();
    for m in members.iter().filter(|m| **m != me) {
        let addr = Config::member_cluster_addr(m);
        match raft.peer_status(&addr).await {
            Ok(st) if st.initialized => formed.push(m.clone()),
            Ok(st) => {
                ids.insert(st.node_id, NodeInfo::new(addr));
            }
            Err(e) => {
                tracing::debug!(member = %m, error = %e, "bootstrap: member not answering");
                missing.push(m.clone());
            }
        }
    }
    if !formed.is_empty() {
        log.note(format!(
            "{formed:?} already belong to a cluster; not initialising (this node waits to be added; a wiped node is re-added through membership changes)"
        ));
        return Ok(Formation::Refused);
    }
    if !missing.is_empty() {
        log.note(format!("waiting for {missing:?} to answer on their cluster ports before forming the cluster"));
        return Ok(Formation::Wait);
    }
    tracing::info!(members = ids.len(), "forming the cluster");
    raft.initialize(ids).await.map_err(raft_err("initialising"))?;
    Ok(Formation::Formed)
}
