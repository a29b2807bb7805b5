//! Test support for running real `cairn-node` processes and real Nacos clients against them.
//!
//! - [`NodeProc`]: starts the `cairn-node` binary on loopback with free ports and a fresh data
//!   directory, waits for readiness, and kills it on drop.
//! - [`require_tool`]: a missing external tool (mvn, go, java) skips a test loudly, or fails it
//!   when `CAIRN_REQUIRE_ALL=1` (as CI sets).
//! - [`Harness`]: runs one of the client harnesses (`scenario`, `hold`, `watch`, and the config
//!   modes `config-scenario`, `config-listen`, `config-publish`, `config-get`) and reads its lines.

mod clients;
mod cluster;
mod harness;
mod node_proc;

pub use clients::{go_harness, java_harness, rust_harness};
pub use cluster::{Cluster, free_port_on};
pub use harness::{CONFIG_GROUP, Harness, HarnessProc, config_push_across, instance_across, killed_client_disappears};
pub use node_proc::{NodeProc, node_binary};

/// True when `CAIRN_REQUIRE_ALL=1`: every "tool missing" skip becomes a failure.
pub fn require_all() -> bool {
    std::env::var("CAIRN_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Checks that `tool --version`-like `probe` runs. Missing: panics under `CAIRN_REQUIRE_ALL=1`,
/// otherwise prints a loud SKIPPED line and returns `false`.
pub fn require_tool(tool: &str, probe: &[&str]) -> bool {
    let ok = std::process::Command::new(tool)
        .args(probe)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    if require_all() {
        panic!("required tool `{tool}` is missing (CAIRN_REQUIRE_ALL=1)");
    }
    eprintln!(
        "\n!!!!! SKIPPED: `{tool}` is not installed; this test did not run. Set CAIRN_REQUIRE_ALL=1 to fail instead. !!!!!\n"
    );
    false
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}
