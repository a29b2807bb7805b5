//! Real Nacos clients against real `cairn-node` processes: the Rust `nacos-sdk` crate, the Java
//! `nacos-client` (2.5.1 and 3.1.1, from Maven Central) and Go `nacos-sdk-go/v2` (module proxy).
//!
//! Per client, on a standalone node: naming (register, list, service list, subscribe, pushes on
//! register/deregister, a SIGKILLed client's instance removed with a push) and config (get
//! absent, listen, publish, get, change pushed to the listener, remove). Then, on a 3-node
//! cluster (127.0.0.1/.2/.3): an instance held by a client connected to node 1 is pushed to a
//! subscriber connected to node 3 (Distro), and its removal after a SIGKILL of the holder too;
//! a config published through node 1 reaches a listener connected to node 3.

use std::time::Duration;

use cairn_compat::{
    Cluster, Harness, NodeProc, config_push_across, go_harness, instance_across, java_harness,
    killed_client_disappears, rust_harness,
};

/// Killed client → removal push received by another client process. The server side is held to
/// 1 s in `node/tests/grpc_transport.rs`; this adds the clients' own delivery.
const KILL_TO_PUSH: Duration = Duration::from_secs(2);
/// Publish acknowledged → listener in another process notified (same node or across nodes).
const PUBLISH_TO_NOTIFY: Duration = Duration::from_secs(2);
/// Registered on node 1 → pushed to a subscriber on node 3: Distro's 1 s batching delay plus
/// the 2 s budget for the whole trip.
const REGISTER_TO_REMOTE_PUSH: Duration = Duration::from_secs(2);
/// Holder on node 1 killed → removal pushed by node 3 (connection loss noticed at once on node
/// 1, then one Distro batch).
const KILL_TO_REMOTE_PUSH: Duration = Duration::from_secs(3);

fn check_client(h: &Harness, tag: &str, port: u16) {
    let node = NodeProc::start(&[]);
    let server = node.server_addr();
    h.run_scenario(&server, &format!("compat-{tag}-scenario"));
    let took = killed_client_disappears(h, &server, &format!("compat-{tag}-kill"), port);
    eprintln!("{}: killed client's instance removed and pushed after {took:?}", h.name);
    assert!(took <= KILL_TO_PUSH, "{}: removal push took {took:?}", h.name);

    h.run_config_scenario(&server, &format!("compat-{tag}-config"));
    let took = config_push_across(h, &server, &server, &format!("compat-{tag}-push"));
    eprintln!("{}: published config reached the listener after {took:?}", h.name);
    assert!(took <= PUBLISH_TO_NOTIFY, "{}: config notification took {took:?}", h.name);
    drop(node);

    let cluster = Cluster::start3();
    let (seen, gone) = instance_across(
        h,
        &cluster.server_addr(0),
        &cluster.server_addr(2),
        &format!("compat-{tag}-distro"),
        port + 50,
    );
    eprintln!("{}: instance held via node 1 pushed by node 3 after {seen:?}; removal after {gone:?}", h.name);
    assert!(seen <= REGISTER_TO_REMOTE_PUSH, "{}: cross-node instance push took {seen:?}", h.name);
    assert!(gone <= KILL_TO_REMOTE_PUSH, "{}: cross-node removal push took {gone:?}", h.name);
    let took = config_push_across(h, &cluster.server_addr(0), &cluster.server_addr(2), &format!("compat-{tag}-across"));
    eprintln!("{}: config published via node 1 reached a listener on node 3 after {took:?}", h.name);
    assert!(took <= PUBLISH_TO_NOTIFY, "{}: cross-node notification took {took:?}", h.name);
}

#[test]
fn rust_nacos_sdk() {
    check_client(&rust_harness(), "rust", 7103);
}

#[test]
fn java_nacos_client() {
    for (version, port) in [("2.5.1", 7201), ("3.1.1", 7202)] {
        let Some(h) = java_harness(version) else { return };
        check_client(&h, &format!("java{}", version.replace('.', "")), port);
    }
}

#[test]
fn go_nacos_sdk() {
    let Some(h) = go_harness() else { return };
    check_client(&h, "go", 7301);
}
