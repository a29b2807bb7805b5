//! Durability: a single-node cluster (standalone = one member) stopped without a graceful close
//! keeps every acknowledged write; node ids are stable across restarts and never reused.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cairn_raft::NodeIdentity;
use cairn_raft::NodeInfo;
use futures::StreamExt;

use crate::harness::TestNode;
use crate::harness::free_port;
use crate::harness::init_logging;
use crate::harness::wait_for;
use crate::kv::KvApp;
use crate::kv::set;

const T: Duration = Duration::from_secs(15);
const N: usize = 300;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Starts a standalone node (a one-member cluster) and writes `N` keys, 32 in flight.
async fn standalone_with_writes(data_dir: &Path, addr: SocketAddr, tweak: fn(&mut cairn_raft::RaftConfig)) -> TestNode {
    let n = TestNode::start(data_dir, addr, tweak).await;
    n.node.initialize([(n.id(), NodeInfo::new(addr.to_string()))].into()).await.expect("initialize");
    let node = n.node.clone();
    let results: Vec<_> = futures::stream::iter(0..N)
        .map(|i| {
            let node = node.clone();
            async move { node.write(set(&format!("key{i}"), &format!("value{i}"))).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r.expect("acknowledged write");
    }
    n
}

async fn assert_all_present(n: &TestNode) {
    wait_for("the state machine to recover every write", T, || {
        let len = KvApp::len(&n.node);
        async move { len == N as u64 }
    })
    .await;
    for i in 0..N {
        assert_eq!(KvApp::get(&n.node, &format!("key{i}")), Some(format!("value{i}")), "key{i}");
    }
    assert_eq!(n.app.cache.lock().len(), N, "cache loaded from the recovered state");
}

#[test]
fn acknowledged_writes_survive_dropping_the_runtime() {
    init_logging();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("node");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));

    let rt = runtime();
    let node = rt.block_on(standalone_with_writes(&data, addr, |_| {}));
    let id = node.id();
    // No shutdown: every task is dropped mid-flight, as in a crash of the async runtime.
    drop(rt);
    drop(node);

    let rt = runtime();
    rt.block_on(async {
        let n = TestNode::start(&data, addr, |_| {}).await;
        assert_eq!(n.id(), id, "the id survives a restart");
        assert_all_present(&n).await;
        // It is a working one-member cluster again.
        n.node.write(set("after", "restart")).await.expect("write after restart");
        n.stop().await;
    });
    drop(rt);

    // Same directory: same id. Wiped directory: a new one.
    assert_eq!(NodeIdentity::load_or_create(&data).expect("identity").id(), id);
    std::fs::remove_dir_all(&data).expect("wipe");
    let fresh = NodeIdentity::load_or_create(&data).expect("identity");
    assert!(fresh.is_new());
    assert_ne!(fresh.id(), id);
}

/// Copies the Raft files of a running node: what the disk would hold after a power cut.
fn crash_image(from: &Path, to: &Path) {
    let (src, dst) = (from.join("raft"), to.join("raft"));
    std::fs::create_dir_all(&dst).expect("mkdir");
    for entry in std::fs::read_dir(&src).expect("read raft dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dst.join(entry.file_name())).expect("copy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_image_recovers_by_reapplying_the_log() {
    init_logging();
    let dir = tempfile::tempdir().expect("tempdir");
    let (live, image) = (dir.path().join("live"), dir.path().join("image"));
    // The state machine is never fsynced while running: recovery must come from the log.
    let lazy_sm = |cfg: &mut cairn_raft::RaftConfig| cfg.state_machine_sync_interval = Duration::from_secs(3600);
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let n = standalone_with_writes(&live, addr, lazy_sm).await;
    let id = n.id();
    crash_image(&live, &image);
    n.stop().await;

    let back = TestNode::start(&image, SocketAddr::from(([127, 0, 0, 1], free_port())), lazy_sm).await;
    assert_eq!(back.id(), id);
    assert_all_present(&back).await;
    assert!(
        back.app.committed.load(Ordering::Relaxed) >= N as u64,
        "expected the writes to be re-applied from the log, after_commit saw {}",
        back.app.committed.load(Ordering::Relaxed)
    );
    back.stop().await;
}
