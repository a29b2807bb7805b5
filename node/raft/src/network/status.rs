//! Mapping between gRPC status and openraft's network errors.

use std::time::Duration;

use openraft::RPCTypes;
use openraft::errors::NetworkError;
use openraft::errors::RPCError;
use openraft::errors::StreamingError;
use openraft::errors::Timeout;
use openraft::errors::Unreachable;
use tonic::Code;
use tonic::Status;

use crate::types::NodeId;
use crate::types::TypeConfig;

/// Who called whom, for error reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub(crate) from: NodeId,
    pub(crate) target: NodeId,
}

impl Route {
    /// A failed call. Deadline ⇒ timeout; transient transport hiccups ⇒ retry at once;
    /// everything else (peer down, wrong node, incompatible peer) ⇒ unreachable, so openraft
    /// backs off instead of hammering it.
    pub(crate) fn rpc_error(self, action: RPCTypes, ttl: Duration, status: Status) -> RPCError<TypeConfig> {
        match status.code() {
            Code::DeadlineExceeded => self.timeout(action, ttl),
            Code::Cancelled | Code::Aborted | Code::ResourceExhausted => RPCError::Network(NetworkError::new(&status)),
            _ => RPCError::Unreachable(Unreachable::new(&status)),
        }
    }

    pub(crate) fn timeout(self, action: RPCTypes, ttl: Duration) -> RPCError<TypeConfig> {
        RPCError::Timeout(Timeout { action, id: self.from, target: self.target, timeout: ttl })
    }

    pub(crate) fn streaming_error(self, action: RPCTypes, ttl: Duration, status: Status) -> StreamingError<TypeConfig> {
        self.rpc_error(action, ttl, status).into()
    }
}

/// A malformed payload from a peer (or a peer speaking another format version).
pub(crate) fn bad_payload(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("malformed raft payload: {e}"))
}

/// The local Raft core is gone.
pub(crate) fn stopped(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft node stopped: {e}"))
}
