//! `RegistryCluster` status: what the operator observed and what it is doing. Recomputed on every
//! reconcile (no sticky phase); the one piece of memory is [`MembershipOperation`], the intent
//! recorded before a membership action so that a restarted operator resumes it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a registry cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegistryClusterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods of the cluster (the scale subresource's status replicas).
    #[serde(default)]
    pub replicas: i32,
    /// Pods that are ready: caught-up Raft members.
    #[serde(default)]
    pub ready_replicas: i32,
    /// `ready/desired` for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// Label selector of the cluster's pods (the scale subresource's selector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Pod name of the Raft leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Raft term the leader was seen in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// Raft members as the leader reports them, joined with their pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStatus>,
    /// The membership operation in progress, recorded before it acts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership_operation: Option<MembershipOperation>,
    /// StatefulSet revision new pods get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_revision: Option<String>,
    /// Pods still on an older revision.
    #[serde(default)]
    pub outdated_replicas: i32,
    /// One-word summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// `Available`, `Progressing`, `Degraded` (merged by type).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// One-word cluster summary, recomputed every reconcile.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// First members are being created.
    Creating,
    /// Membership matches the spec, every member is ready.
    Running,
    /// Members are being added or removed.
    Scaling,
    /// Pods are being replaced with a new template.
    Updating,
    /// Something needs attention (see the Degraded condition).
    Degraded,
    /// `spec.paused` is set.
    Paused,
}

/// A Raft member joined with its pod.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Pod name (empty when no pod has this member's address).
    pub name: String,
    /// Raft node id.
    pub node_id: u64,
    /// HTTP address of the member, as Raft knows it.
    pub address: String,
    /// Raft role.
    pub role: MemberRole,
    /// Whether the pod is ready.
    pub ready: bool,
    /// Leader's view: acknowledged a heartbeat recently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// Leader's view: log entries behind the leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
}

/// Raft role of a member.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum MemberRole {
    /// The leader.
    Leader,
    /// A voter that does not lead.
    Voter,
    /// A non-voting learner.
    Learner,
}

/// A membership operation, recorded in status before the operator acts so that a restart resumes it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MembershipOperation {
    /// What is being done.
    pub kind: OperationKind,
    /// The pod concerned.
    pub pod: String,
    /// Its StatefulSet ordinal.
    pub ordinal: i32,
    /// Raft id of the member concerned (when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<u64>,
    /// `ReplaceMember`: the stale Raft id registered at the pod's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_node_id: Option<u64>,
    /// `RollPod`: uid of the pod to replace (a different uid means it has been re-created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// `RollPod`: the StatefulSet revision the pod is rolled to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_revision: Option<String>,
    /// When the operation was recorded.
    pub started_at: Time,
    /// The last step taken or awaited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// Kind of membership operation.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum OperationKind {
    /// Scale up by one: grow the StatefulSet, add the pod's node as learner, promote it.
    AddMember,
    /// Scale down by one: transfer leadership away, remove the voter, confirm, shrink the StatefulSet.
    RemoveMember,
    /// Replace one outdated pod: transfer leadership away if it leads, delete it, wait until the new pod is a
    /// ready, caught-up member.
    RollPod,
    /// A pod came back with an empty disk (new Raft id at a member's address): remove the stale id, add the new
    /// node as learner, promote it.
    ReplaceMember,
}

impl OperationKind {
    /// Stable name for metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AddMember => "AddMember",
            Self::RemoveMember => "RemoveMember",
            Self::RollPod => "RollPod",
            Self::ReplaceMember => "ReplaceMember",
        }
    }
}

/// Condition types.
pub mod condition {
    /// A quorum of voters is reachable and a leader is known.
    pub const AVAILABLE: &str = "Available";
    /// Membership or pods are being changed toward the spec.
    pub const PROGRESSING: &str = "Progressing";
    /// Something is wrong that the operator cannot fix by itself right now.
    pub const DEGRADED: &str = "Degraded";
}
