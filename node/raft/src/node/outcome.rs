//! What proposing a command came to, shared by the local write path, the `Forward` handler on
//! the leader and the forwarder on followers.

use cairn_proto::cluster::ForwardOutcome;
use cairn_proto::cluster::forward_outcome::Outcome;
use openraft::errors::ClientWriteError;
use openraft::errors::Fatal;
use openraft::errors::RaftError;
use openraft::raft::ClientWriteResponse;
use openraft::raft::WriteResult;

use crate::network::convert;
use crate::types::NodeId;
use crate::types::NodeInfo;
use crate::types::Reply;
use crate::types::TypeConfig;

/// The outcome of proposing one command.
#[derive(Debug)]
pub(crate) enum WriteOutcome {
    /// Committed and applied: the application's response.
    Applied(Vec<u8>),
    /// Committed and applied; the application rejected it.
    Rejected(String),
    /// Not proposed: the receiver is not the leader (the leader it knows of, if any).
    NotLeader(Option<(NodeId, NodeInfo)>),
    /// Proposed, then the leadership changed (or the answer was lost): may or may not be committed.
    Unknown(String),
    /// Not delivered, or the receiver's Raft stopped before proposing: another leader will do.
    Unavailable(String),
    /// Cannot succeed (an error that cannot happen for a plain command, a broken peer).
    Failed(crate::Error),
}

impl WriteOutcome {
    pub(crate) fn from_result(
        result: Result<ClientWriteResponse<TypeConfig>, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>,
    ) -> Self {
        match result {
            Ok(resp) => Self::from_reply(resp.data),
            Err(RaftError::APIError(e)) => Self::from_error(e),
            Err(RaftError::Fatal(f)) => Self::stopped(f),
        }
    }

    /// One item of `client_write_many`.
    pub(crate) fn from_write_result(result: Result<WriteResult<TypeConfig>, Fatal<TypeConfig>>) -> Self {
        match result {
            Ok(Ok(resp)) => Self::from_reply(resp.response),
            Ok(Err(e)) => Self::from_error(e),
            Err(f) => Self::stopped(f),
        }
    }

    fn from_reply(reply: Reply) -> Self {
        match reply {
            Reply::Applied(bytes) => WriteOutcome::Applied(bytes),
            Reply::Rejected(message) => WriteOutcome::Rejected(message),
        }
    }

    fn from_error(e: ClientWriteError<TypeConfig>) -> Self {
        match e {
            ClientWriteError::ForwardToLeader(f) => WriteOutcome::NotLeader(f.leader_id.zip(f.leader_node)),
            ClientWriteError::LogEntryDiscarded(f) => {
                WriteOutcome::Unknown(format!("leader changed after the command was proposed ({f})"))
            }
            other => WriteOutcome::Failed(crate::Error::Membership(other.to_string())),
        }
    }

    pub(crate) fn stopped(f: impl std::fmt::Display) -> Self {
        WriteOutcome::Unavailable(format!("raft stopped: {f}"))
    }

    /// The wire form, as the leader answers a forwarded command.
    pub(crate) fn into_wire(self) -> ForwardOutcome {
        let outcome = match self {
            WriteOutcome::Applied(bytes) => Outcome::Response(bytes),
            WriteOutcome::Rejected(message) => Outcome::Rejected(message),
            WriteOutcome::NotLeader(leader) => Outcome::NotLeader(convert::not_leader(leader)),
            WriteOutcome::Unknown(message) => Outcome::Unknown(message),
            // The follower retries on another leader either way.
            WriteOutcome::Unavailable(_) | WriteOutcome::Failed(_) => Outcome::NotLeader(convert::not_leader(None)),
        };
        ForwardOutcome { outcome: Some(outcome) }
    }

    /// Back from the wire, as the follower reads the leader's answer.
    pub(crate) fn from_wire(o: ForwardOutcome) -> Self {
        match o.outcome {
            Some(Outcome::Response(bytes)) => WriteOutcome::Applied(bytes),
            Some(Outcome::Rejected(message)) => WriteOutcome::Rejected(message),
            Some(Outcome::NotLeader(n)) => WriteOutcome::NotLeader(convert::leader_of(&n)),
            Some(Outcome::Unknown(message)) => WriteOutcome::Unknown(message),
            None => WriteOutcome::Unknown("empty forward outcome".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_survive_the_wire() {
        let cases = [
            WriteOutcome::Applied(b"r".to_vec()),
            WriteOutcome::Rejected("no".into()),
            WriteOutcome::NotLeader(Some((3, NodeInfo::new("c:1")))),
            WriteOutcome::NotLeader(None),
            WriteOutcome::Unknown("lost".into()),
        ];
        for c in cases {
            let text = format!("{c:?}");
            assert_eq!(format!("{:?}", WriteOutcome::from_wire(c.into_wire())), text);
        }
        let stopped = WriteOutcome::stopped("bye").into_wire();
        assert!(matches!(WriteOutcome::from_wire(stopped), WriteOutcome::NotLeader(None)));
    }
}
