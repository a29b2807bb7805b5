//! A 3-node cluster on 127.0.0.1-3 (same port), real gRPC between the nodes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use cairn_raft::Error;
use cairn_raft::NodeInfo;
use cairn_raft::NodeRole;
use futures::future::join_all;

use crate::harness::TestNode;
use crate::harness::agreed_leader;
use crate::harness::agreed_new_leader;
use crate::harness::all_applied;
use crate::harness::free_port;
use crate::harness::init_logging;
use crate::harness::wait_for;
use crate::harness::wait_key;
use crate::kv::KvApp;
use crate::kv::set;

const T: Duration = Duration::from_secs(15);

pub fn addrs(port: u16) -> Vec<SocketAddr> {
    (1..=3).map(|i| SocketAddr::from(([127, 0, 0, i], port))).collect()
}

/// Initializes a cluster of `nodes` from the first one, learning peers' ids over `NodeInfo`.
pub async fn form_cluster(nodes: &[&TestNode]) {
    let first = &nodes[0].node;
    let mut members = BTreeMap::new();
    for n in nodes {
        let status = first.peer_status(&n.addr.to_string()).await.expect("NodeInfo");
        assert_eq!(status.node_id, n.id());
        assert!(!status.initialized);
        members.insert(status.node_id, NodeInfo::new(status.cluster_addr));
    }
    first.initialize(members.clone()).await.expect("initialize");
    // Idempotent: a second call (here, or on another member) is fine.
    first.initialize(members).await.expect("initialize again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_forward_fail_over_and_catch_up() {
    init_logging();
    let dir = tempfile::tempdir().expect("tempdir");
    let addrs = addrs(free_port());
    let mut nodes = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        nodes.push(Some(TestNode::start(&dir.path().join(format!("n{i}")), *addr, |_| {}).await));
    }
    let live = |nodes: &Vec<Option<TestNode>>| -> Vec<cairn_raft::RaftNode> {
        nodes.iter().flatten().map(|n| n.node.clone()).collect()
    };
    form_cluster(&nodes.iter().flatten().collect::<Vec<_>>()).await;
    let all = live(&nodes);
    let leader_id = agreed_leader(&all.iter().collect::<Vec<_>>(), T).await;
    let leader_at = nodes.iter().position(|n| n.as_ref().is_some_and(|n| n.id() == leader_id)).expect("leader");
    let follower = nodes.iter().flatten().find(|n| n.id() != leader_id).expect("follower").node.clone();
    assert_eq!(follower.metrics().role, NodeRole::Follower);

    // A write through a follower is forwarded to the leader.
    assert_eq!(follower.write(set("k0", "v0")).await.expect("forwarded write"), b"");
    assert_eq!(follower.write(set("k0", "v0b")).await.expect("forwarded write"), b"v0");
    assert!(follower.metrics().writes_forwarded >= 2);
    // Concurrent writes through every node.
    let writes = (1..=60).map(|i| {
        let node = all[i % all.len()].clone();
        async move { node.write(set(&format!("k{i}"), &format!("v{i}"))).await }
    });
    for r in join_all(writes).await {
        r.expect("write");
    }
    // A rejected command is committed, changes nothing, and reports the application's reason.
    match follower.write(b"reject not today".to_vec()).await {
        Err(Error::Rejected(m)) => assert_eq!(m, "not today"),
        other => panic!("expected a rejection, got {other:?}"),
    }

    // Every node's state machine has every write; caches followed the commits.
    for n in nodes.iter().flatten() {
        wait_key(&n.node, "k60", "v60", T).await;
        wait_key(&n.node, "k1", "v1", T).await;
        assert_eq!(KvApp::get(&n.node, "k0").as_deref(), Some("v0b"));
        assert_eq!(KvApp::len(&n.node), 61);
        assert_eq!(n.app.cache.lock().get("k60").map(String::as_str), Some("v60"));
    }
    // A linearizable read on a follower sees a write made just before on another node.
    all[leader_at].write(set("fresh", "1")).await.expect("write");
    follower.ensure_linearizable().await.expect("read index");
    assert_eq!(KvApp::get(&follower, "fresh").as_deref(), Some("1"));

    // Stop the leader: a new one is elected and writes go on.
    let old = nodes[leader_at].take().expect("leader node");
    let old_dir = old.data_dir.clone();
    let old_addr = old.addr;
    old.stop().await;
    let survivors = live(&nodes);
    let new_leader = agreed_new_leader(&survivors.iter().collect::<Vec<_>>(), Some(leader_id), T).await;
    assert_ne!(new_leader, leader_id);
    for i in 100..120 {
        survivors[i % 2].write(set(&format!("k{i}"), "after")).await.expect("write after fail-over");
    }

    // The old leader restarts from its data directory, keeps its id and catches up.
    let back = TestNode::start(&old_dir, old_addr, |_| {}).await;
    assert_eq!(back.id(), leader_id);
    nodes[leader_at] = Some(back);
    let back = nodes[leader_at].as_ref().expect("restarted");
    wait_key(&back.node, "k119", "after", T).await;
    let target = survivors[0].metrics().applied_index;
    all_applied(&[&back.node], target, T).await;
    assert_eq!(KvApp::len(&back.node), 82);
    wait_for("restarted node to follow", T, || {
        let ok = back.node.leader().map(|(id, _)| id) == Some(new_leader);
        async move { ok }
    })
    .await;

    for n in nodes.into_iter().flatten() {
        n.stop().await;
    }
}
