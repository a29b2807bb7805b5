//! Writes (local or forwarded to the leader) and linearizable reads.

use std::time::Duration;
use std::time::Instant;

use cairn_proto::cluster::ReadIndexRequest;
use cairn_proto::cluster::read_index_reply;
use openraft::ReadPolicy;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::LinearizableReadError;
use openraft::errors::RaftError;
use openraft::metrics::WaitError;

use super::RaftNode;
use super::outcome::WriteOutcome;
use crate::error::Error;
use crate::error::Result;
use crate::metrics::RaftStats;
use crate::types::Command;
use crate::types::NodeId;
use crate::types::NodeInfo;

/// What one attempt came to.
enum Step<T> {
    Done(Result<T>),
    /// Try again (after a pause unless the leader changed): why.
    Retry(String),
}

const FIRST_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// Why a node that knows a leader's id but not its address cannot reach it.
const NOT_A_MEMBER: &str = "no leader address known: this node is not a member of the cluster yet";

impl RaftNode {
    /// Replicates `command` and returns the application's response once it is committed and
    /// applied (on the leader). On a follower the command is forwarded to the leader over gRPC.
    /// While no leader is known, or the leader changes, the call keeps trying for up to
    /// [`RaftConfig::write_timeout`](crate::RaftConfig::write_timeout).
    ///
    /// Delivery is at-least-once when a leader dies mid-call: a command forwarded to a leader
    /// that became unreachable is sent again to the next one, and the first may have been
    /// committed. Commands should be idempotent (Nacos' are: set, delete) or carry a request id.
    /// A command proposed by a leader that then lost leadership yields
    /// [`Error::Indeterminate`] instead of a retry.
    pub async fn write(&self, command: Vec<u8>) -> Result<Vec<u8>> {
        let limit = self.inner.config.max_message_bytes / 2;
        if command.len() > limit {
            return Err(Error::CommandTooLarge { bytes: command.len(), limit });
        }
        let started = Instant::now();
        let result = self.retrying("write", |node, leader, remaining| {
            let command = command.clone();
            async move { node.write_once(leader, command, remaining).await }
        });
        let result = result.await;
        let stats = &self.inner.stats;
        stats.write.observe(started.elapsed());
        if result.is_err() {
            RaftStats::add(&stats.write_errors, 1);
        }
        result
    }

    /// Returns once this node's state machine reflects every write committed before the call
    /// (ReadIndex): on the leader after confirming leadership with a quorum, on a follower after
    /// asking the leader for its commit index and applying up to it. Read the state machine
    /// ([`read`](Self::read)) afterwards.
    pub async fn ensure_linearizable(&self) -> Result<()> {
        self.retrying("linearizable read", |node, leader, remaining| async move {
            node.read_index_once(leader, remaining).await
        })
        .await
    }

