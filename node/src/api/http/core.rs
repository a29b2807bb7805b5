//! Health, cluster view, server state and metrics endpoints.

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

/// One member in Nacos's `Member` shape.
fn member(address: &str, state: &str, raft: Option<(u64, &str)>) -> Value {
    let (ip, port) = address.rsplit_once(':').map_or((address, 0), |(h, p)| (h, p.parse().unwrap_or(0)));
    json!({
        "ip": ip,
        "port": port,
        "state": state,
        "address": address,
        "failAccessCnt": 0,
        "extendInfo": {
            "lastRefreshTime": now_millis(),
            "version": env!("CARGO_PKG_VERSION"),
            "readyToUpgrade": true,
            "raftId": raft.map(|r| r.0),
            "raftRole": raft.map(|r| r.1),
        },
        "abilities": {
            "remoteAbility": {"supportRemoteConnection": true, "grpcReportEnabled": true},
            "namingAbility": {"supportJraft": false},
        },
        "grpcReportEnabled": true,
    })
}

fn self_member(st: &HttpState) -> Value {
    let state = if st.ready.load(Ordering::Acquire) { "UP" } else { "STARTING" };
    let r = &st.raft;
    let raft = Some((r.id(), if r.is_leader() { "leader" } else { "follower" }));
    member(&st.node_config.self_address(), state, raft)
}

/// Every Raft member. States: this node UP/STARTING; on the leader, others are UP when they
/// acknowledged a heartbeat within 3 s and DOWN otherwise; a follower reports the leader UP and
/// the others SUSPICIOUS (it cannot see them).
async fn cluster_nodes(State(st): State<HttpState>) -> Json<Value> {
    let r = &st.raft;
    let m = r.metrics();
    let views = super::admin::leader_views(r);
    let mut data = Vec::new();
    for (id, info, voter) in
        m.voters.iter().map(|(i, n)| (i, n, true)).chain(m.learners.iter().map(|(i, n)| (i, n, false)))
    {
        if *id == r.id() {
            data.push(self_member(&st));
            continue;
        }
        let state = if !views.is_empty() {
            if super::admin::reachable(views.get(id)) { "UP" } else { "DOWN" }
        } else if Some(*id) == m.leader {
            "UP"
        } else {
            "SUSPICIOUS"
        };
        let role = if Some(*id) == m.leader {
            "leader"
        } else if voter {
            "follower"
        } else {
            "learner"
        };
        data.push(member(&super::admin::http_addr(&info.cluster_addr), state, Some((*id, role))));
    }
    if data.is_empty() {
        data.push(self_member(&st));
    }
    Json(json!({"code": 200, "message": null, "data": data}))
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
