//! Cairn's Raft core: the CP write path for config, persistent instances, service metadata and
//! users. [openraft] `0.10.0-alpha.37` for consensus, [redb] for storage, tonic gRPC on the
//! cluster port (P+1001) between peers. Standalone is a one-member cluster: same code path.
//!
//! # Pieces
//!
//! - [`RaftNode`]: the facade — [`start`](RaftNode::start), [`write`](RaftNode::write) (local on
//!   the leader, forwarded from followers), [`ensure_linearizable`](RaftNode::ensure_linearizable),
//!   [`read`](RaftNode::read), [`initialize`](RaftNode::initialize), membership pass-throughs,
//!   [`metrics`](RaftNode::metrics), [`shutdown`](RaftNode::shutdown).
//! - [`Application`]: what the node plugs in — applies opaque commands inside the state
//!   machine's redb transaction, snapshots and restores its tables.
//! - [`store`]: the log ([`store::LogStore`]) and state machine ([`store::StateMachineStore`]),
//!   with the on-disk layout and durability argument.
//! - [`network`]: openraft's network over gRPC, and [`raft_service`] for the node's cluster server.
//! - [`NodeIdentity`]: the random, persistent, never-reused node id.
//! - [`codec`]: postcard encoding of openraft values (and why postcard).
//!
//! # Using it
//!
//! ```no_run
//! # async fn run(app: std::sync::Arc<dyn cairn_raft::Application>) -> cairn_raft::Result<()> {
//! use cairn_raft::{NodeIdentity, NodeInfo, RaftConfig, RaftNode};
//! let data_dir = std::path::Path::new("./data");
//! let id = NodeIdentity::load_or_create(data_dir)?.id();
//! let node = RaftNode::start(RaftConfig::new(data_dir, id, "10.0.0.1:9849"), app).await?;
//! // the node mounts cairn_raft::raft_service(&node) on its cluster gRPC server, then:
//! node.initialize([(id, NodeInfo::new("10.0.0.1:9849"))].into()).await?; // standalone
//! let response = node.write(b"command".to_vec()).await?;
//! # let _ = response; Ok(()) }
//! ```
//!
//! # Guarantees and choices
//!
//! - The log fsyncs before openraft hears of an append (`IOFlushed` after the redb commit); the
//!   state machine applies a batch in one transaction and replies to every entry.
//! - A node never connects to itself, and every RPC carries the target node id, refused by any
//!   other node (see [`network`]).
//! - Errors are one enum, [`Error`]; malformed peer input is a gRPC status, never a panic.
//!   (openraft itself panics on a snapshot inconsistent with the committed log; such input is
//!   checked before it reaches openraft where that is possible.)
#![forbid(unsafe_code)]

pub mod app;
pub mod codec;
pub mod config;
pub mod error;
pub mod identity;
pub mod metrics;
pub mod network;
mod node;
pub mod store;
pub mod types;

pub use app::AppError;
pub use app::Application;
pub use config::RaftConfig;
pub use config::SnapshotPolicy;
pub use error::Error;
pub use error::Result;
pub use identity::NodeIdentity;
pub use metrics::HistogramSnapshot;
pub use metrics::NodeRole;
pub use metrics::RaftNodeMetrics;
pub use network::convert::PeerStatus;
pub use network::raft_service;
pub use network::raft_service_with_shutdown;
pub use node::RaftNode;
/// The openraft version this crate is built on, for callers that need its types (metrics,
/// `WatchReceiver`) without a second, possibly different, dependency.
pub use openraft;
pub use types::NodeId;
pub use types::NodeInfo;