    /// Runs `attempt` against the current leader until it is done, the time is up, or the node
    /// shuts down. Between attempts it waits for a metrics change (a new leader) or a short,
    /// growing pause.
    async fn retrying<T, F, Fut>(&self, action: &'static str, attempt: F) -> Result<T>
    where
        F: Fn(RaftNode, Option<(NodeId, NodeInfo)>, Duration) -> Fut,
        Fut: std::future::Future<Output = Step<T>>,
    {
        let limit = self.inner.config.write_timeout;
        let started = Instant::now();
        let mut metrics = self.inner.raft.metrics();
        let mut pause = FIRST_PAUSE;
        let mut last_reason = String::from("no leader known");
        loop {
            let remaining = limit.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                tracing::debug!(action, reason = %last_reason, "giving up");
                return Err(Error::NoLeader { waited: started.elapsed(), reason: last_reason });
            }
            let leader = self.leader();
            let before = leader.as_ref().map(|(id, _)| *id);
            match attempt(self.clone(), leader, remaining).await {
                Step::Done(result) => return result,
                Step::Retry(reason) => last_reason = reason,
            }
            if self.leader().map(|(id, _)| id) != before && self.leader().is_some() {
                continue; // redirected: try the new leader at once
            }
            let wait = pause.min(limit.saturating_sub(started.elapsed()));
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return Err(Error::Stopped("raft node is shutting down".into())),
                changed = metrics.changed() => if changed.is_err() {
                    return Err(Error::Stopped("raft node stopped".into()));
                },
                _ = tokio::time::sleep(wait) => {}
            }
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    async fn write_once(
        &self,
        leader: Option<(NodeId, NodeInfo)>,
        command: Vec<u8>,
        remaining: Duration,
    ) -> Step<Vec<u8>> {
        let Some((leader_id, leader_node)) = leader else { return Step::Retry("no leader known".into()) };
        if leader_id != self.id() && leader_node.cluster_addr.is_empty() {
            return Step::Retry(NOT_A_MEMBER.into());
        }
        if leader_id != self.id() {
            RaftStats::add(&self.inner.stats.writes_forwarded, 1);
            let forwarder = &self.inner.forwarder;
            let outcome = forwarder.forward(leader_id, leader_node.cluster_addr, command, remaining).await;
            return match outcome {
                // Not proposed, or not delivered: the next leader will do.
                WriteOutcome::NotLeader(_) => Step::Retry(format!("{leader_id} is not the leader")),
                WriteOutcome::Unavailable(why) => Step::Retry(why),
                other => Step::Done(finish(other)),
            };
        }
        // A leader that lost its quorum may never commit: do not wait past the deadline.
        let proposed = tokio::time::timeout(remaining, self.inner.raft.client_write(Command(command)));
        let Ok(result) = proposed.await else {
            return Step::Done(Err(Error::Indeterminate(format!("not committed within {remaining:?}"))));
        };
        match WriteOutcome::from_result(result) {
            WriteOutcome::NotLeader(_) => Step::Retry("leadership moved".into()),
            WriteOutcome::Unavailable(why) => Step::Done(Err(Error::Stopped(why))),
            other => Step::Done(finish(other)),
        }
    }

    async fn read_index_once(&self, leader: Option<(NodeId, NodeInfo)>, remaining: Duration) -> Step<()> {
        let Some((leader_id, leader_node)) = leader else { return Step::Retry("no leader known".into()) };
        if leader_id != self.id() && leader_node.cluster_addr.is_empty() {
            return Step::Retry(NOT_A_MEMBER.into());
        }
        if leader_id == self.id() {
            return match self.inner.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
                Ok(_) => Step::Done(Ok(())),
                Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(_))) => {
                    Step::Retry("leadership moved".into())
                }
                Err(RaftError::APIError(e)) => Step::Done(Err(Error::Linearizable(e.to_string()))),
                Err(RaftError::Fatal(f)) => Step::Done(Err(Error::Stopped(f.to_string()))),
            };
        }
        let mut client = match self.inner.pool.client(&leader_node.cluster_addr) {
            Ok(c) => c,
            Err(e) => return Step::Done(Err(e)),
        };
        let mut request = tonic::Request::new(ReadIndexRequest {});
        request.set_timeout(remaining);
        let index = match tokio::time::timeout(remaining, client.read_index(request)).await {
            Err(_) => return Step::Retry(format!("read index from {leader_id} timed out")),
            Ok(Err(status)) => return Step::Retry(format!("read index from {leader_id}: {status}")),
            Ok(Ok(reply)) => match reply.into_inner().outcome {
                Some(read_index_reply::Outcome::Index(i)) => i,
                Some(read_index_reply::Outcome::NotLeader(_)) | None => {
                    return Step::Retry(format!("{leader_id} is not the leader"));
                }
            },
        };
        let wait = self.inner.raft.wait(Some(remaining));
        match wait.applied_index_at_least(Some(index), "read index applied").await {
            Ok(_) => Step::Done(Ok(())),
            Err(WaitError::Timeout(after, _)) => {
                Step::Done(Err(Error::Timeout { action: "apply up to read index", after }))
            }
            Err(WaitError::ShuttingDown) => Step::Done(Err(Error::Stopped("raft node is shutting down".into()))),
        }
    }
}

/// The caller's result for a final outcome.
fn finish(outcome: WriteOutcome) -> Result<Vec<u8>> {
    match outcome {
        WriteOutcome::Applied(bytes) => Ok(bytes),
        WriteOutcome::Rejected(message) => Err(Error::Rejected(message)),
        WriteOutcome::Unknown(message) => Err(Error::Indeterminate(message)),
        WriteOutcome::Failed(e) => Err(e),
        WriteOutcome::NotLeader(leader) => Err(Error::NotLeader { leader: leader.map(|(id, _)| id) }),
        WriteOutcome::Unavailable(why) => Err(Error::Stopped(why)),
    }
}
