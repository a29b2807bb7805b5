//! Step 4 of a reconcile: Raft membership, one member at a time.
//!
//! [`plan`] is a pure function from the spec, the observed pods, StatefulSet and Raft view, and the
//! intent recorded in status, to the next [`Plan`]: the intent to record (before acting) and one
//! [`Action`]. [`NodeClient`] talks to the nodes' admin API; [`execute`] carries an action out.

mod client;
mod executor;
mod model;
mod planner;

pub use client::{NodeClient, NodeSelf, RaftMembers, RaftMembersEntry};
pub use executor::{ActionOutcome, Executor, execute};
pub use model::{Action, Observed, Plan, PodView, RaftMember, RaftView, StsView};
pub use planner::{PROMOTE_LAG, PlanInput, plan};
