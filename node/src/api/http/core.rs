//! Health, cluster view, server state and metrics endpoints.

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use crate::api::dto::now_millis;
use crate::api::http::HttpState;

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/nacos/v1/console/health/liveness", get(liveness))
        .route("/nacos/v1/console/health/readiness", get(readiness))
        .route("/nacos/v3/admin/core/state/liveness", get(liveness))
        .route("/nacos/v3/admin/core/state/readiness", get(readiness))
        .route("/nacos/v1/console/server/state", get(server_state))
        .route("/nacos/v1/core/cluster/nodes", get(cluster_nodes))
        .route("/nacos/v1/core/cluster/self", get(cluster_self))
        .route("/metrics", get(metrics))
        .route("/nacos/actuator/prometheus", get(nacos_metrics))
}

async fn liveness() -> &'static str {
    "OK"
}

async fn readiness(State(st): State<HttpState>) -> impl IntoResponse {
    if st.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "OK")
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "server is not ready: starting or shutting down")
    }
}

async fn server_state() -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "standalone_mode": "standalone",
        "startup_mode": "standalone",
        "function_mode": null,
        "auth_enabled": "false",
        "login_page_enabled": "false",
    }))
}

/// The address this node reports for itself: the bind address, or loopback when bound to all.
fn self_ip(st: &HttpState) -> IpAddr {
    if st.node_config.bind.is_unspecified() { IpAddr::from([127, 0, 0, 1]) } else { st.node_config.bind }
}

fn self_member(st: &HttpState) -> Value {
    let ip = self_ip(st);
    let port = st.node_config.http_port;
    json!({
        "ip": ip.to_string(),
        "port": port,
        "state": if st.ready.load(Ordering::Acquire) { "UP" } else { "STARTING" },
        "address": format!("{ip}:{port}"),
        "failAccessCnt": 0,
        "extendInfo": {
            "lastRefreshTime": now_millis(),
            "version": env!("CARGO_PKG_VERSION"),
            "readyToUpgrade": true,
        },
        "abilities": {
            "remoteAbility": {"supportRemoteConnection": true, "grpcReportEnabled": true},
            "namingAbility": {"supportJraft": false},
        },
        "grpcReportEnabled": true,
    })
}

async fn cluster_nodes(State(st): State<HttpState>) -> Json<Value> {
    Json(json!({"code": 200, "message": null, "data": [self_member(&st)]}))
}

async fn cluster_self(State(st): State<HttpState>) -> Json<Value> {
    Json(json!({"code": 200, "message": null, "data": self_member(&st)}))
}

const PROM_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(st): State<HttpState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, PROM_TEXT)], st.metrics.render_all())
}

async fn nacos_metrics(State(st): State<HttpState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, PROM_TEXT)], st.metrics.render_nacos())
}
