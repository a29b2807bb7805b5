//! The crate's error type.

use std::path::PathBuf;
use std::time::Duration;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while starting or driving the test cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("create dir", "write kubeconfig", ...).
        action: &'static str,
        /// The path it was done on.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A process could not be started.
    #[error("spawn {program}: {source}")]
    Spawn {
        /// The program that was started.
        program: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Generating keys or certificates failed.
    #[error("generate {what}: {source}")]
    Certificate {
        /// Which credential was being generated.
        what: &'static str,
        /// The underlying error.
        source: rcgen::Error,
    },
    /// A component exited while the control plane was starting.
    #[error("{component} exited during startup ({status}); log {log}:\n{tail}")]
    ComponentExited {
        /// `etcd`, `kube-apiserver` or `kube-controller-manager`.
        component: &'static str,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },
    /// Something (a component, a condition) did not become ready in time.
    #[error("timed out after {waited:?} waiting for {what}: {last}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        waited: Duration,
        /// The last observation (error or state) while waiting.
        last: String,
    },
    /// A Kubernetes API call failed.
    #[error("{action}: {source}")]
    Kube {
        /// What was being done ("create TokenRequest default/operator", ...).
        action: String,
        /// The underlying error.
        source: kube::Error,
    },
    /// A kubeconfig could not be loaded into a client configuration.
    #[error("load kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// The underlying error.
        source: kube::config::KubeconfigError,
    },
    /// (De)serialising JSON failed.
    #[error("{action}: {source}")]
    Json {
        /// What was being (de)serialised.
        action: &'static str,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// An IP pool string is not a loopback IPv4 CIDR.
    #[error("invalid IP pool {pool:?}: {reason}")]
    InvalidIpPool {
        /// The pool as given.
        pool: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A fake-kubelet operation named a pod that has no running process.
    #[error("pod {pod} has no running process")]
    PodNotRunning {
        /// The pod name.
        pod: String,
    },
    /// Sending a signal failed.
    #[error("signal {signal} to process group {pgid}: {source}")]
    Signal {
        /// The signal name.
        signal: &'static str,
        /// The process group.
        pgid: i32,
        /// The underlying error.
        source: nix::Error,
    },
    /// The helper tools are not available.
    #[error("tools not available: {0}")]
    ToolsMissing(String),
}

impl Error {
    /// Wraps a [`kube::Error`] with what was being done.
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube { action: action.into(), source }
    }

    /// Wraps an I/O error with the action and path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }

    /// True when the error is a Kubernetes API answer with this HTTP status code.
    pub fn is_api_status(&self, code: u16) -> bool {
        matches!(self, Error::Kube { source: kube::Error::Api(status), .. } if status.code == code)
    }
}
