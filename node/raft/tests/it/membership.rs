//! Growing a standalone node into a cluster: add a learner, promote it, hand it leadership.

use std::net::SocketAddr;
use std::time::Duration;

use cairn_raft::Error;
use cairn_raft::NodeInfo;
use cairn_raft::NodeRole;

use crate::harness::TestNode;
use crate::harness::agreed_leader;
use crate::harness::free_port;
use crate::harness::init_logging;
use crate::harness::wait_for;
use crate::harness::wait_key;
use crate::kv::set;

const T: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_grows_by_learner_promotion_and_hands_over_leadership() {
    init_logging();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let (a_addr, b_addr) = (SocketAddr::from(([127, 0, 0, 1], port)), SocketAddr::from(([127, 0, 0, 2], port)));
    let a = TestNode::start(&dir.path().join("a"), a_addr, |_| {}).await;
    let b = TestNode::start(&dir.path().join("b"), b_addr, |_| {}).await;
    a.node.initialize([(a.id(), NodeInfo::new(a_addr.to_string()))].into()).await.expect("initialize");
    a.node.write(set("before", "growth")).await.expect("standalone write");

    // Membership changes are leader-only pass-throughs.
    match b.node.add_learner(a.id(), NodeInfo::new(a_addr.to_string()), true).await {
        Err(Error::NotLeader { .. }) => {}
        other => panic!("expected NotLeader from a node outside the cluster, got {other:?}"),
    }
    a.node.add_learner(b.id(), NodeInfo::new(b_addr.to_string()), true).await.expect("add learner");
    wait_key(&b.node, "before", "growth", T).await;
    assert_eq!(b.node.metrics().role, NodeRole::Learner);
    a.node.change_membership([a.id(), b.id()].into(), false).await.expect("promote");
    let m = a.node.metrics();
    assert!(m.voters.contains_key(&b.id()) && m.learners.is_empty(), "{m:?}");
    assert_eq!(m.voters[&b.id()], NodeInfo::new(b_addr.to_string()));

    a.node.transfer_leader(b.id()).await.expect("transfer leadership");
    wait_for("b to lead", T, || {
        let ok = b.node.is_leader() && a.node.leader().map(|(id, _)| id) == Some(b.id());
        async move { ok }
    })
    .await;
    assert_eq!(agreed_leader(&[&a.node, &b.node], T).await, b.id());
    match a.node.transfer_leader(a.id()).await {
        Err(Error::NotLeader { leader }) => assert_eq!(leader, Some(b.id())),
        other => panic!("expected NotLeader, got {other:?}"),
    }
    a.node.write(set("after", "handover")).await.expect("write via the former leader");
    wait_key(&b.node, "after", "handover", T).await;

    a.stop().await;
    b.stop().await;
}
