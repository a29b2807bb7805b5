//! Test harness: nodes with a real gRPC server on 127.0.0.x, and small waiting helpers.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use cairn_raft::NodeIdentity;
use cairn_raft::RaftConfig;
use cairn_raft::RaftNode;
use cairn_raft::raft_service_with_shutdown;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::kv::KvApp;

/// Logs to stderr when `RUST_LOG` is set (e.g. `RUST_LOG=cairn_raft=debug,openraft=info`).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A port free on 127.0.0.1 (and, in practice, on the rest of 127/8).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Timings for fast tests.
pub fn fast(cfg: &mut RaftConfig) {
    cfg.heartbeat_interval = Duration::from_millis(50);
    cfg.election_timeout_min = Duration::from_millis(300);
    cfg.election_timeout_max = Duration::from_millis(600);
    cfg.connect_timeout = Duration::from_millis(500);
    cfg.write_timeout = Duration::from_secs(10);
}

/// A running node: Raft plus its cluster gRPC server.
pub struct TestNode {
    pub node: RaftNode,
    pub app: Arc<KvApp>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    stop: CancellationToken,
    server: JoinHandle<()>,
}

impl TestNode {
    /// Starts a node on `data_dir` (creating its identity) serving on `addr`.
    pub async fn start(data_dir: &Path, addr: SocketAddr, tweak: impl FnOnce(&mut RaftConfig)) -> TestNode {
        let id = NodeIdentity::load_or_create(data_dir).expect("node identity").id();
        let mut cfg = RaftConfig::new(data_dir, id, addr.to_string());
        fast(&mut cfg);
        tweak(&mut cfg);
        let app = Arc::new(KvApp::default());
        let node = RaftNode::start(cfg, app.clone()).await.expect("start raft node");
        let listener = bind(addr).await;
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let service = raft_service_with_shutdown(&node, stop.clone());
        let server = tokio::spawn(async move {
            let served = Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "test server ended");
            }
        });
        TestNode { node, app, addr, data_dir: data_dir.to_path_buf(), stop, server }
    }

    pub fn id(&self) -> u64 {
        self.node.id()
    }

    /// Graceful stop in the order a node uses: the cluster server first (its replication
    /// streams end with the shutdown token, so it drains at once), then Raft.
    pub async fn stop(self) {
        self.stop.cancel();
        let drained = tokio::time::timeout(Duration::from_secs(3), self.server).await;
        assert!(drained.is_ok(), "the cluster server did not drain within 3 s");
        self.node.shutdown().await.expect("raft shutdown");
    }
}

/// Binds `addr`, retrying briefly (a restarted node rebinds the address it just left).
async fn bind(addr: SocketAddr) -> tokio::net::TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(%addr, error = %e, "bind retry");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("bind {addr}: {e}"),
        }
    }
}

/// Polls `cond` every 20 ms until it holds, or panics after `timeout` naming `what`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The leader all `nodes` agree on, once they do.
pub async fn agreed_leader(nodes: &[&RaftNode], timeout: Duration) -> u64 {
    agreed_new_leader(nodes, None, timeout).await
}

/// The leader all `nodes` agree on, once they do and it is not `old`.
pub async fn agreed_new_leader(nodes: &[&RaftNode], old: Option<u64>, timeout: Duration) -> u64 {
    let mut leader = 0;
    wait_for("a leader all nodes agree on", timeout, || {
        let ids: Vec<Option<u64>> = nodes.iter().map(|n| n.leader().map(|(id, _)| id)).collect();
        let agreed = ids[0].filter(|l| Some(*l) != old && ids.iter().all(|i| *i == Some(*l)));
        if let Some(l) = agreed {
            leader = l;
        }
        async move { agreed.is_some() }
    })
    .await;
    leader
}

/// Waits until every node has applied at least `index`.
pub async fn all_applied(nodes: &[&RaftNode], index: u64, timeout: Duration) {
    wait_for(&format!("all nodes applied {index}"), timeout, || {
        let done = nodes.iter().all(|n| n.metrics().applied_index >= index);
        async move { done }
    })
    .await;
}

/// Waits until `key` holds `value` in `node`'s state machine. (A writer's response can arrive
/// before the leader's metrics show the apply, so tests wait on content, not on indexes.)
pub async fn wait_key(node: &RaftNode, key: &str, value: &str, timeout: Duration) {
    wait_for(&format!("{key}={value} on node {}", node.id()), timeout, || {
        let ok = crate::kv::KvApp::get(node, key).as_deref() == Some(value);
        async move { ok }
    })
    .await;
}
