//! A `cairn-node` child process for tests.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The `cairn-node` binary next to the running test executable (`target/<profile>/cairn-node`).
pub fn node_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("cairn-node");
    assert!(bin.exists(), "{} not found: build it first (cargo build -p cairn-node)", bin.display());
    bin
}

/// A running node.
pub struct NodeProc {
    child: Child,
    /// HTTP port P (client gRPC is P+1000).
    pub http_port: u16,
    /// Bind address.
    pub ip: Ipv4Addr,
    /// Data directory (removed on drop).
    pub data_dir: PathBuf,
    /// The binary and extra flags it was started with (for [`NodeProc::restart`]).
    bin: PathBuf,
    extra: Vec<String>,
}

fn spawn(bin: &Path, ip: Ipv4Addr, port: u16, data_dir: &Path, extra: &[String]) -> Child {
    Command::new(bin)
        .args(["--bind", &ip.to_string(), "--http-port", &port.to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env("CAIRN_LOG", std::env::var("CAIRN_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn cairn-node")
}

impl NodeProc {
    /// Starts `bin` on 127.0.0.1 with `extra` flags and waits (≤ 15 s) for readiness.
    pub fn start_with(bin: &Path, extra: &[&str]) -> NodeProc {
        let ip = Ipv4Addr::LOCALHOST;
        for _ in 0..5 {
            let port = crate::cluster::free_port_on(&[ip]);
            let data_dir = std::env::temp_dir().join(format!(
                "cairn-test-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            let child = spawn(bin, ip, port, &data_dir, &extra);
            let mut node = NodeProc { child, http_port: port, ip, data_dir, bin: bin.to_owned(), extra };
            if node.wait_ready(Duration::from_secs(15)) {
                return node;
            }
        }
        panic!("cairn-node did not become ready");
    }

    /// Kills the process with SIGKILL (no shutdown path runs) and reaps it. The data directory
    /// is kept, so [`NodeProc::restart`] can start again on it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the node again (after [`NodeProc::kill9`] or [`NodeProc::terminate`]) with the
    /// same binary, flags, port and data directory, and waits (≤ 20 s) for readiness. Panics if
    /// the previous process is still running or the new one does not become ready.
    pub fn restart(&mut self) {
        assert!(matches!(self.child.try_wait(), Ok(Some(_))), "restart: the node is still running");
        // The ports were just released; a bind can briefly fail, so retry a few spawns.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            self.child = spawn(&self.bin, self.ip, self.http_port, &self.data_dir, &self.extra);
            if self.wait_ready(deadline.saturating_duration_since(Instant::now())) {
                return;
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("cairn-node did not become ready again on port {} and {}", self.http_port, self.data_dir.display());
    }

    /// Starts the binary found by [`node_binary`].
    pub fn start(extra: &[&str]) -> NodeProc {
        Self::start_with(&node_binary(), extra)
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if http_get_status(self.ip, self.http_port, "/nacos/v1/console/health/readiness") == Some(200) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// `ip:P`, what clients are given as the server address.
    pub fn server_addr(&self) -> String {
        format!("{}:{}", self.ip, self.http_port)
    }

    /// `http://ip:P`.
    pub fn http_base(&self) -> String {
        format!("http://{}:{}", self.ip, self.http_port)
    }

    /// `http://ip:P+1000`, the client gRPC endpoint.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}:{}", self.ip, self.http_port + 1000)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (≤ `limit`) for exit; returns the exit status if it exited.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A minimal blocking HTTP GET returning the status code (no client library needed).
pub fn http_get_status(ip: Ipv4Addr, port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&(ip, port).into(), Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}
