//! The membership planner: a pure function from (spec, observed pods, StatefulSet, Raft view,
//! recorded intent) to the next step.
//!
//! Without an intent it looks, in this order, for: a pod whose node came back with a new Raft id
//! while its address is still registered under the old one (`ReplaceMember`); members or
//! StatefulSet ordinals above `spec.replicas` (`RemoveMember`, highest ordinal first); ordinals
//! below `spec.replicas` that are not voters (`AddMember`, lowest first); outdated pods
//! (`RollPod`: not-ready first, then followers, the leader last). With an intent it continues that
//! operation, checking live state at every step so that repeating a step is harmless:
//!
//! - `AddMember`: StatefulSet to ordinal+1 → node answers → learner → promoted when caught up.
//! - `RemoveMember`: leadership transferred away → removed via the leader → gone from the leader's
//!   member list → StatefulSet lowered to the ordinal.
//! - `RollPod`: leadership transferred away → pod deleted (only while the other voters are healthy
//!   and the other pods ready) → re-created pod ready, voter, caught up.
//! - `ReplaceMember`: stale id removed → new id added as learner → promoted.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::model::{Action, Observed, Plan, PodView, RaftMember, RaftView, StsView};
use crate::crd::{MembershipOperation, OperationKind, UpdateStrategyType};
use crate::names::ClusterNames;

/// A learner (or transfer target) at most this many entries behind the leader is caught up (the
/// node's own limit for promotion and leadership transfer).
pub const PROMOTE_LAG: u64 = 1_000;

/// Planner input.
#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    /// `spec.replicas`.
    pub desired_replicas: i32,
    /// `spec.updateStrategy.type`.
    pub strategy: UpdateStrategyType,
    /// Names (pod names of ordinals).
    pub names: &'a ClusterNames,
    /// What was observed.
    pub observed: &'a Observed,
    /// `status.membershipOperation`.
    pub intent: Option<&'a MembershipOperation>,
    /// Time for new intents' `startedAt`.
    pub now: Timestamp,
}

/// Decides the next step.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let keep = |action| Plan { intent: input.intent.cloned(), action };
    let Some(sts) = &input.observed.sts else {
        return keep(Action::Wait("the StatefulSet does not exist yet".into()));
    };
    let Some(raft) = &input.observed.raft else {
        return keep(Action::Wait("no Raft leader answers (cluster bootstrapping, or quorum lost)".into()));
    };
    let p = Planner { input, sts, raft };
    match input.intent {
        Some(op) => p.resume(op.clone(), 0),
        None => p.start(0),
    }
}

struct Planner<'a, 'b> {
    input: &'a PlanInput<'b>,
    sts: &'a StsView,
    raft: &'a RaftView,
}

fn act(op: MembershipOperation, action: Action) -> Plan {
    let mut op = op;
    op.step = Some(match &action {
        Action::Wait(why) => format!("Wait: {why}"),
        a => a.name().to_owned(),
    });
    Plan { intent: Some(op), action }
}

impl Planner<'_, '_> {
    fn obs(&self) -> &Observed {
        self.input.observed
    }

    fn desired(&self) -> i32 {
        self.input.desired_replicas
    }

    fn new_op(&self, kind: OperationKind, ordinal: i32) -> MembershipOperation {
        MembershipOperation {
            kind,
            pod: self.input.names.pod(ordinal),
            ordinal,
            node_id: None,
            previous_node_id: None,
            pod_uid: None,
            target_revision: None,
            started_at: Time(self.input.now),
            step: None,
        }
    }

    /// The operation is complete (or moot): clear the intent and, once per plan, look for the next one.
    fn finish(&self, depth: u8, why: &str) -> Plan {
        if depth == 0 {
            return self.start(depth + 1);
        }
        Plan { intent: None, action: Action::Wait(why.to_owned()) }
    }

    fn resume(&self, op: MembershipOperation, depth: u8) -> Plan {
        match op.kind {
            OperationKind::AddMember => self.add(op, depth),
            OperationKind::RemoveMember => self.remove(op, depth),
            OperationKind::RollPod => self.roll(op, depth),
            OperationKind::ReplaceMember => self.replace(op, depth),
        }
    }

