//! The node's error type. Errors are mapped to wire codes only at the edge
//! (`api::grpc` → Nacos error codes, `api::http` → HTTP status + body).

use std::net::SocketAddr;

/// Result with the node's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A listener could not bind.
    #[error("binding {what} on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The data directory could not be prepared.
    #[error("preparing data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A server stopped with an error.
    #[error("serving {what}: {message}")]
    Serve {
        /// Which server.
        what: &'static str,
        /// What happened.
        message: String,
    },
    /// Metrics registration failed.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A request parameter is invalid (Nacos 400).
    #[error("{0}")]
    InvalidParam(String),
    /// A request body could not be parsed (Nacos 502 on gRPC, HTTP 400).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The addressed resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with existing state (e.g. service exists, service not empty).
    #[error("{0}")]
    Conflict(String),
    /// A compare-and-set publish found another md5 on the server.
    #[error("{0}")]
    CasMismatch(String),
    /// Raft could not start or serve.
    #[error("raft: {action}: {message}")]
    Raft {
        /// What was being done.
        action: &'static str,
        /// The cause.
        message: String,
    },
    /// Embedded storage failed.
    #[error("storage: {action}: {message}")]
    Storage {
        /// What was being done.
        action: &'static str,
        /// The cause.
        message: String,
    },
    /// The write path is unavailable (no Raft leader, shutting down).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl Error {
    /// Nacos error code (`NacosException`) for this error.
    pub fn nacos_code(&self) -> i32 {
        match self {
            Error::InvalidParam(_) | Error::Conflict(_) => 400,
            Error::Malformed(_) => 502,
            Error::NotFound(_) => 404,
            Error::Unavailable(_) => 503,
            _ => 500,
        }
    }

    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Bind { .. } => "bind",
            Error::DataDir { .. } => "data_dir",
            Error::Serve { .. } => "serve",
            Error::Metrics(_) => "metrics",
            Error::InvalidParam(_) => "invalid_param",
            Error::Malformed(_) => "malformed",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Storage { .. } => "storage",
            Error::Raft { .. } => "raft",
            Error::CasMismatch(_) => "cas_mismatch",
            Error::Unavailable(_) => "unavailable",
        }
    }
}
