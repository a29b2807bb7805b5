//! Real Nacos clients against a real `cairn-node`: the Rust `nacos-sdk` crate, the Java
//! `nacos-client` (2.5.1 and 3.1.1, from Maven Central) and Go `nacos-sdk-go/v2` (module proxy).
//! Each registers, lists, subscribes, receives pushes on register/deregister, and sees a
//! SIGKILLed client process's instance disappear with a push.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cairn_compat::{Harness, NodeProc, killed_client_disappears, require_tool, workspace_root};

/// Bound for "killed client → push received by another client process". The server side is
/// held to 1 s in `node/tests/grpc_transport.rs`; this adds the clients' own delivery.
const KILL_TO_PUSH: Duration = Duration::from_secs(2);

fn check_client(h: &Harness, tag: &str, port: u16) {
    let node = NodeProc::start(&[]);
    h.run_scenario(&node.server_addr(), &format!("compat-{tag}-scenario"));
    let took = killed_client_disappears(h, &node.server_addr(), &format!("compat-{tag}-kill"), port);
    eprintln!("{}: killed client's instance removed and pushed after {took:?}", h.name);
    assert!(took <= KILL_TO_PUSH, "{}: removal push took {took:?}", h.name);
}

#[test]
fn rust_nacos_sdk() {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|p| p.parent()).unwrap().join("nacos-rust-harness");
    assert!(bin.exists(), "{} missing: build the workspace first", bin.display());
    let h = Harness { name: "rust-nacos-sdk-0.8.3".into(), program: bin, prefix: vec![] };
    check_client(&h, "rust", 7103);
}

fn build_java(version: &str) -> PathBuf {
    let dir = workspace_root().join("node/compat/java");
    let status = Command::new("mvn")
        .args(["-q", "-B", "-DskipTests", &format!("-Dnacos.version={version}"), "package"])
        .current_dir(&dir)
        .status()
        .expect("run mvn");
    assert!(status.success(), "mvn package failed for nacos-client {version}");
    // Keep each version's jar and lib/ apart so the versions can be run one after another.
    let run = dir.join(format!("target/run-{version}"));
    let _ = std::fs::remove_dir_all(&run);
    std::fs::create_dir_all(&run).unwrap();
    std::fs::copy(dir.join("target/harness.jar"), run.join("harness.jar")).unwrap();
    let status = Command::new("cp").arg("-r").arg(dir.join("target/lib")).arg(&run).status().unwrap();
    assert!(status.success());
    run.join("harness.jar")
}

#[test]
fn java_nacos_client() {
    if !require_tool("mvn", &["-v"]) || !require_tool("java", &["-version"]) {
        return;
    }
    for (version, port) in [("2.5.1", 7201), ("3.1.1", 7202)] {
        let jar = build_java(version);
        let h = Harness {
            name: format!("java-nacos-client-{version}"),
            program: "java".into(),
            prefix: vec!["-jar".into(), jar.display().to_string()],
        };
        check_client(&h, &format!("java{}", version.replace('.', "")), port);
    }
}

#[test]
fn go_nacos_sdk() {
    if !require_tool("go", &["version"]) {
        return;
    }
    let dir = workspace_root().join("node/compat/go");
    let status =
        Command::new("go").args(["build", "-o", "bin/harness", "."]).current_dir(&dir).status().expect("run go");
    assert!(status.success(), "go build of the Go harness failed");
    let h = Harness { name: "go-nacos-sdk-go-2.3.5".into(), program: dir.join("bin/harness"), prefix: vec![] };
    check_client(&h, "go", 7301);
}
