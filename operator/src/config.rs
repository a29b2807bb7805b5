//! Flags of the `cairn-operator` binary; every flag also via env `CAIRN_OPERATOR_<FLAG>`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

use crate::{Error, Result};

/// How the operator (and the nodes) address members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Addressing {
    /// `<pod>.<name>-headless.<ns>.svc.<clusterDomain>:<P>` — stable across pod restarts (production).
    Dns,
    /// `<podIP>:<P>` — for environments without cluster DNS (tests with pods as local processes). Member
    /// addresses change when a pod's IP changes, so use it only where pod IPs are stable.
    Ip,
}

/// Operator configuration.
#[derive(Clone, Debug, Parser)]
#[command(name = "cairn-operator", version, about = "Kubernetes operator for Cairn registry clusters")]
pub struct OperatorConfig {
    /// Address of the HTTP server with /metrics, /healthz and /readyz.
    #[arg(long, env = "CAIRN_OPERATOR_METRICS_BIND", default_value = "0.0.0.0:8080")]
    pub metrics_bind: SocketAddr,
    /// Elect one active replica through a coordination.k8s.io Lease.
    #[arg(long, env = "CAIRN_OPERATOR_LEADER_ELECT", default_value_t = true, action = ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "CAIRN_OPERATOR_LEASE_NAME", default_value = "cairn-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else the service account's namespace, else the
    /// kubeconfig's namespace).
    #[arg(long, env = "CAIRN_OPERATOR_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Lease duration in seconds: a replica that stops renewing loses the lease after this long.
    #[arg(long, env = "CAIRN_OPERATOR_LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// This replica's identity in the Lease (default: $POD_NAME, else hostname-pid).
    #[arg(long, env = "CAIRN_OPERATOR_IDENTITY")]
    pub identity: Option<String>,
    /// Watch RegistryClusters in this namespace only (default: all namespaces).
    #[arg(long, env = "CAIRN_OPERATOR_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Node image for clusters that set no `spec.image`.
    #[arg(long, env = "CAIRN_OPERATOR_DEFAULT_NODE_IMAGE", default_value = concat!("cairn/cairn-node:", env!("CARGO_PKG_VERSION")))]
    pub default_node_image: String,
    /// How members are addressed: `dns` (pod DNS names) or `ip` (pod IPs).
    #[arg(long, env = "CAIRN_OPERATOR_MEMBER_ADDRESSING", value_enum, default_value_t = Addressing::Dns)]
    pub member_addressing: Addressing,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "CAIRN_OPERATOR_LOG", default_value = "info")]
    pub log: String,
    /// Timeout of one HTTP request to a node, in milliseconds.
    #[arg(long, env = "CAIRN_OPERATOR_NODE_TIMEOUT_MS", default_value_t = 5000)]
    pub node_timeout_ms: u64,
    /// Requeue interval while a cluster is settled, in seconds (status refresh).
    #[arg(long, env = "CAIRN_OPERATOR_RESYNC_SECONDS", default_value_t = 30)]
    pub resync_seconds: u64,
}

impl OperatorConfig {
    /// Checks what clap cannot; the binary exits 64 on error.
    pub fn validate(&self) -> Result<()> {
        if self.lease_name.is_empty() {
            return Err(Error::Config("--lease-name must not be empty".into()));
        }
        if self.lease_duration_seconds < 3 {
            return Err(Error::Config("--lease-duration-seconds must be at least 3".into()));
        }
        if self.default_node_image.is_empty() {
            return Err(Error::Config("--default-node-image must not be empty".into()));
        }
        if !(100..=120_000).contains(&self.node_timeout_ms) {
            return Err(Error::Config("--node-timeout-ms must be within 100..=120000".into()));
        }
        if self.resync_seconds == 0 {
            return Err(Error::Config("--resync-seconds must be at least 1".into()));
        }
        Ok(())
    }

    /// Lease duration.
    pub fn lease_duration(&self) -> Duration {
        Duration::from_secs(self.lease_duration_seconds)
    }

    /// A configuration with every default (for tests and embedding).
    pub fn defaults() -> Self {
        Self::parse_from(["cairn-operator"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_flags() {
        let c = OperatorConfig::defaults();
        assert!(c.leader_elect);
        assert_eq!(c.lease_name, "cairn-operator");
        assert_eq!(c.member_addressing, Addressing::Dns);
        assert_eq!(c.metrics_bind.to_string(), "0.0.0.0:8080");
        assert_eq!(c.default_node_image, format!("cairn/cairn-node:{}", env!("CARGO_PKG_VERSION")));
        c.validate().unwrap();
        let c = OperatorConfig::parse_from([
            "x",
            "--leader-elect=false",
            "--member-addressing",
            "ip",
            "--watch-namespace",
            "ns1",
        ]);
        assert!(!c.leader_elect);
        assert_eq!(c.member_addressing, Addressing::Ip);
        assert_eq!(c.watch_namespace.as_deref(), Some("ns1"));
        let mut bad = OperatorConfig::defaults();
        bad.lease_duration_seconds = 1;
        assert!(bad.validate().is_err());
    }
}
