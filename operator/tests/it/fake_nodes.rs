//! Scripted stand-ins for the node admin API (`/cairn/v1/raft/*`), one HTTP server per pod IP,
//! sharing one Raft configuration the test controls. They let a test stop the operator at an exact
//! point of an operation and check what it does after a restart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// One member of the scripted configuration.
#[derive(Clone, Debug)]
pub struct FakeMember {
    /// Raft id.
    pub id: u64,
    /// HTTP address.
    pub address: String,
    /// Voter (else learner).
    pub voter: bool,
    /// Entries behind the leader.
    pub lag: u64,
}

/// The shared scripted state.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Node id per HTTP address (what `/self` answers).
    pub nodes: BTreeMap<String, u64>,
    /// The Raft configuration.
    pub members: Vec<FakeMember>,
    /// Leader id.
    pub leader: Option<u64>,
    /// Term.
    pub term: u64,
    /// Lag given to a newly added learner.
    pub new_learner_lag: u64,
    /// Membership changes received, e.g. `learners 127.0.77.2:8848`, `promote 2`.
    pub calls: Vec<String>,
}

/// A set of fake nodes.
pub struct FakeNodes {
    state: Arc<Mutex<FakeState>>,
    tasks: JoinSet<()>,
}

#[derive(Clone)]
struct NodeCtx {
    state: Arc<Mutex<FakeState>>,
    address: String,
}

fn lock(s: &Mutex<FakeState>) -> MutexGuard<'_, FakeState> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeNodes {
    /// No nodes yet.
    pub fn new() -> Self {
        Self { state: Arc::default(), tasks: JoinSet::new() }
    }

    /// Serves a node with `id` at `address` (`ip:port`).
    pub async fn serve(&mut self, address: &str, id: u64) -> anyhow::Result<()> {
        lock(&self.state).nodes.insert(address.to_owned(), id);
        let listener = TcpListener::bind(address).await?;
        let ctx = NodeCtx { state: self.state.clone(), address: address.to_owned() };
        let app = Router::new()
            .route("/cairn/v1/raft/self", get(node_self))
            .route("/cairn/v1/raft/members", get(members))
            .route("/cairn/v1/raft/learners", post(add_learner))
            .route("/cairn/v1/raft/promote", post(promote))
            .route("/cairn/v1/raft/remove", post(remove))
            .route("/cairn/v1/raft/transfer-leader", post(transfer))
            .with_state(ctx);
        self.tasks.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(())
    }

    /// Runs `f` on the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut lock(&self.state))
    }

    /// The membership changes received so far.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.state).calls.clone()
    }
}

fn role_of(s: &FakeState, id: u64) -> &'static str {
    match s.members.iter().find(|m| m.id == id) {
        Some(_) if s.leader == Some(id) => "leader",
        Some(m) if m.voter => "follower",
        _ => "learner",
    }
}

async fn node_self(State(c): State<NodeCtx>) -> Json<Value> {
    let s = lock(&c.state);
    let id = s.nodes[&c.address];
    let member = s.members.iter().any(|m| m.id == id);
    Json(json!({"id": id, "role": role_of(&s, id), "term": s.term,
                "leader": if member { s.leader } else { None }, "httpAddress": c.address}))
}

async fn members(State(c): State<NodeCtx>) -> Json<Value> {
    let s = lock(&c.state);
    let id = s.nodes[&c.address];
    let leading = s.leader == Some(id);
    let list: Vec<Value> = s
        .members
        .iter()
        .map(|m| {
            let role = if s.leader == Some(m.id) {
                "leader"
            } else if m.voter {
                "voter"
            } else {
                "learner"
            };
            json!({"id": m.id, "address": m.address, "role": role,
                   "lag": leading.then_some(m.lag), "healthy": leading.then_some(true)})
        })
        .collect();
    Json(json!({"nodeId": id, "leader": s.leader, "term": s.term, "members": list}))
}

fn guard(c: &NodeCtx) -> Result<MutexGuard<'_, FakeState>, Box<Response>> {
    let s = lock(&c.state);
    let id = s.nodes[&c.address];
    if s.leader != Some(id) {
        let leader_address = s.nodes.iter().find(|(_, v)| Some(**v) == s.leader).map(|(k, _)| k.clone());
        let body = json!({"error": "not the leader", "leader": s.leader, "leaderAddress": leader_address});
        return Err(Box::new((StatusCode::CONFLICT, Json(body)).into_response()));
    }
    Ok(s)
}

fn refused(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response()
}

fn ok() -> Response {
    Json(json!({"ok": true, "logIndex": 1})).into_response()
}

async fn add_learner(State(c): State<NodeCtx>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let mut s = match guard(&c) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let address = q.get("address").cloned().unwrap_or_default();
    s.calls.push(format!("learners {address}"));
    let Some(id) = s.nodes.get(&address).copied() else { return refused("cannot reach that address") };
    if s.members.iter().any(|m| m.id == id && m.voter) {
        return refused("already a voter");
    }
    if !s.members.iter().any(|m| m.id == id) {
        let lag = s.new_learner_lag;
        s.members.push(FakeMember { id, address, voter: false, lag });
    }
    Json(json!({"ok": true, "id": id, "logIndex": 1})).into_response()
}

fn id_param(q: &BTreeMap<String, String>, k: &str) -> u64 {
    q.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
}

async fn promote(State(c): State<NodeCtx>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let mut s = match guard(&c) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let id = id_param(&q, "id");
    s.calls.push(format!("promote {id}"));
    match s.members.iter_mut().find(|m| m.id == id) {
        Some(m) if m.lag <= 1000 => {
            m.voter = true;
            ok()
        }
        Some(_) => refused("not caught up"),
        None => refused("not a learner"),
    }
}

async fn remove(State(c): State<NodeCtx>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let mut s = match guard(&c) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let id = id_param(&q, "id");
    s.calls.push(format!("remove {id}"));
    if s.leader == Some(id) {
        return refused("this node is the leader");
    }
    s.members.retain(|m| m.id != id);
    ok()
}

async fn transfer(State(c): State<NodeCtx>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let mut s = match guard(&c) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let to = id_param(&q, "to");
    s.calls.push(format!("transfer-leader {to}"));
    s.leader = Some(to);
    s.term += 1;
    ok()
}
