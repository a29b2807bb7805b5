//! Cairn registry node: a Nacos-compatible service registry and configuration center.
//!
//! Layers, top to bottom:
//! - [`node`]: assembly, lifecycle and shutdown;
//! - [`api`]: the edges — Nacos JSON shapes, gRPC handlers, HTTP v1 handlers, gRPC/UDP push;
//! - [`remote`]: the Nacos client gRPC transport (connections, setup, detection, acks);
//! - [`naming`]: the registry domain, free of wire formats;
//! - [`distro`]: AP replication of ephemeral instances between members;
//! - [`membership`]: who the cluster members are (static, file, DNS, Kubernetes) and their health;
//! - [`config`], [`metrics`], [`error`]: shared plumbing.
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod configs;
pub mod distro;
pub mod error;
pub mod membership;
pub mod metrics;
pub mod naming;
pub mod node;
pub mod persist;
pub mod raft_metrics;
pub mod remote;
pub mod replicate;
pub mod state;
pub mod tables;

pub use config::Config;
pub use error::{Error, Result};
pub use metrics::Metrics;
pub use node::Node;
