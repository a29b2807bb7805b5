//! Step 6 of a reconcile: the status, recomputed from what was observed and planned (pure), and
//! written with server-side apply on the status subresource.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde_json::json;

use crate::crd::{
    MemberStatus, MembershipOperation, OperationKind, Phase, RegistryCluster, RegistryClusterStatus, condition,
};
use crate::membership::{Action, Observed, Plan};
use crate::names::{ClusterNames, MANAGER};
use crate::{Error, Result};

/// An operation older than this marks the cluster Degraded (it is probably stuck).
pub const SLOW_OPERATION: Duration = Duration::from_secs(600);

/// Inputs of [`compute`].
#[derive(Clone, Debug)]
pub struct StatusInput<'a> {
    /// Names.
    pub names: &'a ClusterNames,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `spec.replicas`.
    pub desired_replicas: i32,
    /// `spec.paused`.
    pub paused: bool,
    /// What was observed (`None` when the spec is invalid and nothing was read).
    pub observed: Option<&'a Observed>,
    /// Why no Raft view could be had.
    pub raft_problem: Option<&'a str>,
    /// The plan of this reconcile (`None` when paused or invalid).
    pub plan: Option<&'a Plan>,
    /// An error of this reconcile (invalid spec, failed apply or action), shown in conditions.
    pub error: Option<(&'static str, String)>,
    /// The previous status (keeps condition transition times and the intent when no plan was made).
    pub previous: Option<&'a RegistryClusterStatus>,
    /// Now.
    pub now: Timestamp,
}

/// Computes the status.
pub fn compute(i: &StatusInput<'_>) -> RegistryClusterStatus {
    let prev = i.previous.cloned().unwrap_or_default();
    let empty = Observed::default();
    let obs = i.observed.unwrap_or(&empty);
    let sts_replicas = obs.sts.as_ref().map(|s| s.replicas).unwrap_or(0);
    let live: Vec<_> = obs.pods.iter().filter(|p| !p.terminating && p.ordinal < sts_replicas.max(1)).collect();
    let ready = live.iter().filter(|p| p.ready).count() as i32;
    let intent: Option<MembershipOperation> = match i.plan {
        Some(p) => p.intent.clone(),
        None => prev.membership_operation.clone(),
    };
    let update_revision = obs.sts.as_ref().and_then(|s| s.update_revision.clone());
    let outdated = live
        .iter()
        .filter(|p| update_revision.is_some() && p.revision.is_some() && p.revision != update_revision)
        .count() as i32;
    let mut members: Vec<MemberStatus> = Vec::new();
    let (mut leader, mut term) = (None, None);
    if let Some(r) = &obs.raft {
        term = Some(r.term);
        for m in &r.members {
            let pod = m.ordinal.and_then(|o| obs.pod(o));
            if m.id == r.leader {
                leader = m.ordinal.map(|o| i.names.pod(o));
            }
            members.push(MemberStatus {
                name: m.ordinal.map(|o| i.names.pod(o)).unwrap_or_default(),
                node_id: m.id,
                address: m.address.clone(),
                role: m.role,
                ready: pod.is_some_and(|p| p.ready && !p.terminating),
                healthy: m.healthy,
                lag: m.lag,
            });
        }
        members.sort_by(|a, b| (a.name.is_empty(), &a.name).cmp(&(b.name.is_empty(), &b.name)));
    } else if i.observed.is_none() {
        members = prev.members.clone();
        leader = prev.leader.clone();
        term = prev.term;
    } else {
        // No leader answers: keep the last known members (so the cluster still counts as formed), with
        // readiness from the pods and the leader-only fields unknown.
        members = prev
            .members
            .iter()
            .map(|m| {
                let pod = obs.pods.iter().find(|p| p.name == m.name);
                let role =
                    if m.role == crate::crd::MemberRole::Leader { crate::crd::MemberRole::Voter } else { m.role };
                MemberStatus { ready: pod.is_some_and(|p| p.ready), healthy: None, lag: None, role, ..m.clone() }
            })
            .collect();
    }
    let ever_formed = !prev.members.is_empty() || obs.raft.is_some();

    let available = available(obs, i.raft_problem, ever_formed, i.observed.is_some(), &prev);
    let progressing = progressing(i, intent.as_ref(), ever_formed);
    let degraded = degraded(i, obs, intent.as_ref(), ready, &members);
    let phase = if i.paused {
        Phase::Paused
    } else if degraded.0 == "True" && ever_formed {
        Phase::Degraded
    } else if !ever_formed {
        Phase::Creating
    } else {
        match intent.as_ref().map(|o| o.kind) {
            Some(OperationKind::AddMember | OperationKind::RemoveMember) => Phase::Scaling,
            Some(OperationKind::RollPod | OperationKind::ReplaceMember) => Phase::Updating,
            None if progressing.0 == "True" => Phase::Updating,
            None => Phase::Running,
        }
    };
    let conds =
        [(condition::AVAILABLE, available), (condition::PROGRESSING, progressing), (condition::DEGRADED, degraded)];
    let conditions = conds
        .into_iter()
        .map(|(t, (status, reason, message))| {
            let last = prev
                .conditions
                .iter()
                .find(|c| c.type_ == t && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(i.now));
            Condition {
                type_: t.to_owned(),
                status: status.to_owned(),
                reason: reason.to_owned(),
                message,
                last_transition_time: last,
                observed_generation: i.generation,
            }
        })
        .collect();
    RegistryClusterStatus {
        observed_generation: i.generation,
        replicas: live.len() as i32,
        ready_replicas: ready,
        ready: Some(format!("{ready}/{}", i.desired_replicas)),
        selector: Some(i.names.selector()),
        leader,
        term,
        members,
        membership_operation: intent,
        update_revision,
        outdated_replicas: outdated,
        phase: Some(phase),
        conditions,
    }
}

