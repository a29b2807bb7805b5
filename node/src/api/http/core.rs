//! Health, cluster view, server state and metrics endpoints.

use std::collections::BTreeMap;
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
use crate::config::CLUSTER_GRPC_OFFSET;

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

/// Raft facts about one member, for `extendInfo`.
struct RaftFacts {
    id: u64,
    role: &'static str,
}

/// One member in Nacos's `Member` shape. `extendInfo.raftMetaData` carries this node's view of the
/// member's Raft seat (`id`, `role`: leader/follower/learner) when it has one.
fn member(address: &str, state: &str, fail_count: u32, name: Option<&str>, raft: Option<RaftFacts>) -> Value {
    let (ip, port): (&str, u32) = address.rsplit_once(':').map_or((address, 0), |(h, p)| (h, p.parse().unwrap_or(0)));
    json!({
        "ip": ip,
        "port": port,
        "state": state,
        "address": address,
        "failAccessCnt": fail_count,
        "extendInfo": {
            "lastRefreshTime": now_millis(),
            "version": env!("CARGO_PKG_VERSION"),
            "readyToUpgrade": true,
            "raftPort": port.checked_add(u32::from(CLUSTER_GRPC_OFFSET)).filter(|_| port > 0),
            "podName": name,
            "raftId": raft.as_ref().map(|r| r.id),
            "raftRole": raft.as_ref().map(|r| r.role),
            "raftMetaData": raft.as_ref().map(|r| json!({"id": r.id, "role": r.role})),
        },
        "abilities": {
            "remoteAbility": {"supportRemoteConnection": true, "grpcReportEnabled": true},
            "namingAbility": {"supportJraft": false},
        },
        "grpcReportEnabled": true,
    })
}

fn self_state(st: &HttpState) -> &'static str {
    if st.ready.load(Ordering::Acquire) { "UP" } else { "STARTING" }
}

fn self_member(st: &HttpState) -> Value {
    let r = &st.raft;
    let raft = RaftFacts { id: r.id(), role: if r.is_leader() { "leader" } else { "follower" } };
    member(st.membership.self_address(), self_state(st), 0, None, Some(raft))
}

/// The members: every member of the member set (this node included) with its probed state
/// (this node: UP once ready, STARTING before). With a fixed set (standalone, static list),
/// Raft members outside it (added through the admin API) follow, shown UP/DOWN as the leader
/// sees their heartbeats (on the leader), the leader UP and others SUSPICIOUS (on a follower:
/// it cannot see them). With discovery, the list is exactly the discovered set.
async fn cluster_nodes(State(st): State<HttpState>) -> Json<Value> {
    let r = &st.raft;
    let m = r.metrics();
    let views = super::admin::leader_views(r);
    let mut in_raft: BTreeMap<String, (u64, &'static str)> = BTreeMap::new();
    for (id, info, voter) in
        m.voters.iter().map(|(i, n)| (i, n, true)).chain(m.learners.iter().map(|(i, n)| (i, n, false)))
    {
        let role = if Some(*id) == m.leader {
            "leader"
        } else if voter {
            "follower"
        } else {
            "learner"
        };
        in_raft.insert(super::admin::http_addr(&info.cluster_addr), (*id, role));
    }
    let facts = |addr: &str| in_raft.get(addr).map(|(id, role)| RaftFacts { id: *id, role });
    let mb = &st.membership;
    let mut data = Vec::new();
    for mem in mb.current().iter() {
        if mem.address == mb.self_address() {
            let role = in_raft.get(&mem.address).map_or(if r.is_leader() { "leader" } else { "follower" }, |f| f.1);
            let raft = RaftFacts { id: r.id(), role };
            data.push(member(&mem.address, self_state(&st), 0, mem.name.as_deref(), Some(raft)));
            continue;
        }
        let fails = mb.health(&mem.address).map_or(0, |h| h.failures);
        data.push(member(
            &mem.address,
            mb.state(&mem.address).as_str(),
            fails,
            mem.name.as_deref(),
            facts(&mem.address),
        ));
    }
    // With discovery, the list is what discovery finds: a member taken out of the file, DNS or
    // the Pods leaves it (its Raft seat stays; see `/cairn/v1/raft/members`). With a fixed list,
    // members added through the admin API are shown too.
    let current = mb.current();
    let extra = if mb.is_discovered() { BTreeMap::new() } else { in_raft.clone() };
    for (addr, (id, role)) in extra.iter().filter(|(a, _)| !current.contains(a)) {
        let state = if !views.is_empty() {
            if super::admin::reachable(views.get(id)) { "UP" } else { "DOWN" }
        } else if Some(*id) == m.leader {
            "UP"
        } else {
            "SUSPICIOUS"
        };
        data.push(member(addr, state, 0, None, Some(RaftFacts { id: *id, role })));
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
