//! What a local `client_write` came to, shared by [`RaftNode::write`](crate::RaftNode::write)
//! and the `Forward` RPC handler.

use openraft::errors::ClientWriteError;
use openraft::errors::RaftError;
use openraft::raft::ClientWriteResponse;

use crate::types::NodeId;
use crate::types::NodeInfo;
use crate::types::Reply;
use crate::types::TypeConfig;

/// The outcome of proposing a command to the local Raft.
#[derive(Debug)]
pub(crate) enum WriteOutcome {
    /// Committed and applied: the application's response.
    Applied(Vec<u8>),
    /// Committed and applied; the application rejected it.
    Rejected(String),
    /// Not proposed: this node is not the leader (the leader it knows of, if any).
    NotLeader(Option<(NodeId, NodeInfo)>),
    /// Proposed, then the leadership changed: may or may not be committed.
    Unknown(String),
    /// The Raft core stopped, or an error that cannot happen for a plain command.
    Failed(String),
}

impl WriteOutcome {
    pub(crate) fn from_result(
        result: Result<ClientWriteResponse<TypeConfig>, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>,
    ) -> Self {
        match result {
            Ok(resp) => match resp.data {
                Reply::Applied(bytes) => WriteOutcome::Applied(bytes),
                Reply::Rejected(message) => WriteOutcome::Rejected(message),
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                WriteOutcome::NotLeader(f.leader_id.zip(f.leader_node))
            }
            Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(f))) => {
                WriteOutcome::Unknown(format!("leader changed after the command was proposed ({f})"))
            }
            Err(RaftError::APIError(e)) => WriteOutcome::Failed(e.to_string()),
            Err(RaftError::Fatal(f)) => WriteOutcome::Failed(format!("raft stopped: {f}")),
        }
    }
}
