//! The join phase: start a new cluster member and time how long it takes to become ready
//! (Raft caught up, every peer's Distro snapshot loaded), then count the instances it holds.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::bench::Workload;

/// What the join phase measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JoinFig {
    /// Process start → readiness 200, ms.
    pub ready_ms: f64,
    /// `instanceCount` of `/nacos/v1/ns/operator/metrics` on the new member right when it was ready.
    pub instances_when_ready: u64,
}

/// Minimal HTTP/1.1 GET: (status, body).
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_millis(300)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// Starts the member, polls its readiness every 10 ms (up to 120 s), reads its instance count.
/// The process is left running (the caller's cluster now has it); its pid is printed.
pub async fn run(w: &Workload) -> anyhow::Result<JoinFig> {
    let bin = w.join_bin.clone().context("--join-bin is required by the join phase")?;
    let http = w.join_http.clone().context("--join-http is required by the join phase")?;
    let args: Vec<String> = w.join_args.as_deref().unwrap_or("").split_whitespace().map(str::to_owned).collect();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let child = Command::new(&bin)
            .args(&args)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        eprintln!("  joining member pid {}", child.id());
        loop {
            if http_get(&http, "/nacos/v1/console/health/readiness").is_some_and(|(s, _)| s == 200) {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("the joining member at {http} was not ready within 120 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let ready_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (_, body) =
            http_get(&http, "/nacos/v1/ns/operator/metrics?onlyStatus=false").context("reading the instance count")?;
        let v: serde_json::Value = serde_json::from_str(&body).context("operator/metrics is not JSON")?;
        Ok(JoinFig { ready_ms, instances_when_ready: v["instanceCount"].as_u64().unwrap_or(0) })
    })
    .await?
}