type Cond = (&'static str, &'static str, String);

fn available(
    obs: &Observed,
    problem: Option<&str>,
    ever_formed: bool,
    observed: bool,
    prev: &RegistryClusterStatus,
) -> Cond {
    if !observed {
        let was = prev.conditions.iter().find(|c| c.type_ == condition::AVAILABLE);
        return match was {
            Some(c) if c.status == "True" => ("True", "Quorate", c.message.clone()),
            _ => ("False", "Unknown", "the spec is invalid; nothing was observed".into()),
        };
    }
    let Some(r) = &obs.raft else {
        let why = problem.unwrap_or("no leader");
        return if ever_formed {
            ("False", "QuorumLost", format!("no Raft leader reachable: {why}"))
        } else {
            ("False", "Bootstrapping", format!("waiting for the first member to form the cluster: {why}"))
        };
    };
    let voters: Vec<_> = r.members.iter().filter(|m| m.is_voter()).collect();
    let healthy = voters.iter().filter(|m| m.is_healthy()).count();
    if healthy > voters.len() / 2 {
        ("True", "Quorate", format!("leader {}, {healthy}/{} voters reachable", r.leader, voters.len()))
    } else {
        ("False", "QuorumLost", format!("{healthy}/{} voters reachable", voters.len()))
    }
}

fn progressing(i: &StatusInput<'_>, intent: Option<&MembershipOperation>, ever_formed: bool) -> Cond {
    if i.paused {
        return ("False", "Paused", "spec.paused is set: only status is refreshed".into());
    }
    if let Some(op) = intent {
        let reason = match op.kind {
            OperationKind::AddMember => "ScalingUp",
            OperationKind::RemoveMember => "ScalingDown",
            OperationKind::RollPod => "RollingUpdate",
            OperationKind::ReplaceMember => "ReplacingMember",
        };
        let step = op.step.as_deref().unwrap_or("started");
        return ("True", reason, format!("{} {}: {step}", op.kind.as_str(), op.pod));
    }
    match i.plan.map(|p| &p.action) {
        Some(Action::Idle) => ("False", "Reconciled", "membership and pods match the spec".into()),
        Some(Action::Wait(why)) if !ever_formed => ("True", "Bootstrapping", why.clone()),
        Some(Action::Wait(why)) => ("True", "Waiting", why.clone()),
        Some(a) => ("True", "Reconciling", a.name().to_owned()),
        None => ("False", "NotReconciled", "nothing was planned in this pass".into()),
    }
}

fn degraded(
    i: &StatusInput<'_>,
    obs: &Observed,
    intent: Option<&MembershipOperation>,
    ready: i32,
    members: &[MemberStatus],
) -> Cond {
    if let Some((reason, msg)) = &i.error {
        return ("True", reason, msg.clone());
    }
    if let Some(op) = intent {
        let age = i.now.duration_since(op.started_at.0);
        if age.as_secs() > SLOW_OPERATION.as_secs() as i64 {
            let step = op.step.as_deref().unwrap_or("");
            return (
                "True",
                "OperationSlow",
                format!("{} {} running for {}s: {step}", op.kind.as_str(), op.pod, age.as_secs()),
            );
        }
    }
    if obs.raft.is_none() && !members.is_empty() {
        return ("True", "QuorumLost", i.raft_problem.unwrap_or("no Raft leader reachable").to_owned());
    }
    let foreign: Vec<_> = members.iter().filter(|m| m.name.is_empty()).map(|m| m.address.clone()).collect();
    if !foreign.is_empty() {
        return ("True", "UnknownMembers", format!("Raft members without a pod: {}", foreign.join(", ")));
    }
    let unhealthy: Vec<_> = members.iter().filter(|m| m.healthy == Some(false)).map(|m| m.name.clone()).collect();
    if !unhealthy.is_empty() {
        return ("True", "MembersUnreachable", format!("the leader cannot reach {}", unhealthy.join(", ")));
    }
    // Pods being worked on are expected to be unready; others are not.
    let busy = intent.map(|o| o.ordinal);
    let unready: Vec<_> = obs
        .pods
        .iter()
        .filter(|p| !p.ready && !p.terminating && Some(p.ordinal) != busy)
        .filter(|p| obs.sts.as_ref().is_some_and(|s| p.ordinal < s.replicas))
        .map(|p| p.name.clone())
        .collect();
    if !unready.is_empty() && !members.is_empty() {
        return ("True", "PodsNotReady", format!("not ready: {}", unready.join(", ")));
    }
    ("False", "AsExpected", format!("{ready} pods ready"))
}

/// Writes the status with server-side apply.
pub async fn write(api: &Api<RegistryCluster>, name: &str, status: &RegistryClusterStatus) -> Result<()> {
    let body = json!({
        "apiVersion": RegistryCluster::api_version(&()),
        "kind": RegistryCluster::kind(&()),
        "status": status,
    });
    api.patch_status(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
        .await
        .map(drop)
        .map_err(Error::kube(format!("write status of RegistryCluster {name}")))
}

/// Whether two intents are the same operation (ignoring the informational `step`).
pub fn same_operation(a: Option<&MembershipOperation>, b: Option<&MembershipOperation>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            MembershipOperation { step: None, ..a.clone() } == MembershipOperation { step: None, ..b.clone() }
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
