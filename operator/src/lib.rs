//! `cairn-operator`: runs Cairn registry clusters on Kubernetes.
//!
//! A `RegistryCluster` ([`crd`]) is reconciled in steps: read → [`validate`] → [`build`] the desired
//! objects (pure functions) → [`apply`] them with server-side apply in a fixed order → plan and
//! execute one [`membership`] step through the nodes' admin API → write [`status`].
//! [`controller`] wires the steps into a kube-runtime controller, [`lease`] elects one active
//! replica, [`metrics`] and [`server`] expose Prometheus metrics and health.

#![forbid(unsafe_code)]

pub mod apply;
pub mod build;
pub mod config;
pub mod controller;
pub mod crd;
mod error;
pub mod lease;
pub mod membership;
pub mod metrics;
pub mod names;
pub mod observe;
pub mod rbac;
pub mod server;
pub mod status;
pub mod validate;

pub use config::{Addressing, OperatorConfig};
pub use controller::run;
pub use error::{Error, Result};
