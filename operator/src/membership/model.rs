//! What the planner sees and what it decides.

use crate::crd::{MemberRole, MembershipOperation};

/// One pod of the cluster, joined with its node's own view.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PodView {
    /// Pod name.
    pub name: String,
    /// StatefulSet ordinal.
    pub ordinal: i32,
    /// Pod uid.
    pub uid: String,
    /// Ready condition is True.
    pub ready: bool,
    /// Has a deletionTimestamp.
    pub terminating: bool,
    /// `controller-revision-hash` label.
    pub revision: Option<String>,
    /// The member address the operator computes for this pod (`None` in IP mode before the pod has an IP).
    pub address: Option<String>,
    /// Raft id the node reports about itself (`GET /cairn/v1/raft/self`); `None` when it does not answer.
    pub node_id: Option<u64>,
}

/// A Raft member as the leader reports it, joined with a pod ordinal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftMember {
    /// Raft id.
    pub id: u64,
    /// HTTP address.
    pub address: String,
    /// Role.
    pub role: MemberRole,
    /// Entries behind the leader (leader's view).
    pub lag: Option<u64>,
    /// Acknowledged a heartbeat recently (leader's view).
    pub healthy: Option<bool>,
    /// Ordinal of the pod at this member's address (or reporting this id); `None` for foreign members.
    pub ordinal: Option<i32>,
}

impl RaftMember {
    /// Voter (leader included).
    pub fn is_voter(&self) -> bool {
        matches!(self.role, MemberRole::Leader | MemberRole::Voter)
    }
    /// Reachable by the leader (the leader itself always is).
    pub fn is_healthy(&self) -> bool {
        self.role == MemberRole::Leader || self.healthy == Some(true)
    }
}

/// The Raft configuration as the current leader reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftView {
    /// Leader id.
    pub leader: u64,
    /// Term.
    pub term: u64,
    /// Voters and learners.
    pub members: Vec<RaftMember>,
}

impl RaftView {
    /// Member by id.
    pub fn member(&self, id: u64) -> Option<&RaftMember> {
        self.members.iter().find(|m| m.id == id)
    }
    /// Member registered at an address.
    pub fn member_at(&self, address: &str) -> Option<&RaftMember> {
        self.members.iter().find(|m| m.address == address)
    }
    /// Member belonging to a pod ordinal.
    pub fn member_of(&self, ordinal: i32) -> Option<&RaftMember> {
        self.members.iter().find(|m| m.ordinal == Some(ordinal))
    }
    /// Voter count.
    pub fn voters(&self) -> usize {
        self.members.iter().filter(|m| m.is_voter()).count()
    }
}

/// The StatefulSet's state that matters for planning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StsView {
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.updateRevision`: the revision new pods get.
    pub update_revision: Option<String>,
    /// The StatefulSet controller has seen the latest spec (`status.observedGeneration ≥ generation`).
    pub up_to_date: bool,
}

/// Everything observed in one reconcile.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Observed {
    /// The cluster's pods, by ordinal.
    pub pods: Vec<PodView>,
    /// The StatefulSet, if it exists.
    pub sts: Option<StsView>,
    /// The leader's view, if a leader answered.
    pub raft: Option<RaftView>,
}

impl Observed {
    /// Pod by ordinal.
    pub fn pod(&self, ordinal: i32) -> Option<&PodView> {
        self.pods.iter().find(|p| p.ordinal == ordinal)
    }
}

/// One thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The cluster matches the spec.
    Idle,
    /// Waiting for something (a pod to start, a learner to catch up, a leader to appear).
    Wait(String),
    /// Set the StatefulSet's `spec.replicas`.
    SetReplicas(i32),
    /// Add the node at this HTTP address as a learner (via the leader).
    AddLearner {
        /// HTTP address of the new node.
        address: String,
    },
    /// Promote a caught-up learner to voter.
    Promote {
        /// Raft id.
        id: u64,
    },
    /// Hand leadership to another voter.
    TransferLeader {
        /// Current leader.
        from: u64,
        /// New leader.
        to: u64,
    },
    /// Remove a member (via the leader).
    Remove {
        /// Raft id.
        id: u64,
    },
    /// Delete a pod (the StatefulSet re-creates it from the new template).
    DeletePod {
        /// Pod name.
        name: String,
        /// Pod uid (precondition: only this incarnation is deleted).
        uid: String,
    },
}

impl Action {
    /// Stable name for events, metrics and `membershipOperation.step`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle => "Idle",
            Self::Wait(_) => "Wait",
            Self::SetReplicas(_) => "SetReplicas",
            Self::AddLearner { .. } => "AddLearner",
            Self::Promote { .. } => "Promote",
            Self::TransferLeader { .. } => "TransferLeader",
            Self::Remove { .. } => "RemoveMember",
            Self::DeletePod { .. } => "DeletePod",
        }
    }
    /// Whether this action changes something (as opposed to idling or waiting).
    pub fn mutates(&self) -> bool {
        !matches!(self, Self::Idle | Self::Wait(_))
    }
}

/// The planner's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The intent status must hold before the action runs (`None`: no operation in progress).
    pub intent: Option<MembershipOperation>,
    /// What to do now.
    pub action: Action,
}
