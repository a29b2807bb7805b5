//! Write throughput of cairn-raft: a single node (standalone = one-member cluster) and a 3-node
//! cluster on 127.0.0.1-3, real gRPC, fsync on, N writes with C in flight.
//!
//! ```sh
//! cargo run --release -p cairn-raft --example raft_bench -- [--writes 40000] [--concurrency 64]
//!     [--value-bytes 100] [--no-quick-repair] [--sm-sync-ms 1000] [--only single|cluster]
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use cairn_raft::AppError;
use cairn_raft::Application;
use cairn_raft::NodeIdentity;
use cairn_raft::NodeInfo;
use cairn_raft::RaftConfig;
use cairn_raft::RaftNode;
use futures::StreamExt;
use redb::TableDefinition;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

const KV: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("bench_kv");

/// Stores each command under a key taken from its first 8 bytes.
struct BenchApp;

impl Application for BenchApp {
    fn open(&self, _tx: &redb::ReadTransaction) -> Result<(), AppError> {
        Ok(())
    }
    fn apply(&self, tx: &redb::WriteTransaction, index: u64, command: &[u8]) -> Result<Vec<u8>, AppError> {
        let key = command.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).unwrap_or(index);
        tx.open_table(KV)?.insert(key, command)?;
        Ok(Vec::new())
    }
    fn after_commit(&self, _applied: &[(u64, Vec<u8>)]) {}
    fn snapshot(&self, _tx: &redb::ReadTransaction, _out: &mut Vec<u8>) -> Result<(), AppError> {
        Ok(()) // the benchmark never needs a real one
    }
    fn restore(&self, _tx: &redb::WriteTransaction, _data: &[u8]) -> Result<(), AppError> {
        Ok(())
    }
}

struct Args {
    writes: usize,
    concurrency: usize,
    value_bytes: usize,
    quick_repair: bool,
    sm_sync: Duration,
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        writes: 40_000,
        concurrency: 64,
        value_bytes: 100,
        quick_repair: true,
        sm_sync: Duration::from_secs(1),
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--writes" => a.writes = value().parse().expect("--writes N"),
            "--concurrency" => a.concurrency = value().parse().expect("--concurrency N"),
            "--value-bytes" => a.value_bytes = value().parse().expect("--value-bytes N"),
            "--sm-sync-ms" => a.sm_sync = Duration::from_millis(value().parse().expect("--sm-sync-ms N")),
            "--no-quick-repair" => a.quick_repair = false,
            "--only" => a.only = Some(value()),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

struct BenchNode {
    node: RaftNode,
    stop: CancellationToken,
}

async fn start(dir: &Path, addr: SocketAddr, a: &Args) -> BenchNode {
    let id = NodeIdentity::load_or_create(dir).expect("identity").id();
    let mut cfg = RaftConfig::new(dir, id, addr.to_string());
    cfg.heartbeat_interval = Duration::from_millis(100);
    cfg.election_timeout_min = Duration::from_millis(500);
    cfg.election_timeout_max = Duration::from_millis(1000);
    cfg.log_quick_repair = a.quick_repair;
    cfg.state_machine_sync_interval = a.sm_sync;
    let node = RaftNode::start(cfg, Arc::new(BenchApp)).await.expect("start");
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let stop = CancellationToken::new();
    let service = cairn_raft::raft_service_with_shutdown(&node, stop.clone());
    let shutdown = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        let _ = Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
            .await;
    });
    BenchNode { node, stop }
}

async fn wait_leader(nodes: &[&RaftNode]) -> u64 {
    loop {
        let ids: Vec<_> = nodes.iter().map(|n| n.leader().map(|(id, _)| id)).collect();
        if let Some(l) = ids[0].filter(|l| ids.iter().all(|i| *i == Some(*l))) {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `a.writes` writes through `via`, `a.concurrency` in flight; prints the figures.
async fn run(label: &str, via: &RaftNode, leader: &RaftNode, a: &Args) {
    let payload = vec![0x5a_u8; a.value_bytes];
    let write = |i: usize| {
        let node = via.clone();
        let mut command = (i as u64).to_le_bytes().to_vec();
        command.extend_from_slice(&payload);
        async move { node.write(command).await }
    };
    // Warm up: connections, first snapshot-free path.
    futures::stream::iter(0..1000)
        .map(write)
        .buffer_unordered(a.concurrency)
        .for_each(|r| async {
            r.expect("write");
        })
        .await;
    let before = leader.metrics();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(a.writes);
    futures::stream::iter(1000..1000 + a.writes)
        .map(|i| {
            let w = write(i);
            async move {
                let t = Instant::now();
                w.await.expect("write");
                t.elapsed()
            }
        })
        .buffer_unordered(a.concurrency)
        .for_each(|d| {
            latencies.push(d);
            async {}
        })
        .await;
    let elapsed = started.elapsed();
    let after = leader.metrics();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let flushes = after.log_flush.count - before.log_flush.count;
    let flush_secs = after.log_flush.sum_seconds - before.log_flush.sum_seconds;
    let applies = after.apply_batch.count - before.apply_batch.count;
    println!(
        "{label:<32} {:>8.0} writes/s  p50 {:>6.2} ms  p99 {:>6.2} ms  | leader: {:.1} entries/fsync, {:.2} ms/fsync, {:.1} entries/apply batch",
        a.writes as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        a.writes as f64 / flushes.max(1) as f64,
        flush_secs * 1e3 / flushes.max(1) as f64,
        a.writes as f64 / applies.max(1) as f64,
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[tokio::main]
async fn main() {
    let a = args();
    println!(
        "cairn-raft write benchmark: {} writes, {} in flight, {} B values, fsync on (log quick repair: {}, state machine fsync every {:?})",
        a.writes, a.concurrency, a.value_bytes, a.quick_repair, a.sm_sync
    );
    let dir = tempfile::tempdir().expect("tempdir");

    if a.only.as_deref() != Some("cluster") {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let n = start(&dir.path().join("single"), addr, &a).await;
        n.node.initialize(BTreeMap::from([(n.node.id(), NodeInfo::new(addr.to_string()))])).await.expect("init");
        wait_leader(&[&n.node]).await;
        run("single node", &n.node, &n.node, &a).await;
        n.node.shutdown().await.expect("shutdown");
        n.stop.cancel();
    }

    if a.only.as_deref() != Some("single") {
        let port = free_port();
        let mut nodes = Vec::new();
        for i in 1..=3u8 {
            let addr = SocketAddr::from(([127, 0, 0, i], port));
            nodes.push((start(&dir.path().join(format!("n{i}")), addr, &a).await, addr));
        }
        let members = nodes.iter().map(|(n, addr)| (n.node.id(), NodeInfo::new(addr.to_string()))).collect();
        nodes[0].0.node.initialize(members).await.expect("init");
        let leader_id = wait_leader(&nodes.iter().map(|(n, _)| &n.node).collect::<Vec<_>>()).await;
        let leader = nodes.iter().find(|(n, _)| n.node.id() == leader_id).expect("leader").0.node.clone();
        let follower = nodes.iter().find(|(n, _)| n.node.id() != leader_id).expect("follower").0.node.clone();
        run("3 nodes, writes on the leader", &leader, &leader, &a).await;
        run("3 nodes, writes via a follower", &follower, &leader, &a).await;
        for (n, _) in &nodes {
            n.node.shutdown().await.expect("shutdown");
            n.stop.cancel();
        }
    }
}
