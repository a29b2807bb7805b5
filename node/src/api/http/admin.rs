//! The Raft membership admin API, for people and for the Kubernetes operator. Every change runs
//! on the leader (other nodes answer 409 with the leader's address) and is refused when it
//! would leave the cluster without a working majority.
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/cairn/v1/raft/self` | this node's id, addresses, role, term, indexes |
//! | GET | `/cairn/v1/raft/members` | every member: id, address, role, matched index, lag, health (leader's view) |
//! | POST | `/cairn/v1/raft/learners?address=host:port` | adds the node at that HTTP address as a learner (its id is asked from it) |
//! | POST | `/cairn/v1/raft/promote?id=N` | makes a caught-up, reachable learner a voter |
//! | POST | `/cairn/v1/raft/remove?id=N` | removes a learner or a voter (not the leader: transfer first) |
//! | POST | `/cairn/v1/raft/transfer-leader?to=N` | hands leadership to a caught-up, reachable voter |

use std::collections::BTreeSet;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cairn_raft::{NodeInfo, NodeRole, RaftNode};
use openraft::ChangeMembers;
use openraft::Instant as _;
use openraft::async_runtime::watch::WatchReceiver;
use serde_json::{Value, json};

use crate::api::http::{ApiError, ApiResult, HttpState, Params};
use crate::config::{CLUSTER_GRPC_OFFSET, Config};

/// A member whose last heartbeat ack is older than this is not counted as reachable.
pub const REACHABLE_WITHIN: Duration = Duration::from_secs(3);
/// A learner or voter this many entries behind the leader is not caught up.
pub const CAUGHT_UP_LAG: u64 = 1_000;
/// How long a membership decision waits for every member to acknowledge a fresh heartbeat.
pub const FRESH_ACK_WAIT: Duration = Duration::from_secs(1);

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/cairn/v1/raft/self", get(me))
        .route("/cairn/v1/raft/members", get(members))
        .route("/cairn/v1/raft/learners", post(add_learner))
        .route("/cairn/v1/raft/promote", post(promote))
        .route("/cairn/v1/raft/remove", post(remove))
        .route("/cairn/v1/raft/transfer-leader", post(transfer_leader))
}

/// HTTP `host:port` of a member from its cluster address (`port − 1001`).
pub(crate) fn http_addr(cluster_addr: &str) -> String {
    match cluster_addr.rsplit_once(':').and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h, p))) {
        Some((h, p)) => format!("{h}:{}", p.saturating_sub(CLUSTER_GRPC_OFFSET)),
        None => cluster_addr.to_owned(),
    }
}

fn role_name(r: NodeRole) -> &'static str {
    match r {
        NodeRole::Leader => "leader",
        NodeRole::Follower => "follower",
        NodeRole::Candidate => "candidate",
        NodeRole::Learner => "learner",
        NodeRole::Shutdown => "shutdown",
    }
}

/// The leader's view of one member.
pub(crate) struct View {
    pub(crate) matched: Option<u64>,
    pub(crate) last_ack: Option<Duration>,
}

/// Reachability and progress of every member, as the leader sees them (empty elsewhere).
pub(crate) fn leader_views(r: &RaftNode) -> std::collections::BTreeMap<u64, View> {
    let m = r.raft().metrics().borrow_watched().clone();
    let mut out = std::collections::BTreeMap::new();
    let me = r.id();
    if let Some(rep) = &m.replication {
        for (id, log_id) in rep {
            let last_ack = m.heartbeat.as_ref().and_then(|h| h.get(id).cloned().flatten()).map(|t| t.elapsed());
            let matched = log_id.as_ref().map(|l| l.index());
            out.insert(*id, View { matched, last_ack });
        }
        out.insert(me, View { matched: m.last_log_index, last_ack: Some(Duration::ZERO) });
    }
    out
}

/// The leader's view for deciding a change: like [`leader_views`], but a member counts as
/// reachable only if it acknowledged an RPC sent after this call began (a heartbeat is triggered
/// and every member given up to [`FRESH_ACK_WAIT`]). A member killed a moment ago still has an
/// ack younger than [`REACHABLE_WITHIN`]; counting it could let a change append a joint
/// configuration that needs it to commit — wedging the cluster until that member returns.
pub(crate) async fn fresh_views(r: &RaftNode) -> std::collections::BTreeMap<u64, View> {
    let start = std::time::Instant::now();
    let _ = r.raft().trigger().heartbeat().await;
    loop {
        let since = start.elapsed();
        let mut views = leader_views(r);
        let fresh = |v: &View| v.last_ack.is_some_and(|d| d <= since);
        if views.values().all(fresh) || since >= FRESH_ACK_WAIT {
            for v in views.values_mut().filter(|v| !fresh(v)) {
                v.last_ack = None;
            }
            return views;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) fn reachable(v: Option<&View>) -> bool {
    v.is_some_and(|v| v.last_ack.is_some_and(|d| d <= REACHABLE_WITHIN))
}

fn not_leader(r: &RaftNode) -> Response {
    let leader = r.leader();
    let body = json!({
        "error": "not the leader; send membership changes to the leader",
        "leader": leader.as_ref().map(|(id, _)| *id),
        "leaderAddress": leader.as_ref().map(|(_, info)| http_addr(&info.cluster_addr)),
    });
    (StatusCode::CONFLICT, Json(body)).into_response()
}

fn refused(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

fn done(log_index: Option<u64>) -> Response {
    Json(json!({"ok": true, "logIndex": log_index})).into_response()
}

fn raft_error(e: cairn_raft::Error) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": e.to_string()}))).into_response()
}

async fn me(State(st): State<HttpState>) -> ApiResult<Json<Value>> {
    let r = &st.raft;
    let m = r.metrics();
    Ok(Json(json!({
        "id": r.id(),
        "clusterAddress": r.config().advertise_addr,
        "httpAddress": st.node_config.self_address(),
        "role": role_name(m.role),
        "term": m.term,
        "leader": m.leader,
        "lastLogIndex": m.last_log_index,
        "commitIndex": m.committed_index,
        "appliedIndex": m.applied_index,
    })))
}

async fn members(State(st): State<HttpState>) -> ApiResult<Json<Value>> {
    let r = &st.raft;
    let m = r.metrics();
    let views = leader_views(r);
    let last = m.last_log_index;
    let entry = |id: &u64, info: &NodeInfo, voter: bool| {
        let v = views.get(id);
        let role = if Some(*id) == m.leader {
            "leader"
        } else if voter {
            "voter"
        } else {
            "learner"
        };
        json!({
            "id": id,
            "address": http_addr(&info.cluster_addr),
            "clusterAddress": info.cluster_addr,
            "role": role,
            "matchedIndex": v.and_then(|v| v.matched),
            "lag": v.and_then(|v| v.matched).map(|x| last.saturating_sub(x)),
            "lastAckMs": v.and_then(|v| v.last_ack).map(|d| d.as_millis() as u64),
            "healthy": if views.is_empty() { Value::Null } else { Value::Bool(reachable(v)) },
        })
    };
    let mut list: Vec<Value> = m.voters.iter().map(|(id, i)| entry(id, i, true)).collect();
    list.extend(m.learners.iter().map(|(id, i)| entry(id, i, false)));
    Ok(Json(json!({
        "nodeId": r.id(),
        "leader": m.leader,
        "term": m.term,
        "lastLogIndex": m.last_log_index,
        "commitIndex": m.committed_index,
        "appliedIndex": m.applied_index,
        "members": list,
    })))
}

fn id_param(p: &Params, k: &str) -> ApiResult<u64> {
    p.required(k)?.parse().map_err(|_| ApiError::bad_request(format!("Param '{k}' must be a node id")))
}

/// Whether `voters` could still elect and commit: reachable voters ≥ majority.
pub(crate) fn quorum_ok(voters: &BTreeSet<u64>, views: &std::collections::BTreeMap<u64, View>) -> bool {
    let up = voters.iter().filter(|id| reachable(views.get(id))).count();
    !voters.is_empty() && up > voters.len() / 2
}

async fn add_learner(State(st): State<HttpState>, p: Params) -> ApiResult<Response> {
    let r = &st.raft;
    if !r.is_leader() {
        return Ok(not_leader(r));
    }
    let address = p.required("address")?;
    let cluster_addr = Config::member_cluster_addr(address);
    let peer = match r.peer_status(&cluster_addr).await {
        Ok(s) => s,
        Err(e) => return Ok(refused(format!("cannot reach {address} (cluster port {cluster_addr}): {e}"))),
    };
    let m = r.metrics();
    if m.voters.contains_key(&peer.node_id) {
        return Ok(refused(format!("node {} is already a voter", peer.node_id)));
    }
    match r.add_learner(peer.node_id, NodeInfo::new(cluster_addr), false).await {
        Ok(ix) => Ok(Json(json!({"ok": true, "id": peer.node_id, "logIndex": ix})).into_response()),
        Err(e) => Ok(raft_error(e)),
    }
}

async fn promote(State(st): State<HttpState>, p: Params) -> ApiResult<Response> {
    let r = &st.raft;
    if !r.is_leader() {
        return Ok(not_leader(r));
    }
    let id = id_param(&p, "id")?;
    let m = r.metrics();
    if m.voters.contains_key(&id) {
        return Ok(done(None));
    }
    if !m.learners.contains_key(&id) {
        return Ok(refused(format!("node {id} is not a learner; add it as a learner first")));
    }
    let views = fresh_views(r).await;
    let v = views.get(&id);
    if !reachable(v) || v.and_then(|v| v.matched).is_none_or(|x| m.last_log_index.saturating_sub(x) > CAUGHT_UP_LAG) {
        return Ok(refused(format!("learner {id} is not caught up or not reachable yet")));
    }
    let mut voters: BTreeSet<u64> = m.voters.keys().copied().collect();
    voters.insert(id);
    if !quorum_ok(&voters, &views) {
        return Ok(refused("promoting now would leave the new configuration without a reachable majority"));
    }
    match r.change_membership(voters, true).await {
        Ok(ix) => Ok(done(Some(ix))),
        Err(e) => Ok(raft_error(e)),
    }
}

async fn remove(State(st): State<HttpState>, p: Params) -> ApiResult<Response> {
    let r = &st.raft;
    if !r.is_leader() {
        return Ok(not_leader(r));
    }
    let id = id_param(&p, "id")?;
    let m = r.metrics();
    if id == r.id() {
        return Ok(refused("this node is the leader: transfer leadership before removing it"));
    }
    if m.learners.contains_key(&id) {
        let changed = r.raft().change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false).await;
        return Ok(match changed {
            Ok(resp) => done(Some(resp.log_id.index())),
            Err(e) => raft_error(cairn_raft::Error::Membership(e.to_string())),
        });
    }
    if !m.voters.contains_key(&id) {
        return Ok(done(None));
    }
    let voters: BTreeSet<u64> = m.voters.keys().copied().filter(|v| *v != id).collect();
    if !quorum_ok(&voters, &fresh_views(r).await) {
        return Ok(refused(format!("removing {id} would leave the remaining voters without a reachable majority")));
    }
    match r.change_membership(voters, false).await {
        Ok(ix) => Ok(done(Some(ix))),
        Err(e) => Ok(raft_error(e)),
    }
}

async fn transfer_leader(State(st): State<HttpState>, p: Params) -> ApiResult<Response> {
    let r = &st.raft;
    if !r.is_leader() {
        return Ok(not_leader(r));
    }
    let to = id_param(&p, "to")?;
    let m = r.metrics();
    if to == r.id() {
        return Ok(done(None));
    }
    if !m.voters.contains_key(&to) {
        return Ok(refused(format!("node {to} is not a voter")));
    }
    let views = fresh_views(r).await;
    let v = views.get(&to);
    if !reachable(v) || v.and_then(|v| v.matched).is_none_or(|x| m.last_log_index.saturating_sub(x) > CAUGHT_UP_LAG) {
        return Ok(refused(format!("voter {to} is not caught up or not reachable")));
    }
    match r.transfer_leader(to).await {
        Ok(()) => Ok(done(None)),
        Err(e) => Ok(raft_error(e)),
    }
}
