//! Command-line and environment configuration of `cairn-node`.
//!
//! Every flag can also be given as an environment variable `CAIRN_<FLAG>` (upper case, `-` → `_`).
//! The configuration is validated before anything binds; `main` exits with status 64 on error.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::error::{Error, Result};

/// Offset of the client gRPC port from the HTTP port (Nacos: 8848 → 9848).
pub const CLIENT_GRPC_OFFSET: u16 = 1000;
/// Offset of the cluster gRPC port from the HTTP port (Nacos: 8848 → 9849).
pub const CLUSTER_GRPC_OFFSET: u16 = 1001;

/// The node's configuration.
#[derive(Debug, Clone, Parser)]
#[command(name = "cairn-node", version, about = "Cairn: a Nacos-compatible registry and configuration center")]
pub struct Config {
    /// Address that the HTTP, client gRPC and cluster gRPC ports bind to.
    #[arg(long, env = "CAIRN_BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// HTTP API port P; client gRPC listens on P+1000 and cluster gRPC on P+1001.
    #[arg(long, env = "CAIRN_HTTP_PORT", default_value_t = 8848)]
    pub http_port: u16,

    /// Directory for persistent data (created when missing).
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Cluster members: a comma-separated static list of `host:port` (HTTP ports), this node
    /// included. Absent means standalone (a one-member cluster).
    #[arg(long, env = "CAIRN_MEMBERS")]
    pub members: Option<String>,

    /// Host (name or IP) other members use to reach this node; defaults to the bind address.
    #[arg(long, env = "CAIRN_ADVERTISE_HOST")]
    pub advertise_host: Option<String>,

    /// Log filter in `tracing` EnvFilter syntax (e.g. `info`, `cairn_node=debug`).
    #[arg(long, env = "CAIRN_LOG", default_value = "info")]
    pub log: String,

    /// Largest accepted request body (HTTP) or message (gRPC), in bytes.
    #[arg(long, env = "CAIRN_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// A registered gRPC connection idle this long (ms) is probed with ClientDetectionRequest.
    #[arg(long, env = "CAIRN_CLIENT_IDLE_MS", default_value_t = 20_000)]
    pub client_idle_ms: u64,

    /// How long (ms) a ClientDetection or push may wait for its answer before it counts as failed.
    #[arg(long, env = "CAIRN_PUSH_TIMEOUT_MS", default_value_t = 5_000)]
    pub push_timeout_ms: u64,

    /// Default v1 heartbeat timeout (ms) after which an instance turns unhealthy
    /// (per instance: metadata `preserved.heart.beat.timeout`).
    #[arg(long, env = "CAIRN_BEAT_TIMEOUT_MS", default_value_t = 15_000)]
    pub beat_timeout_ms: u64,

    /// Default v1 delete timeout (ms) after which a silent instance is removed
    /// (per instance: metadata `preserved.ip.delete.timeout`).
    #[arg(long, env = "CAIRN_IP_DELETE_TIMEOUT_MS", default_value_t = 30_000)]
    pub ip_delete_timeout_ms: u64,

    /// Services with no instances and no subscribers (not created through the service API)
    /// are dropped after this long (ms).
    #[arg(long, env = "CAIRN_EMPTY_SERVICE_CLEAN_MS", default_value_t = 60_000)]
    pub empty_service_clean_ms: u64,

    /// A v1 UDP push subscriber (from `instance/list?udpPort=`) expires after this long (ms)
    /// without another list call.
    #[arg(long, env = "CAIRN_UDP_SUBSCRIBER_TTL_MS", default_value_t = 30_000)]
    pub udp_subscriber_ttl_ms: u64,

    /// Interval (ms) between active health-check rounds of persistent instances; a health
    /// change needs 3 consecutive contrary results.
    #[arg(long, env = "CAIRN_HEALTH_CHECK_INTERVAL_MS", default_value_t = 5_000)]
    pub health_check_interval_ms: u64,

    /// Build a Raft snapshot (and compact the log) every this many log entries.
    #[arg(long, env = "CAIRN_RAFT_SNAPSHOT_EVERY", default_value_t = 100_000)]
    pub raft_snapshot_every: u64,

    /// Grace period (ms) for graceful shutdown: ConnectReset to clients, then drain.
    #[arg(long, env = "CAIRN_SHUTDOWN_GRACE_MS", default_value_t = 3_000)]
    pub shutdown_grace_ms: u64,
}