    fn start(&self, depth: u8) -> Plan {
        let obs = self.obs();
        let in_range = |p: &&PodView| p.ordinal < self.sts.replicas && !p.terminating;
        // 1. A node with a new identity at an address Raft knows under an old one.
        for pod in obs.pods.iter().filter(in_range) {
            if let (Some(addr), Some(id)) = (&pod.address, pod.node_id)
                && let Some(stale) = self.raft.member_at(addr)
                && stale.id != id
                && self.raft.member(id).is_none()
                && pod.ordinal < self.desired()
            {
                let mut op = self.new_op(OperationKind::ReplaceMember, pod.ordinal);
                op.node_id = Some(id);
                op.previous_node_id = Some(stale.id);
                return self.replace(op, depth);
            }
        }
        // 2. Scale down, highest ordinal first.
        let highest_member = self.raft.members.iter().filter_map(|m| m.ordinal).max();
        let highest = highest_member.unwrap_or(-1).max(self.sts.replicas - 1);
        if highest >= self.desired() {
            let mut op = self.new_op(OperationKind::RemoveMember, highest);
            op.node_id = self.raft.member_of(highest).map(|m| m.id);
            return self.remove(op, depth);
        }
        // 3. Scale up (or finish a learner), lowest ordinal first.
        for k in 0..self.desired() {
            if !self.raft.member_of(k).is_some_and(RaftMember::is_voter) {
                let mut op = self.new_op(OperationKind::AddMember, k);
                op.node_id = self.raft.member_of(k).map(|m| m.id);
                return self.add(op, depth);
            }
        }
        // 4. Roll outdated pods.
        if self.input.strategy == UpdateStrategyType::QuorumAware
            && let Some(plan) = self.start_roll(depth)
        {
            return plan;
        }
        Plan { intent: None, action: Action::Idle }
    }

    fn add(&self, mut op: MembershipOperation, depth: u8) -> Plan {
        let k = op.ordinal;
        if k >= self.desired() {
            return self.finish(depth, "scale-up target no longer wanted");
        }
        if self.sts.replicas < k + 1 {
            return act(op, Action::SetReplicas(k + 1));
        }
        let Some(pod) = self.obs().pod(k).filter(|p| !p.terminating) else {
            return act(op, Action::Wait(format!("waiting for pod {} to be created", self.input.names.pod(k))));
        };
        let (Some(id), Some(addr)) = (pod.node_id, pod.address.clone()) else {
            return act(op, Action::Wait(format!("waiting for the node in pod {} to answer", pod.name)));
        };
        op.node_id = Some(id);
        match self.raft.member(id) {
            Some(m) if m.is_voter() => self.finish(depth, "member added"),
            Some(m) => {
                if caught_up(m) {
                    act(op, Action::Promote { id })
                } else {
                    act(op, Action::Wait(format!("learner {id} ({}) is catching up", pod.name)))
                }
            }
            None => match self.raft.member_at(&addr) {
                Some(stale) if stale.id == self.raft.leader => {
                    act(op, Action::Wait(format!("address {addr} is registered to the leader under another id")))
                }
                Some(stale) => act(op, Action::Remove { id: stale.id }),
                None => act(op, Action::AddLearner { address: addr }),
            },
        }
    }

    fn remove(&self, op: MembershipOperation, depth: u8) -> Plan {
        let k = op.ordinal;
        let member = op.node_id.and_then(|id| self.raft.member(id)).or_else(|| self.raft.member_of(k));
        if k < self.desired() {
            return self.finish(depth, "scale-down target no longer wanted");
        }
        if let Some(m) = member {
            if m.id == self.raft.leader {
                return match self.transfer_target(m.id, None) {
                    Some(to) => act(op, Action::TransferLeader { from: m.id, to }),
                    None => act(op, Action::Wait("no healthy, caught-up voter to take over leadership".into())),
                };
            }
            return act(op, Action::Remove { id: m.id });
        }
        if self.sts.replicas > k {
            if self.sts.replicas == k + 1 {
                return act(op, Action::SetReplicas(k));
            }
            return self.finish(depth, "a higher ordinal must go first");
        }
        self.finish(depth, "member removed")
    }

