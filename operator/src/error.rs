//! The crate's error type.

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the operator, with the action that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The RegistryCluster's spec is invalid (beyond what the schema caught).
    #[error("invalid spec: {}", .0.join("; "))]
    InvalidSpec(Vec<String>),
    /// A Kubernetes API call failed.
    #[error("{action}: {source}")]
    Kube {
        /// What was attempted (e.g. `apply StatefulSet ns/x`).
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// An HTTP request to a node failed (connect, timeout, bad body).
    #[error("node {address}: {action}: {source}")]
    NodeRequest {
        /// The node's HTTP address.
        address: String,
        /// What was asked.
        action: String,
        /// The client error.
        #[source]
        source: reqwest::Error,
    },
    /// A node answered a membership request with an error status.
    #[error("node {address}: {action} answered {status}: {body}")]
    NodeRefused {
        /// The node's HTTP address.
        address: String,
        /// What was asked.
        action: String,
        /// HTTP status.
        status: u16,
        /// Response body (the node's `error` text).
        body: String,
    },
    /// Serialising an object failed.
    #[error("serialize {what}: {source}")]
    Serialize {
        /// What was serialised.
        what: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
    /// Invalid operator configuration (flags / environment).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// This replica lost the leader-election lease.
    #[error("leader election lease {0} was lost")]
    LeaseLost(String),
    /// Metrics registration failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Local I/O (binding the metrics port, ...).
    #[error("{action}: {source}")]
    Io {
        /// What was attempted.
        action: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The RegistryCluster object misses a field the API server always sets (name, namespace, uid).
    #[error("RegistryCluster object has no {0}")]
    MissingField(&'static str),
}

impl Error {
    /// Low-cardinality label for `cairn_operator_reconcile_errors_total{reason}` and event reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => "InvalidSpec",
            Self::Kube { .. } => "KubeApi",
            Self::NodeRequest { .. } => "NodeUnreachable",
            Self::NodeRefused { .. } => "NodeRefused",
            Self::Serialize { .. } => "Serialize",
            Self::Config(_) => "Config",
            Self::LeaseLost(_) => "LeaseLost",
            Self::Metrics(_) => "Metrics",
            Self::Io { .. } => "Io",
            Self::MissingField(_) => "MissingField",
        }
    }

    /// Wraps a kube error with the action that failed.
    pub fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let action = action.into();
        move |source| Self::Kube { action, source }
    }
}
