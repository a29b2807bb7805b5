//! The operator's HTTP endpoints: `/metrics` (Prometheus text), `/healthz`, `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder as _, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// Shared state of the endpoints.
#[derive(Clone, Debug)]
pub struct ServerState {
    /// Metrics registry.
    pub registry: Registry,
    /// Set once the operator reached the API server and the CRD is served.
    pub ready: Arc<AtomicBool>,
}

async fn metrics(State(s): State<ServerState>) -> impl IntoResponse {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&s.registry.gather(), &mut buf) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], buf).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn readyz(State(s): State<ServerState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Relaxed) { (StatusCode::OK, "ok") } else { (StatusCode::SERVICE_UNAVAILABLE, "starting") }
}

/// Binds `addr`; returns the bound address and a future serving until `shutdown`.
pub async fn bind(
    addr: SocketAddr,
    state: ServerState,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, impl Future<Output = Result<()>>)> {
    let listener =
        TcpListener::bind(addr).await.map_err(|source| Error::Io { action: format!("bind {addr}"), source })?;
    let local = listener.local_addr().map_err(|source| Error::Io { action: "local address".into(), source })?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state);
    let serve = async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .map_err(|source| Error::Io { action: "serve metrics".into(), source })
    };
    Ok((local, serve))
}
