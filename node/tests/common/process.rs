//! A `cairn-node` process for multi-node tests on 127.0.0.x: bound to one address, its own data
//! directory (removed on drop), started, killed with SIGKILL and restarted on the same data.
//! Included with `#[path = "common/process.rs"] mod process;` by the tests that need it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cairn-node");

/// One node process (not running until [`TestNode::start`]).
pub struct TestNode {
    /// Bind address.
    pub ip: String,
    /// HTTP port P.
    pub port: u16,
    /// Data directory.
    pub dir: PathBuf,
    /// Flags after `--bind`, `--http-port` and `--data-dir`.
    pub args: Vec<String>,
    /// Extra environment.
    pub envs: Vec<(String, String)>,
    child: Option<Child>,
}

impl TestNode {
    /// A node on `ip:port` with `args`; `tag` keeps data directories of different tests apart.
    pub fn new(tag: &str, ip: &str, port: u16, args: &[&str]) -> TestNode {
        let dir = std::env::temp_dir().join(format!("cairn-{tag}-{}-{port}-{ip}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let args = args.iter().map(|s| s.to_string()).collect();
        TestNode { ip: ip.into(), port, dir, args, envs: Vec::new(), child: None }
    }

    /// Starts the process (log filter from `CAIRN_TEST_LOG`, default `error`).
    pub fn start(&mut self) {
        let child = Command::new(BIN)
            .args(["--bind", &self.ip, "--http-port", &self.port.to_string()])
            .args(&self.args)
            .arg("--data-dir")
            .arg(&self.dir)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("CAIRN_LOG", std::env::var("CAIRN_TEST_LOG").unwrap_or_else(|_| "error".into()))
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn cairn-node");
        self.child = Some(child);
    }

    /// Kills the process with SIGKILL and reaps it; the data directory stays.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the process was started and not killed.
    pub fn alive(&self) -> bool {
        self.child.is_some()
    }

    /// `ip:P`, the member address.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// `http://ip:P`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr())
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
