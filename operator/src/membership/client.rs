//! HTTP client of the node admin API (`/cairn/v1/raft/*`).

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// `GET /cairn/v1/raft/self`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelf {
    /// Raft id.
    pub id: u64,
    /// `host:P+1001`.
    #[serde(default)]
    pub cluster_address: Option<String>,
    /// `host:P`.
    #[serde(default)]
    pub http_address: Option<String>,
    /// `leader|follower|learner|candidate|shutdown`.
    pub role: String,
    /// Current term.
    #[serde(default)]
    pub term: u64,
    /// Leader id, if known.
    #[serde(default)]
    pub leader: Option<u64>,
}

/// One entry of `GET /cairn/v1/raft/members`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RaftMembersEntry {
    /// Raft id.
    pub id: u64,
    /// HTTP address.
    pub address: String,
    /// `leader|voter|learner`.
    pub role: String,
    /// Entries behind the leader (leader only).
    #[serde(default)]
    pub lag: Option<u64>,
    /// Recent heartbeat ack (leader only).
    #[serde(default)]
    pub healthy: Option<bool>,
}

/// `GET /cairn/v1/raft/members`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RaftMembers {
    /// Id of the answering node.
    pub node_id: u64,
    /// Leader id, if known.
    #[serde(default)]
    pub leader: Option<u64>,
    /// Term.
    #[serde(default)]
    pub term: u64,
    /// Voters and learners.
    pub members: Vec<RaftMembersEntry>,
}

/// Answer of a refused change on a non-leader (`409`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotLeader {
    #[serde(default)]
    leader_address: Option<String>,
}

/// Client of the nodes' admin API.
#[derive(Clone, Debug)]
pub struct NodeClient {
    http: reqwest::Client,
    read_timeout: Duration,
    change_timeout: Duration,
}

