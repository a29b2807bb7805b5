//! Operator tests against a real kube-apiserver + kube-controller-manager (`cairn-kube-testkit`).
//! Without the tools each test prints `SKIPPED:` and passes, unless `CAIRN_REQUIRE_ALL=1`.
//!
//! - `api`: schema validation by the API server, every owned object, spec changes, pause, the
//!   scale subresource, ServiceMonitor on/off, deletion with PVC retention — the operator running
//!   under exactly the RBAC rules the README documents.
//! - `resume`: status and conditions as pods become ready, with scripted node admin APIs; the
//!   operator stopped mid-operation and a second replica (leader election) resuming from the intent.
//! - `membership`: real `cairn-node` processes for the pods (fake kubelet): 3 → 5 → 3 and a rolling
//!   update with the leader last, under continuous config writes.

mod api;
mod fake_nodes;
mod membership;
mod node_pods;
mod resume;
mod support;
