//! Raft RPCs between peers over tonic gRPC (service `cairn.cluster.RaftService`).
//!
//! - [`client`]: openraft's `RaftNetworkFactory`/`RaftNetworkV2` — one lazily connected tonic
//!   `Channel` per peer address (from a shared pool), per-RPC deadlines from openraft's
//!   `RPCOption`, pipelined AppendEntries over a bidirectional stream, snapshots as a stream of
//!   chunks.
//! - [`server`]: the gRPC service a node mounts on its cluster port ([`raft_service`]).
//! - [`convert`]: wire ↔ domain conversions for the node-level messages.
//!
//! Identity check: every Raft RPC names the node id it is meant for in the `cairn-target-id`
//! header and the receiver refuses other ids, so a peer address now held by another node (a
//! rescheduled pod with a wiped volume, hence a new id) never receives the old node's traffic.
//! A client for this node's own id is never connected: it fails every call as unreachable.

pub mod client;
pub mod convert;
mod pool;
pub mod server;
mod status;

pub use client::NetworkFactory;
pub use client::PeerClient;
pub(crate) use pool::ChannelPool;
pub use server::RaftGrpcServer;
pub use server::raft_service;
pub use server::raft_service_with_shutdown;

/// Metadata header: the node id a Raft RPC is meant for.
pub const TARGET_HEADER: &str = "cairn-target-id";
/// Metadata header: the sender's node id.
pub const FROM_HEADER: &str = "cairn-from-id";
