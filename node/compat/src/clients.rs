//! Builds the three client harnesses: the Rust one (a binary of this crate), the Java one
//! (`mvn package` per nacos-client version) and the Go one (`go build`). A missing `mvn`,
//! `java` or `go` is reported through [`crate::require_tool`].

use std::path::PathBuf;
use std::process::Command;

use crate::{Harness, require_tool, workspace_root};

/// The Rust `nacos-sdk` harness next to the test executable.
pub fn rust_harness() -> Harness {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe.parent().and_then(|p| p.parent()).expect("target dir").join("nacos-rust-harness");
    assert!(bin.exists(), "{} missing: build the workspace first", bin.display());
    Harness { name: "rust-nacos-sdk-0.8.3".into(), program: bin, prefix: vec![] }
}

/// The Java harness for nacos-client `version`, or `None` when Maven/Java are missing.
pub fn java_harness(version: &str) -> Option<Harness> {
    if !require_tool("mvn", &["-v"]) || !require_tool("java", &["-version"]) {
        return None;
    }
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
    std::fs::create_dir_all(&run).expect("create run dir");
    std::fs::copy(dir.join("target/harness.jar"), run.join("harness.jar")).expect("copy jar");
    let status = Command::new("cp").arg("-r").arg(dir.join("target/lib")).arg(&run).status().expect("cp lib");
    assert!(status.success());
    let jar: PathBuf = run.join("harness.jar");
    Some(Harness {
        name: format!("java-nacos-client-{version}"),
        program: "java".into(),
        prefix: vec!["-jar".into(), jar.display().to_string()],
    })
}

/// The Go harness, or `None` when Go is missing.
pub fn go_harness() -> Option<Harness> {
    if !require_tool("go", &["version"]) {
        return None;
    }
    let dir = workspace_root().join("node/compat/go");
    let status =
        Command::new("go").args(["build", "-o", "bin/harness", "."]).current_dir(&dir).status().expect("run go");
    assert!(status.success(), "go build of the Go harness failed");
    Some(Harness { name: "go-nacos-sdk-go-2.3.5".into(), program: dir.join("bin/harness"), prefix: vec![] })
}
