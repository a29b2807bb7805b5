//! The Nacos HTTP Open API on port P under `/nacos`, plus `/metrics`.

pub(crate) mod admin;
mod config;
mod core;
pub(crate) mod forward;
mod namespace;
mod naming;
mod params;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::api::udp::UdpPush;
use crate::config::Config;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::naming::Registry;

pub use params::Params;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    /// Naming registry.
    pub registry: Arc<Registry>,
    /// v1 UDP push subscribers.
    pub udp: Arc<UdpPush>,
    /// Metrics.
    pub metrics: Metrics,
    /// Serving (readiness).
    pub ready: Arc<AtomicBool>,
    /// Node configuration.
    pub node_config: Arc<Config>,
    /// The config center.
    pub config: Arc<crate::configs::service::ConfigService>,
    /// The write path for persistent data (Raft).
    pub replicator: Arc<dyn crate::replicate::Replicator>,
    /// The Raft node (membership admin API).
    pub raft: Arc<cairn_raft::RaftNode>,
    /// Discovered cluster members and their health.
    pub membership: crate::membership::Membership,
    /// HTTP client forwarding v1 heartbeat-client writes to their owning member.
    pub forwarder: reqwest::Client,
}

/// An HTTP error: status plus a plain-text body in Nacos's `caused: …;` form.
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) message: String,
}

impl ApiError {
    /// A 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::InvalidParam(_) | Error::Malformed(_) | Error::Conflict(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::CasMismatch(_) => StatusCode::CONFLICT,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError { status, message: e.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, format!("caused: {};", self.message)).into_response()
    }
}

/// Result of an HTTP handler.
pub type ApiResult<T> = Result<T, ApiError>;

async fn observe(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let label = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| format!("{} {}", req.method(), p.as_str()))
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let ok = resp.status().is_success();
    metrics.observe_request("http", &label, ok, start.elapsed().as_secs_f64());
    resp
}

/// Builds the router.
pub fn router(state: HttpState) -> Router {
    let metrics = state.metrics.clone();
    let limit = state.node_config.max_body_bytes;
    Router::new()
        .merge(naming::routes())
        .merge(core::routes())
        .merge(config::routes())
        .merge(namespace::routes())
        .merge(admin::routes())
        .route_layer(middleware::from_fn_with_state(metrics, observe))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
