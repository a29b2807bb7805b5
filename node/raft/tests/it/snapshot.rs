//! A follower that missed more than the log keeps catches up from a snapshot.

use std::time::Duration;

use cairn_raft::SnapshotPolicy;

use crate::cluster::addrs;
use crate::cluster::form_cluster;
use crate::harness::TestNode;
use crate::harness::agreed_leader;
use crate::harness::free_port;
use crate::harness::init_logging;
use crate::harness::wait_for;
use crate::harness::wait_key;
use crate::kv::KvApp;
use crate::kv::set;

const T: Duration = Duration::from_secs(15);

fn tiny_snapshots(cfg: &mut cairn_raft::RaftConfig) {
    cfg.snapshot_policy = SnapshotPolicy::LogsSinceLast(20);
    cfg.max_in_snapshot_log_to_keep = 0;
    cfg.replication_lag_threshold = 100;
    cfg.snapshot_chunk_bytes = 512; // several chunks even for a small snapshot
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_catches_up_by_snapshot() {
    init_logging();
    let dir = tempfile::tempdir().expect("tempdir");
    let addrs = addrs(free_port());
    let mut nodes = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        nodes.push(TestNode::start(&dir.path().join(format!("n{i}")), *addr, tiny_snapshots).await);
    }
    form_cluster(&nodes.iter().collect::<Vec<_>>()).await;
    let leader = agreed_leader(&nodes.iter().map(|n| &n.node).collect::<Vec<_>>(), T).await;

    // Take one follower down.
    let lagging_at = nodes.iter().position(|n| n.id() != leader).expect("a follower");
    let lagging = nodes.remove(lagging_at);
    let (lag_dir, lag_addr, lag_id) = (lagging.data_dir.clone(), lagging.addr, lagging.id());
    lagging.stop().await;

    // Write well past several snapshots; the leader purges the log they cover.
    for i in 0..150 {
        nodes[i % 2].node.write(set(&format!("key{i:03}"), &format!("value-{i}"))).await.expect("write");
    }
    let leader_node = nodes.iter().find(|n| n.id() == leader).expect("leader").node.clone();
    wait_for("leader to snapshot and purge", T, || {
        let m = leader_node.metrics();
        async move { m.snapshots_built >= 1 && m.purged_index > 20 }
    })
    .await;

    // The follower comes back: its next entry is gone from the leader's log, so it gets a snapshot.
    let back = TestNode::start(&lag_dir, lag_addr, tiny_snapshots).await;
    assert_eq!(back.id(), lag_id);
    wait_key(&back.node, "key149", "value-149", T).await;
    let m = back.node.metrics();
    assert!(m.snapshots_installed >= 1, "expected a snapshot install, metrics: {m:?}");
    assert_eq!(KvApp::len(&back.node), 150);
    assert_eq!(KvApp::get(&back.node, "key149").as_deref(), Some("value-149"));
    assert_eq!(back.app.cache.lock().len(), 150, "cache reloaded after the snapshot");

    // And it keeps following afterwards.
    leader_node.write(set("after", "snapshot")).await.expect("write");
    wait_key(&back.node, "after", "snapshot", T).await;

    back.stop().await;
    for n in nodes {
        n.stop().await;
    }
}
