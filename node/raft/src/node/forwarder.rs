//! The follower side of write forwarding: group commit over gRPC.
//!
//! Writes bound for the leader queue up here; a task sends whatever queued while earlier batches
//! were in flight as one `Forward` call (at most [`MAX_IN_FLIGHT`] calls at once), and the leader
//! proposes the batch with one `client_write_many`. Under load this turns N small RPCs into a
//! few large ones, the way openraft batches appends on the leader.

use std::time::Duration;

use cairn_proto::cluster::ForwardRequest;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use super::outcome::WriteOutcome;
use crate::error::Error;
use crate::network::ChannelPool;
use crate::types::NodeId;

/// Forward calls in flight at once.
pub(crate) const MAX_IN_FLIGHT: usize = 4;
/// Commands in one call, at most.
const MAX_BATCH: usize = 1024;

/// One write waiting to be forwarded.
struct Pending {
    leader: NodeId,
    addr: String,
    command: Vec<u8>,
    timeout: Duration,
    reply: oneshot::Sender<WriteOutcome>,
}

/// Queues writes for the leader and batches them; stopped by the node's cancellation token.
pub(crate) struct Forwarder {
    tx: mpsc::Sender<Pending>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Forwarder {
    /// Starts the batching task. `max_batch_bytes` bounds the commands of one call.
    pub(crate) fn spawn(from: NodeId, pool: ChannelPool, max_batch_bytes: usize, cancel: CancellationToken) -> Self {
        let (tx, rx) = mpsc::channel(MAX_BATCH * MAX_IN_FLIGHT);
        let task = tokio::spawn(run(rx, Sender { from, pool }, max_batch_bytes, cancel));
        Self { tx, task: Mutex::new(Some(task)) }
    }

    /// Forwards `command` to `leader` at `addr`, waiting at most `timeout` for the outcome.
    pub(crate) async fn forward(
        &self,
        leader: NodeId,
        addr: String,
        command: Vec<u8>,
        timeout: Duration,
    ) -> WriteOutcome {
        let (reply, rx) = oneshot::channel();
        let pending = Pending { leader, addr, command, timeout, reply };
        if self.tx.send(pending).await.is_err() {
            return WriteOutcome::Unavailable("forwarder stopped".into());
        }
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => WriteOutcome::Unknown(format!("no answer from leader {leader} within {timeout:?}")),
            Ok(Err(_)) => WriteOutcome::Unknown("forwarding interrupted by shutdown".into()),
            Ok(Ok(outcome)) => outcome,
        }
    }

    /// Waits for the task to end (after the cancellation token fired).
    pub(crate) async fn join(&self) {
        let task = self.task.lock().take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "write forwarder task failed");
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Pending>, sender: Sender, max_batch_bytes: usize, cancel: CancellationToken) {
    let mut in_flight = JoinSet::new();
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => continue,
            next = rx.recv() => match next {
                Some(p) => p,
                None => break,
            },
        };
        let mut bytes = first.command.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < max_batch_bytes {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.command.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        for group in by_leader(batch) {
            while in_flight.len() >= MAX_IN_FLIGHT {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = in_flight.join_next() => {}
                }
            }
            let sender = sender.clone();
            in_flight.spawn(async move { sender.send(group).await });
        }
    }
    // Unanswered writers see their reply channel close: "interrupted by shutdown".
    in_flight.shutdown().await;
}

/// Splits a batch by target leader (more than one only while leadership moves).
fn by_leader(batch: Vec<Pending>) -> Vec<Vec<Pending>> {
    let mut groups: Vec<Vec<Pending>> = Vec::new();
    for p in batch {
        match groups.iter_mut().find(|g| g[0].leader == p.leader && g[0].addr == p.addr) {
            Some(g) => g.push(p),
            None => groups.push(vec![p]),
        }
    }
    groups
}

#[derive(Clone)]
struct Sender {
    from: NodeId,
    pool: ChannelPool,
}

impl Sender {
    /// Sends one group as one `Forward` call and answers every writer in it.
    async fn send(&self, mut group: Vec<Pending>) {
        let (leader, addr) = (group[0].leader, group[0].addr.clone());
        let timeout = group.iter().map(|p| p.timeout).max().unwrap_or_default();
        let commands: Vec<Vec<u8>> = group.iter_mut().map(|p| std::mem::take(&mut p.command)).collect();
        let each = |group: Vec<Pending>, outcome: &dyn Fn() -> WriteOutcome| {
            for p in group {
                let _ = p.reply.send(outcome());
            }
        };
        let mut client = match self.pool.client(&addr) {
            Ok(c) => c,
            Err(e) => {
                let message = e.to_string();
                return each(group, &|| {
                    WriteOutcome::Failed(Error::InvalidAddress { addr: addr.clone(), reason: message.clone() })
                });
            }
        };
        let mut request = tonic::Request::new(ForwardRequest { from: self.from, commands });
        request.set_timeout(timeout);
        let reply = match tokio::time::timeout(timeout, client.forward(request)).await {
            Err(_) => return each(group, &|| WriteOutcome::Unknown(format!("forward to {leader} timed out"))),
            Ok(Err(status)) => {
                let message = format!("forward to node {leader} at {addr}: {status}");
                return match status.code() {
                    // Not delivered, or the leader's Raft stopped before proposing.
                    Code::Unavailable => each(group, &|| WriteOutcome::Unavailable(message.clone())),
                    Code::Aborted | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                        each(group, &|| WriteOutcome::Unknown(message.clone()))
                    }
                    _ => each(group, &|| WriteOutcome::Failed(Error::Indeterminate(message.clone()))),
                };
            }
            Ok(Ok(reply)) => reply.into_inner(),
        };
        if reply.outcomes.len() != group.len() {
            let message = format!("leader {leader} answered {} of {} commands", reply.outcomes.len(), group.len());
            return each(group, &|| WriteOutcome::Unknown(message.clone()));
        }
        for (p, outcome) in group.into_iter().zip(reply.outcomes) {
            let _ = p.reply.send(WriteOutcome::from_wire(outcome));
        }
    }
}
