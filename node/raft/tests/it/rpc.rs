//! The cluster port refuses malformed and misdirected Raft RPCs with a gRPC status.

use std::net::SocketAddr;
use std::time::Duration;

use cairn_proto::cluster::RaftRequest;
use cairn_proto::cluster::SnapshotChunk;
use cairn_proto::cluster::raft_service_client::RaftServiceClient;
use cairn_raft::NodeInfo;
use cairn_raft::network::FROM_HEADER;
use cairn_raft::network::TARGET_HEADER;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::harness::TestNode;
use crate::harness::free_port;
use crate::harness::init_logging;

fn request<T>(body: T, target: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(body);
    if let Some(t) = target {
        r.metadata_mut().insert(TARGET_HEADER, t.parse().expect("ascii"));
    }
    r.metadata_mut().insert(FROM_HEADER, MetadataValue::from(1u64));
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_misdirected_rpcs_get_a_status() {
    init_logging();
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let n = TestNode::start(dir.path(), addr, |_| {}).await;
    n.node.initialize([(n.id(), NodeInfo::new(addr.to_string()))].into()).await.expect("initialize");
    let me = n.id().to_string();
    let mut client = RaftServiceClient::connect(format!("http://{addr}")).await.expect("connect");
    let garbage = || RaftRequest { payload: vec![0xff, 0x00, 0x13, 0x37] };

    let status = client.append_entries(request(garbage(), Some(&me))).await.expect_err("garbage");
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    let status = client.vote(request(garbage(), Some(&me))).await.expect_err("garbage");
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    let status = client.append_entries(request(garbage(), Some("12345"))).await.expect_err("other node");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status}");
    let status = client.append_entries(request(garbage(), None)).await.expect_err("no target");
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    let status = client.append_entries(request(garbage(), Some("x"))).await.expect_err("bad target");
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");

    let chunks = vec![SnapshotChunk { header: vec![1, 2, 3], data: vec![4] }];
    let status =
        client.install_snapshot(request(futures::stream::iter(chunks), Some(&me))).await.expect_err("garbage snapshot");
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");

    // The node is unharmed.
    n.node.write(crate::kv::set("still", "fine")).await.expect("write");
    let status = n.node.peer_status(&addr.to_string()).await.expect("node info");
    assert_eq!(status.node_id, n.id());
    assert!(status.initialized);
    assert_eq!(status.role, "Leader");
    assert!(tokio::time::timeout(Duration::from_secs(5), n.stop()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_commands_are_refused_before_proposal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let n = TestNode::start(dir.path(), addr, |c| {
        c.max_message_bytes = 1 << 20;
        c.snapshot_chunk_bytes = 256 << 10;
    })
    .await;
    n.node.initialize([(n.id(), NodeInfo::new(addr.to_string()))].into()).await.expect("initialize");
    match n.node.write(vec![b'x'; 600 << 10]).await {
        Err(cairn_raft::Error::CommandTooLarge { bytes, limit }) => assert!(bytes > limit),
        other => panic!("expected CommandTooLarge, got {other:?}"),
    }
    n.stop().await;
}
