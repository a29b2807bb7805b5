//! Member health: every node probes every other member's liveness URL periodically.
//!
//! States (Nacos `NodeState` names): a member is `UP` after a successful probe (and before its
//! first probe), `SUSPICIOUS` after one failed probe, `DOWN` after [`DOWN_AFTER`] consecutive
//! failures, and `UP` again on the next success.

use std::fmt;
use std::time::Duration;

use futures::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::Membership;
use crate::config::Config;

/// Consecutive failed probes after which a member is `DOWN`.
pub const DOWN_AFTER: u32 = 3;
/// The path probed on each member's HTTP port.
pub const LIVENESS_PATH: &str = "/nacos/v1/console/health/liveness";

/// A member's state as Nacos names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MemberState {
    /// Answering probes.
    #[default]
    Up,
    /// The last probe (fewer than [`DOWN_AFTER`] in a row) failed.
    Suspicious,
    /// [`DOWN_AFTER`] or more probes in a row failed.
    Down,
}

impl MemberState {
    /// The Nacos name: `UP`, `SUSPICIOUS` or `DOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Up => "UP",
            MemberState::Suspicious => "SUSPICIOUS",
            MemberState::Down => "DOWN",
        }
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The health record of one member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberHealth {
    /// Current state.
    pub state: MemberState,
    /// Consecutive failed probes (Nacos `failAccessCnt`); 0 after a success.
    pub failures: u32,
}

impl MemberHealth {
    /// The record after one more probe result.
    pub fn after_probe(self, ok: bool) -> MemberHealth {
        if ok {
            return MemberHealth { state: MemberState::Up, failures: 0 };
        }
        let failures = self.failures.saturating_add(1);
        let state = if failures >= DOWN_AFTER { MemberState::Down } else { MemberState::Suspicious };
        MemberHealth { state, failures }
    }
}

/// Probe timing.
#[derive(Debug, Clone, Copy)]
pub struct ProbeSettings {
    /// Time between probe rounds.
    pub interval: Duration,
    /// Deadline of one probe (connect, request and status line).
    pub timeout: Duration,
}

impl ProbeSettings {
    /// From `--member-probe-ms`: the timeout is the interval, at most 1 s.
    pub fn from_config(config: &Config) -> ProbeSettings {
        let interval = Config::ms(config.member_probe_ms);
        ProbeSettings { interval, timeout: interval.min(Duration::from_secs(1)) }
    }
}

/// Probes every member but this node, each round concurrently.
pub struct Prober {
    membership: Membership,
    settings: ProbeSettings,
}

impl Prober {
    /// A prober recording into `membership`.
    pub fn new(membership: Membership, settings: ProbeSettings) -> Prober {
        Prober { membership, settings }
    }

    /// Probes until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => return,
            }
            let peers = self.membership.peers();
            let timeout = self.settings.timeout;
            let results = join_all(peers.iter().map(|p| probe(p, timeout))).await;
            for (peer, ok) in peers.iter().zip(results) {
                self.membership.record_probe(peer, ok);
            }
        }
    }
}

/// One liveness probe of the member at `address` (`host:http_port`): HTTP/1.1 GET answered 2xx
/// within `timeout`.
pub async fn probe(address: &str, timeout: Duration) -> bool {
    match tokio::time::timeout(timeout, get_status(address)).await {
        Ok(Ok(status)) => (200..300).contains(&status),
        Ok(Err(e)) => {
            tracing::debug!(member = address, error = %e, "member probe failed");
            false
        }
        Err(_) => {
            tracing::debug!(member = address, "member probe timed out");
            false
        }
    }
}

async fn get_status(address: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let req = format!(
        "GET {LIVENESS_PATH} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: cairn-node\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(64);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&buf).ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP status line"))
}

fn parse_status_line(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_suspicious_down_up() {
        let h = MemberHealth::default();
        assert_eq!(h.state, MemberState::Up);
        let h = h.after_probe(false);
        assert_eq!((h.state, h.failures), (MemberState::Suspicious, 1));
        let h = h.after_probe(false);
        assert_eq!((h.state, h.failures), (MemberState::Suspicious, 2));
        let h = h.after_probe(false);
        assert_eq!((h.state, h.failures), (MemberState::Down, 3));
        let h = h.after_probe(false);
        assert_eq!((h.state, h.failures), (MemberState::Down, 4));
        let h = h.after_probe(true);
        assert_eq!((h.state, h.failures), (MemberState::Up, 0));
        assert_eq!(MemberState::Suspicious.to_string(), "SUSPICIOUS");
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503 x\r\nfoo"), Some(503));
        assert_eq!(parse_status_line(b"garbage\r\n"), None);
        assert_eq!(parse_status_line(b""), None);
    }

    #[tokio::test]
    async fn probe_against_a_tiny_server() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut b = [0u8; 512];
                let _ = s.read(&mut b).await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK").await;
            }
        });
        assert!(probe(&addr, Duration::from_secs(1)).await);
        let closed = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().to_string()
        };
        assert!(!probe(&closed, Duration::from_millis(500)).await);
    }
}