impl Config {
    /// Checks what clap cannot: port arithmetic and unsupported options.
    pub fn validate(&self) -> Result<()> {
        if self.http_port == 0 || self.http_port.checked_add(CLUSTER_GRPC_OFFSET).is_none() {
            return Err(Error::Config(format!(
                "--http-port {} leaves no room for the gRPC ports (P+{CLIENT_GRPC_OFFSET}, P+{CLUSTER_GRPC_OFFSET}); use 1..={}",
                self.http_port,
                u16::MAX - CLUSTER_GRPC_OFFSET
            )));
        }
        let members = self.static_members()?;
        if !members.is_empty() && !members.contains(&self.self_address()) {
            return Err(Error::Config(format!(
                "--members must list this node as {} (its advertise host and HTTP port); got {members:?}",
                self.self_address()
            )));
        }
        if self.max_body_bytes < 1024 {
            return Err(Error::Config("--max-body-bytes must be at least 1024".into()));
        }
        if self.beat_timeout_ms > self.ip_delete_timeout_ms {
            return Err(Error::Config("--beat-timeout-ms must not exceed --ip-delete-timeout-ms".into()));
        }
        Ok(())
    }

    /// The HTTP API address.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.http_port)
    }

    /// The client gRPC address (P+1000).
    pub fn client_grpc_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.http_port + CLIENT_GRPC_OFFSET)
    }

    /// The cluster gRPC address (P+1001): Raft and, later, Distro.
    pub fn cluster_grpc_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.http_port + CLUSTER_GRPC_OFFSET)
    }

    /// The host other members reach this node at: `--advertise-host`, else the bind address,
    /// else (bound to all interfaces) 127.0.0.1.
    pub fn advertise_host(&self) -> String {
        match &self.advertise_host {
            Some(h) => h.clone(),
            None if self.bind.is_unspecified() => "127.0.0.1".into(),
            None => self.bind.to_string(),
        }
    }

    /// This node's member address, `advertise-host:http-port`.
    pub fn self_address(&self) -> String {
        format!("{}:{}", self.advertise_host(), self.http_port)
    }

    /// The static member list (HTTP `host:port`s, sorted, deduplicated); empty for standalone.
    pub fn static_members(&self) -> Result<Vec<String>> {
        let Some(raw) = self.members.as_deref().map(str::trim).filter(|m| !m.is_empty()) else {
            return Ok(Vec::new());
        };
        if let Some((scheme, _)) = raw.split_once(':').filter(|(s, _)| ["file", "dns", "k8s"].contains(s)) {
            return Err(Error::Config(format!(
                "--members {scheme}:… is not available yet; give a static host:port list"
            )));
        }
        let mut out = Vec::new();
        for m in raw.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            let (host, port) =
                m.rsplit_once(':').ok_or_else(|| Error::Config(format!("--members entry {m:?} is not host:port")))?;
            let port: u16 = port.parse().map_err(|_| Error::Config(format!("--members entry {m:?} has a bad port")))?;
            if host.is_empty() || port == 0 || port.checked_add(CLUSTER_GRPC_OFFSET).is_none() {
                return Err(Error::Config(format!("--members entry {m:?} is not a usable host:port")));
            }
            out.push(format!("{host}:{port}"));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The cluster gRPC address (`host:port+1001`) of a member given as HTTP `host:port`.
    pub fn member_cluster_addr(member: &str) -> String {
        match member.rsplit_once(':').and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h, p))) {
            Some((h, p)) => format!("{h}:{}", p.saturating_add(CLUSTER_GRPC_OFFSET)),
            None => member.to_owned(),
        }
    }

    /// Milliseconds as a [`Duration`].
    pub fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut v = vec!["cairn-node"];
        v.extend_from_slice(args);
        Config::try_parse_from(v).expect("parse")
    }

    #[test]
    fn defaults_are_nacos_ports() {
        let c = parse(&[]);
        c.validate().unwrap();
        assert_eq!(c.http_addr().port(), 8848);
        assert_eq!(c.client_grpc_addr().port(), 9848);
    }

    #[test]
    fn rejects_port_without_room() {
        assert!(parse(&["--http-port", "65000"]).validate().is_err());
        assert!(parse(&["--http-port", "0"]).validate().is_err());
    }

    #[test]
    fn static_members_must_include_self() {
        assert!(parse(&["--members", "a:8848"]).validate().is_err());
        let c = parse(&["--bind", "127.0.0.2", "--members", "127.0.0.1:8848, 127.0.0.2:8848,127.0.0.3:8848"]);
        c.validate().unwrap();
        assert_eq!(c.static_members().unwrap().len(), 3);
        assert_eq!(Config::member_cluster_addr("127.0.0.3:8848"), "127.0.0.3:9849");
        assert!(parse(&["--members", "k8s:app=x"]).validate().is_err());
        assert!(parse(&["--members", "nope"]).validate().is_err());
    }
}