    fn start_roll(&self, depth: u8) -> Option<Plan> {
        let rev = self.sts.update_revision.as_deref()?;
        let outdated: Vec<&PodView> = self
            .obs()
            .pods
            .iter()
            .filter(|p| p.ordinal < self.sts.replicas && !p.terminating)
            .filter(|p| p.revision.as_deref().is_some_and(|r| r != rev))
            .collect();
        if outdated.is_empty() {
            return None;
        }
        if !self.sts.up_to_date {
            return Some(Plan {
                intent: None,
                action: Action::Wait("the StatefulSet controller has not observed the latest spec".into()),
            });
        }
        let is_leader = |p: &PodView| self.raft.member_of(p.ordinal).is_some_and(|m| m.id == self.raft.leader);
        // Not-ready pods first, then followers, the leader last; highest ordinal first within a group.
        let pick = outdated.iter().copied().max_by_key(|p| (!p.ready, !is_leader(p), p.ordinal))?;
        let mut op = self.new_op(OperationKind::RollPod, pick.ordinal);
        op.node_id = self.raft.member_of(pick.ordinal).map(|m| m.id).or(pick.node_id);
        op.pod_uid = Some(pick.uid.clone());
        op.target_revision = Some(rev.to_owned());
        Some(self.roll(op, depth))
    }

    fn roll(&self, op: MembershipOperation, depth: u8) -> Plan {
        let k = op.ordinal;
        let Some(pod) = self.obs().pod(k) else {
            let why = format!("waiting for the StatefulSet to re-create pod {}", op.pod);
            return act(op, Action::Wait(why));
        };
        let old = op.pod_uid.as_deref() == Some(pod.uid.as_str());
        if old {
            if pod.terminating {
                return act(op, Action::Wait(format!("pod {} is terminating", pod.name)));
            }
            if k >= self.desired() || k >= self.sts.replicas {
                return self.finish(depth, "pod is being scaled away");
            }
            let member = op.node_id.and_then(|id| self.raft.member(id)).or_else(|| self.raft.member_of(k));
            if let Some(m) = member
                && m.id == self.raft.leader
                && self.raft.voters() > 1
            {
                let rev = op.target_revision.clone();
                return match self.transfer_target(m.id, rev.as_deref()) {
                    Some(to) => act(op, Action::TransferLeader { from: m.id, to }),
                    None => act(op, Action::Wait("no healthy, caught-up voter to take over leadership".into())),
                };
            }
            if let Err(why) = self.safe_to_delete(pod, member) {
                return act(op, Action::Wait(why));
            }
            let action = Action::DeletePod { name: pod.name.clone(), uid: pod.uid.clone() };
            return act(op, action);
        }
        // The pod was re-created.
        let member = self.raft.member_of(k);
        if pod.ready && member.is_some_and(|m| m.is_voter() && caught_up(m)) {
            return self.finish(depth, "pod replaced");
        }
        if let (Some(id), Some(addr)) = (pod.node_id, pod.address.as_deref()) {
            let registered = self.raft.member_at(addr);
            if registered.is_some_and(|m| m.id != id) && self.raft.member(id).is_none() {
                let mut rep = self.new_op(OperationKind::ReplaceMember, k);
                rep.started_at = op.started_at.clone();
                rep.node_id = Some(id);
                rep.previous_node_id = registered.map(|m| m.id);
                return self.replace(rep, depth);
            }
            if member.is_none_or(|m| !m.is_voter()) && registered.is_none_or(|m| m.id == id) {
                let mut add = self.new_op(OperationKind::AddMember, k);
                add.started_at = op.started_at.clone();
                return self.add(add, depth);
            }
        }
        act(op, Action::Wait(format!("waiting for pod {} to be ready and caught up", pod.name)))
    }

