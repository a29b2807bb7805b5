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
    /// included; or `file:<path>` (cluster.conf, hot-reloaded), `dns:<name>` (A records, or SRV
    /// when the name starts with `_`), `k8s:<label-selector>` (Pods of this namespace). Absent
    /// means standalone (a one-member cluster).
    #[arg(long, env = "CAIRN_MEMBERS")]
    pub members: Option<String>,

    /// With discovered members (file/dns/k8s): the node whose address sorts first forms a new
    /// cluster only once at least this many members are discovered.
    #[arg(long, env = "CAIRN_BOOTSTRAP_EXPECT", default_value_t = 1)]
    pub bootstrap_expect: usize,

    /// The Raft leader adds discovered members that are not in the Raft configuration as
    /// learners and promotes them once caught up (never removes voters).
    #[arg(long, env = "CAIRN_AUTO_JOIN", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub auto_join: bool,

    /// Interval (ms) between probes of every other member's liveness URL.
    #[arg(long, env = "CAIRN_MEMBER_PROBE_MS", default_value_t = 2_000)]
    pub member_probe_ms: u64,

    /// `dns:` members: re-resolve interval (ms).
    #[arg(long, env = "CAIRN_DNS_REFRESH_MS", default_value_t = 5_000)]
    pub dns_refresh_ms: u64,

    /// `dns:` members: the resolver to ask (`ip:port`, UDP and TCP) instead of /etc/resolv.conf.
    #[arg(long, env = "CAIRN_DNS_SERVER")]
    pub dns_server: Option<SocketAddr>,

    /// `k8s:` members: a member's address is `<pod-name>.<peer-domain>:<P>` instead of `<pod-ip>:<P>`.
    #[arg(long, env = "CAIRN_PEER_DOMAIN")]
    pub peer_domain: Option<String>,

    /// `k8s:` members: the namespace whose Pods are watched; else env `POD_NAMESPACE`, else the
    /// service account's namespace file.
    #[arg(long, env = "CAIRN_NAMESPACE")]
    pub namespace: Option<String>,

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

    /// Config history older than this many days is purged (Nacos `nacos.config.retention.days`);
    /// fractions are allowed, 0 keeps history forever.
    #[arg(long, env = "CAIRN_CONFIG_HISTORY_RETENTION_DAYS", default_value_t = 30.0)]
    pub config_history_retention_days: f64,

    /// How often (ms) the Raft leader purges config history past its retention.
    #[arg(long, env = "CAIRN_CONFIG_HISTORY_PURGE_INTERVAL_MS", default_value_t = 600_000)]
    pub config_history_purge_interval_ms: u64,

    /// Build a Raft snapshot (and compact the log) every this many log entries.
    #[arg(long, env = "CAIRN_RAFT_SNAPSHOT_EVERY", default_value_t = 100_000)]
    pub raft_snapshot_every: u64,

    /// redb quick repair on the Raft log database: a second fsync and the allocator state on
    /// every append, so that reopening after a crash skips the log's repair scan. Off by
    /// default: the log is compacted at every snapshot, and after `kill -9` with 200,000
    /// entries (160 MB) a node was ready again in 0.27 s either way, while the second fsync
    /// cost about 5% of config publish throughput.
    #[arg(long, env = "CAIRN_RAFT_LOG_QUICK_REPAIR", default_value_t = false, action = clap::ArgAction::Set)]
    pub raft_log_quick_repair: bool,

    /// Grace period (ms) for graceful shutdown: ConnectReset to clients, then drain.
    #[arg(long, env = "CAIRN_SHUTDOWN_GRACE_MS", default_value_t = 3_000)]
    pub shutdown_grace_ms: u64,

    /// Distro: changes of this node's ephemeral clients are batched this long (ms) before
    /// they are sent to every peer.
    #[arg(long, env = "CAIRN_DISTRO_SYNC_DELAY_MS", default_value_t = 1_000)]
    pub distro_sync_delay_ms: u64,

    /// Distro: interval (ms) at which this node verifies every client it owns with every peer.
    #[arg(long, env = "CAIRN_DISTRO_VERIFY_MS", default_value_t = 5_000)]
    pub distro_verify_ms: u64,

    /// Distro: a copy of another node's client not verified for this long (ms) is dropped.
    #[arg(long, env = "CAIRN_DISTRO_EXPIRE_MS", default_value_t = 15_000)]
    pub distro_expire_ms: u64,
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
        crate::membership::MembersSpec::parse(self)?;
        if self.bootstrap_expect == 0 {
            return Err(Error::Config("--bootstrap-expect must be at least 1".into()));
        }
        if self.member_probe_ms < 50 {
            return Err(Error::Config("--member-probe-ms must be at least 50".into()));
        }
        if self.dns_refresh_ms < 100 {
            return Err(Error::Config("--dns-refresh-ms must be at least 100".into()));
        }
        if let Some(d) = &self.peer_domain {
            let d = d.trim_matches('.');
            if d.is_empty() || d.contains(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.')) {
                return Err(Error::Config(format!("--peer-domain {d:?} is not a DNS domain")));
            }
        }
        if self.namespace.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(Error::Config("--namespace must not be empty".into()));
        }
        if !(self.config_history_retention_days.is_finite() && self.config_history_retention_days >= 0.0) {
            return Err(Error::Config("--config-history-retention-days must be 0 (keep forever) or more".into()));
        }
        if self.config_history_purge_interval_ms < 100 {
            return Err(Error::Config("--config-history-purge-interval-ms must be at least 100".into()));
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

    /// The static member list (HTTP `host:port`s, sorted, deduplicated); empty for standalone
    /// and for discovered members (`file:`, `dns:`, `k8s:`).
    pub fn static_members(&self) -> Result<Vec<String>> {
        Ok(match crate::membership::MembersSpec::parse(self)? {
            crate::membership::MembersSpec::Static(list) => list,
            _ => Vec::new(),
        })
    }

    /// The cluster gRPC address (`host:port+1001`) of a member given as HTTP `host:port`.
    pub fn member_cluster_addr(member: &str) -> String {
        match member.rsplit_once(':').and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h, p))) {
            Some((h, p)) => format!("{h}:{}", p.saturating_add(CLUSTER_GRPC_OFFSET)),
            None => member.to_owned(),
        }
    }

    /// Distro timings from the `--distro-*` flags (expiry at least two verification rounds).
    pub fn distro_settings(&self) -> crate::distro::DistroSettings {
        crate::distro::DistroSettings {
            sync_delay: Self::ms(self.distro_sync_delay_ms.max(10)),
            verify_interval: Self::ms(self.distro_verify_ms.max(50)),
            expire_after: Self::ms(self.distro_expire_ms.max(self.distro_verify_ms.saturating_mul(2)).max(100)),
            ..Default::default()
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
        assert!(parse(&["--members", "nope"]).validate().is_err());
    }

    #[test]
    fn discovery_flags() {
        let c = parse(&["--members", "k8s:app=x", "--peer-domain", "cairn.ns.svc.cluster.local"]);
        c.validate().unwrap();
        assert!(c.static_members().unwrap().is_empty());
        assert!(c.auto_join);
        assert_eq!((c.bootstrap_expect, c.member_probe_ms, c.dns_refresh_ms), (1, 2000, 5000));
        for ok in [
            &["--members", "file:/etc/cairn/cluster.conf"][..],
            &["--members", "dns:_cairn._tcp.svc"],
            &["--auto-join=false"],
            &["--auto-join"],
        ] {
            parse(ok).validate().unwrap();
        }
        assert!(!parse(&["--auto-join=false"]).auto_join);
        assert!(parse(&["--auto-join"]).auto_join);
        assert!(Config::try_parse_from(["cairn-node", "--auto-join=maybe"]).is_err());
        assert_eq!(parse(&["--dns-server", "127.0.0.1:5353"]).dns_server.map(|a| a.port()), Some(5353));
        for bad in [
            &["--members", "file:"][..],
            &["--members", "dns:"],
            &["--members", "dns:a b"],
            &["--members", "k8s:"],
            &["--members", "k8s:app=(x"],
            &["--bootstrap-expect", "0"],
            &["--member-probe-ms", "1"],
            &["--dns-refresh-ms", "0"],
            &["--peer-domain", "a/b"],
        ] {
            assert!(parse(bad).validate().is_err(), "{bad:?} should be refused");
        }
    }
}