impl NodeClient {
    /// A client whose reads time out after `min(timeout, 2 s)` and changes after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(1_000).min(timeout))
            .no_proxy()
            .build()
            .map_err(|source| Error::NodeRequest { address: String::new(), action: "build client".into(), source })?;
        Ok(Self { http, read_timeout: timeout.min(Duration::from_secs(2)), change_timeout: timeout })
    }

    async fn get<T: DeserializeOwned>(&self, address: &str, path: &str) -> Result<T> {
        let action = format!("GET {path}");
        let err = |source| Error::NodeRequest { address: address.to_owned(), action: action.clone(), source };
        let resp =
            self.http.get(format!("http://{address}{path}")).timeout(self.read_timeout).send().await.map_err(err)?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(Error::NodeRefused { address: address.to_owned(), action, status: status.as_u16(), body });
        }
        resp.json().await.map_err(err)
    }

    /// The node's own view (`/cairn/v1/raft/self`).
    pub async fn node_self(&self, address: &str) -> Result<NodeSelf> {
        self.get(address, "/cairn/v1/raft/self").await
    }

    /// The node's member list (`/cairn/v1/raft/members`; lag and health only from the leader).
    pub async fn members(&self, address: &str) -> Result<RaftMembers> {
        self.get(address, "/cairn/v1/raft/members").await
    }

    /// POSTs a membership change to `leader`; a `409` naming another leader is retried there once.
    async fn change(&self, leader: &str, path_and_query: &str) -> Result<serde_json::Value> {
        let mut target = leader.to_owned();
        for attempt in 0..2 {
            let action = format!("POST {path_and_query}");
            let err = |source| Error::NodeRequest { address: target.clone(), action: action.clone(), source };
            let resp = self
                .http
                .post(format!("http://{target}{path_and_query}"))
                .timeout(self.change_timeout)
                .send()
                .await
                .map_err(err)?;
            let status = resp.status();
            let body = resp.text().await.map_err(err)?;
            if status.is_success() {
                return Ok(serde_json::from_str(&body).unwrap_or(serde_json::Value::Null));
            }
            if status.as_u16() == 409
                && attempt == 0
                && let Some(next) = serde_json::from_str::<NotLeader>(&body).ok().and_then(|n| n.leader_address)
                && next != target
            {
                target = next;
                continue;
            }
            return Err(Error::NodeRefused { address: target, action, status: status.as_u16(), body });
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Adds the node at `address` as a learner; returns its id when the leader reports it.
    pub async fn add_learner(&self, leader: &str, address: &str) -> Result<Option<u64>> {
        let v = self.change(leader, &format!("/cairn/v1/raft/learners?address={address}")).await?;
        Ok(v.get("id").and_then(serde_json::Value::as_u64))
    }

    /// Promotes a learner.
    pub async fn promote(&self, leader: &str, id: u64) -> Result<()> {
        self.change(leader, &format!("/cairn/v1/raft/promote?id={id}")).await.map(drop)
    }

    /// Removes a member.
    pub async fn remove(&self, leader: &str, id: u64) -> Result<()> {
        self.change(leader, &format!("/cairn/v1/raft/remove?id={id}")).await.map(drop)
    }

    /// Transfers leadership.
    pub async fn transfer_leader(&self, leader: &str, to: u64) -> Result<()> {
        self.change(leader, &format!("/cairn/v1/raft/transfer-leader?to={to}")).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post;

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    #[tokio::test]
    async fn changes_follow_the_leader_once_and_report_refusals() {
        let leader = serve(
            Router::new().route("/cairn/v1/raft/learners", post(|| async { r#"{"ok":true,"id":7,"logIndex":3}"# })),
        )
        .await;
        let follower_body = format!(r#"{{"error":"not the leader","leader":1,"leaderAddress":"{leader}"}}"#);
        let follower = serve(Router::new().route(
            "/cairn/v1/raft/learners",
            post(move || {
                let b = follower_body.clone();
                async move { (StatusCode::CONFLICT, b) }
            }),
        ))
        .await;
        let refusing = serve(Router::new().route(
            "/cairn/v1/raft/remove",
            post(|| async { (StatusCode::BAD_REQUEST, r#"{"error":"would lose quorum"}"#) }),
        ))
        .await;
        let c = NodeClient::new(Duration::from_secs(2)).unwrap();
        assert_eq!(c.add_learner(&follower, "x:8848").await.unwrap(), Some(7), "409 is retried at the leader");
        match c.remove(&refusing, 3).await {
            Err(Error::NodeRefused { status: 400, body, .. }) => assert!(body.contains("would lose quorum")),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
        assert!(matches!(c.node_self(&closed).await, Err(Error::NodeRequest { .. })));
    }

    #[test]
    fn parses_the_documented_shapes() {
        let s: NodeSelf = serde_json::from_str(
            r#"{"id": 7, "clusterAddress": "h:9849", "httpAddress": "h:8848", "role": "follower", "term": 3,
                "leader": 5, "lastLogIndex": 10, "commitIndex": 10, "appliedIndex": 10}"#,
        )
        .unwrap();
        assert_eq!((s.id, s.role.as_str(), s.leader), (7, "follower", Some(5)));
        let s: NodeSelf = serde_json::from_str(r#"{"id": 7, "role": "learner", "term": 0, "leader": null}"#).unwrap();
        assert_eq!(s.leader, None);
        let m: RaftMembers = serde_json::from_str(
            r#"{"nodeId": 5, "leader": 5, "term": 3, "lastLogIndex": 10, "commitIndex": 10, "appliedIndex": 10,
                "members": [
                  {"id": 5, "address": "a:8848", "clusterAddress": "a:9849", "role": "leader", "matchedIndex": 10,
                   "lag": 0, "lastAckMs": 0, "healthy": true},
                  {"id": 7, "address": "b:8848", "clusterAddress": "b:9849", "role": "learner", "matchedIndex": null,
                   "lag": null, "lastAckMs": null, "healthy": null}]}"#,
        )
        .unwrap();
        assert_eq!(m.members.len(), 2);
        assert_eq!(m.members[1].lag, None);
        assert_eq!(m.members[0].healthy, Some(true));
    }
}