    fn replace(&self, op: MembershipOperation, depth: u8) -> Plan {
        let k = op.ordinal;
        if k >= self.desired() {
            return self.finish(depth, "member no longer wanted");
        }
        let (Some(new_id), Some(old_id)) = (op.node_id, op.previous_node_id) else {
            return self.finish(depth, "incomplete replace intent");
        };
        let Some(pod) = self.obs().pod(k) else {
            let why = format!("waiting for pod {}", op.pod);
            return act(op, Action::Wait(why));
        };
        match pod.node_id {
            None => return act(op, Action::Wait(format!("waiting for the node in pod {} to answer", pod.name))),
            Some(id) if id != new_id => return self.finish(depth, "the pod's node changed identity again"),
            Some(_) => {}
        }
        if let Some(stale) = self.raft.member(old_id) {
            if stale.id == self.raft.leader {
                return act(op, Action::Wait(format!("stale member {old_id} is reported as leader")));
            }
            return act(op, Action::Remove { id: old_id });
        }
        match self.raft.member(new_id) {
            Some(m) if m.is_voter() => self.finish(depth, "member replaced"),
            Some(m) if caught_up(m) => act(op, Action::Promote { id: new_id }),
            Some(_) => act(op, Action::Wait(format!("learner {new_id} is catching up"))),
            None => match pod.address.clone() {
                Some(address) => act(op, Action::AddLearner { address }),
                None => act(op, Action::Wait(format!("pod {} has no address yet", pod.name))),
            },
        }
    }

    /// A pod may be deleted for a roll when the remaining voters keep a majority: a ready pod only when
    /// every other voter is healthy and every other pod ready (a roll never stacks on an outage); a
    /// not-ready pod when the healthy voters without it are a majority.
    fn safe_to_delete(&self, pod: &PodView, member: Option<&RaftMember>) -> Result<(), String> {
        let voters = self.raft.voters();
        if voters <= 1 {
            return Ok(());
        }
        let target = member.map(|m| m.id);
        let others: Vec<&RaftMember> =
            self.raft.members.iter().filter(|m| m.is_voter() && Some(m.id) != target).collect();
        let healthy = others.iter().filter(|m| m.is_healthy()).count();
        if healthy <= voters / 2 {
            return Err(format!(
                "deleting pod {} would leave {healthy} of {voters} voters reachable: quorum at risk",
                pod.name
            ));
        }
        if pod.ready {
            if let Some(m) = others.iter().find(|m| !m.is_healthy()) {
                return Err(format!("voter {} is not healthy; not taking another member down", m.id));
            }
            let unready = self
                .obs()
                .pods
                .iter()
                .find(|p| p.ordinal != pod.ordinal && p.ordinal < self.sts.replicas && (!p.ready || p.terminating));
            if let Some(p) = unready {
                return Err(format!("pod {} is not ready; not taking another member down", p.name));
            }
        }
        Ok(())
    }

    /// A healthy, caught-up voter other than `exclude`; prefers pods on `revision`, then the least lag,
    /// then the lowest ordinal.
    fn transfer_target(&self, exclude: u64, revision: Option<&str>) -> Option<u64> {
        self.raft
            .members
            .iter()
            .filter(|m| m.id != exclude && m.is_voter() && m.healthy == Some(true) && caught_up(m))
            .min_by_key(|m| {
                let pod = m.ordinal.and_then(|o| self.obs().pod(o));
                let on_rev = revision.is_some() && pod.and_then(|p| p.revision.as_deref()) == revision;
                let ready = pod.is_some_and(|p| p.ready);
                (!ready, !on_rev, m.lag.unwrap_or(u64::MAX), m.ordinal.unwrap_or(i32::MAX))
            })
            .map(|m| m.id)
    }
}

fn caught_up(m: &RaftMember) -> bool {
    m.healthy == Some(true) && m.lag.is_some_and(|l| l <= PROMOTE_LAG)
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
