//! `compare`: starts cairn-node and r-nacos in turn on loopback, runs the same workload against
//! each, and prints both side by side.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::bench::{self, Results, Target, Workload};
use crate::conn::{self, Conn, Shared};

/// `compare` arguments.
#[derive(Args, Clone, Debug)]
pub struct CompareArgs {
    /// Path to the cairn-node binary.
    #[arg(long)]
    pub cairn_bin: PathBuf,
    /// Path to the rnacos binary.
    #[arg(long)]
    pub rnacos_bin: PathBuf,
    /// HTTP port of cairn-node (gRPC +1000); r-nacos gets this +100.
    #[arg(long, default_value_t = 18848)]
    pub base_port: u16,
    /// Where data directories and server logs go (default: a new directory under /tmp).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Seconds to wait for a server to become ready.
    #[arg(long, default_value_t = 60)]
    pub ready_timeout_secs: u64,
    /// The workload.
    #[command(flatten)]
    pub workload: Workload,
}

/// A GET over a fresh HTTP/1.1 connection; returns the status code.
pub async fn http_status(host: &str, port: u16, path: &str) -> anyhow::Result<u16> {
    let mut s = TcpStream::connect((host, port)).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        let k = s.read(&mut buf[n..]).await?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("no HTTP status line")
}

struct Server {
    child: Child,
    log: PathBuf,
}

fn tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

async fn wait_ready(
    server: &mut Server,
    http_check: Option<(&str, u16, &str)>,
    grpc_port: u16,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let ep = conn::endpoint("127.0.0.1", grpc_port)?;
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!("server exited during startup with {status}; log tail:\n{}", tail(&server.log));
        }
        let http_ok = match http_check {
            Some((host, port, path)) => matches!(http_status(host, port, path).await, Ok(200)),
            None => true,
        };
        if http_ok {
            // Ready when a full client handshake works (ServerCheck + registered connection).
            let shared = std::sync::Arc::new(Shared::default());
            if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(5), Conn::open(&ep, 0, shared, None)).await {
                drop(c);
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("server not ready after {timeout:?}; log tail:\n{}", tail(&server.log));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn stop(mut server: Server) {
    server.child.start_kill().ok();
    let _ = tokio::time::timeout(Duration::from_secs(10), server.child.wait()).await;
}

fn spawn(mut cmd: Command, log: &Path) -> anyhow::Result<Server> {
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err).kill_on_drop(true);
    let child = cmd.spawn().context("spawning server")?;
    Ok(Server { child, log: log.to_owned() })
}

async fn run_cairn(a: &CompareArgs, dir: &Path) -> anyhow::Result<Results> {
    let port = a.base_port;
    let data = dir.join("cairn-data");
    let log = dir.join("cairn.log");
    let mut cmd = Command::new(&a.cairn_bin);
    cmd.arg("--bind")
        .arg("127.0.0.1")
        .arg("--http-port")
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(&data)
        .arg("--log")
        .arg("warn");
    eprintln!("[cairn] starting {} on 127.0.0.1:{port} (log {})", a.cairn_bin.display(), log.display());
    let server = spawn(cmd, &log)?;
    let readiness = Some("/nacos/v1/console/health/readiness");
    bench_server(a, "cairn", server, readiness, (port, port + 1000), &data).await
}

async fn run_rnacos(a: &CompareArgs, dir: &Path) -> anyhow::Result<Results> {
    let port = a.base_port + 100;
    let grpc = port + 1000;
    let data = dir.join("rnacos-data");
    let log = dir.join("rnacos.log");
    let mut cmd = Command::new(&a.rnacos_bin);
    cmd.current_dir(dir)
        .env("RNACOS_SDK_HOST", "127.0.0.1")
        .env("RNACOS_HTTP_PORT", port.to_string())
        .env("RNACOS_GRPC_PORT", grpc.to_string())
        .env("RNACOS_HTTP_CONSOLE_PORT", "0")
        .env("RNACOS_DATA_DIR", &data)
        .env("RUST_LOG", "warn");
    eprintln!("[r-nacos] starting {} on 127.0.0.1:{port} (log {})", a.rnacos_bin.display(), log.display());
    let server = spawn(cmd, &log)?;
    bench_server(a, "r-nacos", server, None, (port, grpc), &data).await
}

/// Waits until the spawned `server` on loopback `(http_port, grpc_port)` is ready (the gRPC
/// handshake, and a 200 from `readiness_path` over HTTP when given), runs the workload against
/// it, then stops it and removes its data directory.
async fn bench_server(
    a: &CompareArgs,
    label: &str,
    mut server: Server,
    readiness_path: Option<&str>,
    (http_port, grpc_port): (u16, u16),
    data: &Path,
) -> anyhow::Result<Results> {
    let pid = server.child.id();
    let http_check = readiness_path.map(|path| ("127.0.0.1", http_port, path));
    if let Err(e) = wait_ready(&mut server, http_check, grpc_port, Duration::from_secs(a.ready_timeout_secs)).await {
        stop(server).await;
        return Err(e);
    }
    let t = Target { label: label.into(), host: "127.0.0.1".into(), http_port, grpc_port, pid, extra: Vec::new() };
    let r = bench::run(&t, &a.workload).await;
    if let Ok(Some(status)) = server.child.try_wait() {
        eprintln!("[{label}] server exited during the run with {status}; log tail:\n{}", tail(&server.log));
    }
    stop(server).await;
    std::fs::remove_dir_all(data).ok();
    r
}

/// Runs the comparison; prints both runs, the side-by-side table and the JSON line.
pub async fn compare(a: &CompareArgs) -> anyhow::Result<()> {
    let dir = match &a.work_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("cairn-loadgen-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let cairn = run_cairn(a, &dir).await.context("cairn run")?;
    crate::report::print_run(&cairn);
    // Let the kernel reap sockets and the machine cool down between servers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rnacos = run_rnacos(a, &dir).await.context("r-nacos run")?;
    crate::report::print_run(&rnacos);
    let ratios = crate::report::print_compare(&cairn, &rnacos);
    println!("server logs: {}", dir.display());
    let json =
        serde_json::json!({ "mode": "compare", "cairn": cairn, "rnacos": rnacos, "ratio_cairn_over_rnacos": ratios });
    println!("{json}");
    Ok(())
}
