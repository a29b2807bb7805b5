//! Table tests of the planner: given spec, pods, StatefulSet, Raft view and intent, the next step.

use super::*;
use crate::crd::MemberRole;

fn names() -> ClusterNames {
    ClusterNames::sample()
}

fn addr(k: i32) -> String {
    format!("reg-{k}.reg-headless.ns.svc.cluster.local:8848")
}

fn id(k: i32) -> u64 {
    100 + k as u64
}

/// A scenario: pods 0..n on `rev`, all ready, members 0..m voters, leader 0, StatefulSet n.
#[derive(Clone)]
struct World {
    obs: Observed,
}

impl World {
    fn new(pods: i32, voters: i32) -> Self {
        let pods_v = (0..pods)
            .map(|k| PodView {
                name: format!("reg-{k}"),
                ordinal: k,
                uid: format!("uid-{k}"),
                ready: k < voters,
                terminating: false,
                revision: Some("r1".into()),
                address: Some(addr(k)),
                node_id: Some(id(k)),
            })
            .collect();
        let members = (0..voters)
            .map(|k| RaftMember {
                id: id(k),
                address: addr(k),
                role: if k == 0 { MemberRole::Leader } else { MemberRole::Voter },
                lag: Some(0),
                healthy: Some(true),
                ordinal: Some(k),
            })
            .collect();
        Self {
            obs: Observed {
                pods: pods_v,
                sts: Some(StsView { replicas: pods, update_revision: Some("r1".into()), up_to_date: true }),
                raft: Some(RaftView { leader: id(0), term: 3, members }),
            },
        }
    }
    fn pod(mut self, k: i32, f: impl FnOnce(&mut PodView)) -> Self {
        f(self.obs.pods.iter_mut().find(|p| p.ordinal == k).unwrap());
        self
    }
    fn member(mut self, k: i32, f: impl FnOnce(&mut RaftMember)) -> Self {
        f(self.raft().members.iter_mut().find(|m| m.ordinal == Some(k)).unwrap());
        self
    }
    fn add_member(mut self, m: RaftMember) -> Self {
        self.raft().members.push(m);
        self
    }
    fn drop_member(mut self, k: i32) -> Self {
        self.raft().members.retain(|m| m.ordinal != Some(k));
        self
    }
    fn leader(mut self, k: i32) -> Self {
        let r = self.raft();
        r.leader = id(k);
        for m in &mut r.members {
            if m.role == MemberRole::Leader {
                m.role = MemberRole::Voter;
            }
            if m.ordinal == Some(k) {
                m.role = MemberRole::Leader;
            }
        }
        self
    }
    fn sts(mut self, replicas: i32) -> Self {
        self.obs.sts.as_mut().unwrap().replicas = replicas;
        self
    }
    fn update_revision(mut self, rev: &str) -> Self {
        self.obs.sts.as_mut().unwrap().update_revision = Some(rev.into());
        self
    }
    fn raft(&mut self) -> &mut RaftView {
        self.obs.raft.as_mut().unwrap()
    }
}

fn learner(k: i32, lag: u64) -> RaftMember {
    RaftMember {
        id: id(k),
        address: addr(k),
        role: MemberRole::Learner,
        lag: Some(lag),
        healthy: Some(true),
        ordinal: Some(k),
    }
}

fn op(kind: OperationKind, k: i32) -> MembershipOperation {
    MembershipOperation {
        kind,
        pod: format!("reg-{k}"),
        ordinal: k,
        node_id: Some(id(k)),
        previous_node_id: None,
        pod_uid: None,
        target_revision: None,
        started_at: Time(Timestamp::UNIX_EPOCH),
        step: None,
    }
}

fn run(desired: i32, strategy: UpdateStrategyType, w: &World, intent: Option<&MembershipOperation>) -> Plan {
    let names = names();
    plan(&PlanInput {
        desired_replicas: desired,
        strategy,
        names: &names,
        observed: &w.obs,
        intent,
        now: Timestamp::UNIX_EPOCH,
    })
}

type Expect = (Action, Option<(OperationKind, i32)>);

fn check(name: &str, desired: i32, w: World, intent: Option<MembershipOperation>, want: Expect) {
    check_with(name, desired, UpdateStrategyType::QuorumAware, w, intent, want);
}

fn check_with(
    name: &str,
    desired: i32,
    strategy: UpdateStrategyType,
    w: World,
    intent: Option<MembershipOperation>,
    (action, kind): Expect,
) {
    let p = run(desired, strategy, &w, intent.as_ref());
    let got_kind = p.intent.as_ref().map(|o| (o.kind, o.ordinal));
    let same_action = match (&p.action, &action) {
        (Action::Wait(_), Action::Wait(frag)) => {
            let Action::Wait(got) = &p.action else { unreachable!() };
            got.contains(frag.as_str())
        }
        (a, b) => a == b,
    };
    assert!(same_action && got_kind == kind, "{name}: got {:?} / {:?}, want {action:?} / {kind:?}", p.action, got_kind);
}

fn wait(frag: &str) -> Action {
    Action::Wait(frag.into())
}

#[test]
fn nothing_to_plan_without_statefulset_or_leader() {
    let mut w = World::new(3, 3);
    w.obs.sts = None;
    check("no sts", 3, w, None, (wait("StatefulSet does not exist"), None));
    let mut w = World::new(3, 3);
    w.obs.raft = None;
    let intent = op(OperationKind::AddMember, 2);
    check("no leader keeps intent", 3, w, Some(intent), (wait("no Raft leader"), Some((OperationKind::AddMember, 2))));
}

#[test]
fn settled_cluster_idles() {
    check("3/3", 3, World::new(3, 3), None, (Action::Idle, None));
    check("1/1", 1, World::new(1, 1), None, (Action::Idle, None));
}

#[test]
fn scale_up_one_member_at_a_time() {
    use OperationKind::AddMember;
    check("bootstrapped, grow sts", 3, World::new(1, 1), None, (Action::SetReplicas(2), Some((AddMember, 1))));
    let starting = World::new(2, 1).pod(1, |p| p.node_id = None);
    check("pod not answering", 3, starting, Some(op(AddMember, 1)), (wait("to answer"), Some((AddMember, 1))));
    let mut absent = World::new(1, 1).sts(2);
    absent.obs.pods.truncate(1);
    check("pod not created", 3, absent, Some(op(AddMember, 1)), (wait("to be created"), Some((AddMember, 1))));
    check(
        "add learner",
        3,
        World::new(2, 1),
        Some(op(AddMember, 1)),
        (Action::AddLearner { address: addr(1) }, Some((AddMember, 1))),
    );
    let lagging = World::new(2, 1).add_member(learner(1, 5_000));
    check("learner lagging", 3, lagging, Some(op(AddMember, 1)), (wait("catching up"), Some((AddMember, 1))));
    let caught_up = World::new(2, 1).add_member(learner(1, 3));
    check("promote", 3, caught_up, Some(op(AddMember, 1)), (Action::Promote { id: id(1) }, Some((AddMember, 1))));
    check(
        "done, next member",
        3,
        World::new(2, 2),
        Some(op(AddMember, 1)),
        (Action::SetReplicas(3), Some((AddMember, 2))),
    );
    check("last member done", 3, World::new(3, 3), Some(op(AddMember, 2)), (Action::Idle, None));
    let stuck_learner = World::new(3, 2).add_member(learner(2, 0));
    check("learner without intent", 3, stuck_learner, None, (Action::Promote { id: id(2) }, Some((AddMember, 2))));
}

#[test]
fn scale_down_highest_first_leader_moved_away() {
    use OperationKind::RemoveMember;
    check("remove highest", 3, World::new(5, 5), None, (Action::Remove { id: id(4) }, Some((RemoveMember, 4))));
    check(
        "transfer before removing the leader",
        3,
        World::new(5, 5).leader(4),
        None,
        (Action::TransferLeader { from: id(4), to: id(0) }, Some((RemoveMember, 4))),
    );
    let gone = World::new(5, 5).drop_member(4);
    check(
        "confirmed gone, shrink sts",
        3,
        gone,
        Some(op(RemoveMember, 4)),
        (Action::SetReplicas(4), Some((RemoveMember, 4))),
    );
    let mut shrunk = World::new(5, 5).drop_member(4).sts(4);
    shrunk.obs.pods[4].terminating = true;
    check(
        "next member after the shrink",
        3,
        shrunk,
        Some(op(RemoveMember, 4)),
        (Action::Remove { id: id(3) }, Some((RemoveMember, 3))),
    );
    let lone = World::new(3, 3).leader(2).member(0, |m| m.healthy = Some(false)).member(1, |m| m.lag = Some(50_000));
    check("no transfer target", 1, lone, None, (wait("no healthy"), Some((RemoveMember, 2))));
    let not_member = World::new(4, 3);
    check("surplus pod that never joined", 3, not_member, None, (Action::SetReplicas(3), Some((RemoveMember, 3))));
}

#[test]
fn changed_targets_cancel_operations() {
    use OperationKind::{AddMember, RemoveMember};
    check(
        "scale-up cancelled by scale-down",
        1,
        World::new(3, 2).add_member(learner(2, 0)),
        Some(op(AddMember, 2)),
        (Action::Remove { id: id(2) }, Some((RemoveMember, 2))),
    );
    check("scale-down cancelled by scale-up", 5, World::new(5, 5), Some(op(RemoveMember, 4)), (Action::Idle, None));
}

#[test]
fn restarted_operator_resumes_from_intent() {
    use OperationKind::AddMember;
    // The previous run added the learner and died before recording more: the next run promotes, it
    // does not add again.
    let mut intent = op(AddMember, 2);
    intent.step = Some("AddLearner".into());
    let w = World::new(3, 2).add_member(learner(2, 0));
    check("resume promote", 3, w, Some(intent), (Action::Promote { id: id(2) }, Some((AddMember, 2))));
    // It died after the StatefulSet grew but before the learner was added.
    let mut intent = op(AddMember, 2);
    intent.node_id = None;
    intent.step = Some("SetReplicas".into());
    check(
        "resume add",
        3,
        World::new(3, 2),
        Some(intent),
        (Action::AddLearner { address: addr(2) }, Some((AddMember, 2))),
    );
}

#[test]
fn rolling_update_unready_then_followers_then_leader() {
    use OperationKind::RollPod;
    let outdated = World::new(3, 3).update_revision("r2");
    check(
        "followers first, highest ordinal",
        3,
        outdated.clone(),
        None,
        (Action::DeletePod { name: "reg-2".into(), uid: "uid-2".into() }, Some((RollPod, 2))),
    );
    let unready = outdated.clone().pod(1, |p| p.ready = false).member(1, |m| m.healthy = Some(false));
    check(
        "not-ready pod first",
        3,
        unready,
        None,
        (Action::DeletePod { name: "reg-1".into(), uid: "uid-1".into() }, Some((RollPod, 1))),
    );
    let leader_left = World::new(3, 3)
        .update_revision("r2")
        .pod(1, |p| p.revision = Some("r2".into()))
        .pod(2, |p| p.revision = Some("r2".into()));
    check(
        "leader last, after a transfer to an updated pod",
        3,
        leader_left.clone().member(2, |m| m.lag = Some(0)),
        None,
        (Action::TransferLeader { from: id(0), to: id(1) }, Some((RollPod, 0))),
    );
    let mut intent = op(RollPod, 0);
    intent.pod_uid = Some("uid-0".into());
    check(
        "old leader deleted once it follows",
        3,
        leader_left.leader(1),
        Some(intent),
        (Action::DeletePod { name: "reg-0".into(), uid: "uid-0".into() }, Some((RollPod, 0))),
    );
    check_with(
        "manual strategy never deletes",
        3,
        UpdateStrategyType::Manual,
        outdated.clone(),
        None,
        (Action::Idle, None),
    );
    let mut stale_sts = outdated;
    stale_sts.obs.sts.as_mut().unwrap().up_to_date = false;
    check("sts controller behind", 3, stale_sts, None, (wait("not observed the latest spec"), None));
    check(
        "single member rolls in place",
        1,
        World::new(1, 1).update_revision("r2"),
        None,
        (Action::DeletePod { name: "reg-0".into(), uid: "uid-0".into() }, Some((RollPod, 0))),
    );
}

#[test]
fn rolling_update_waits_for_replacement_and_quorum() {
    use OperationKind::{ReplaceMember, RollPod};
    let mut intent = op(RollPod, 2);
    intent.pod_uid = Some("uid-2".into());
    let outdated = World::new(3, 3).update_revision("r2");
    let other_down = outdated.clone().pod(1, |p| p.revision = Some("r2".into())).pod(1, |p| p.ready = false);
    check(
        "another pod not ready",
        3,
        other_down,
        Some(intent.clone()),
        (wait("reg-1 is not ready"), Some((RollPod, 2))),
    );
    let voter_down = outdated.clone().member(1, |m| m.healthy = Some(false));
    check("quorum at risk", 3, voter_down.clone(), Some(intent.clone()), (wait("quorum at risk"), Some((RollPod, 2))));
    let terminating = outdated.clone().pod(2, |p| p.terminating = true);
    check("terminating", 3, terminating, Some(intent.clone()), (wait("terminating"), Some((RollPod, 2))));
    let recreated = outdated.clone().pod(2, |p| {
        p.uid = "uid-2b".into();
        p.revision = Some("r2".into());
        p.ready = false;
    });
    check(
        "re-created, not ready",
        3,
        recreated.clone(),
        Some(intent.clone()),
        (wait("ready and caught up"), Some((RollPod, 2))),
    );
    let back = recreated.clone().pod(2, |p| p.ready = true);
    check(
        "replacement ready: next follower",
        3,
        back,
        Some(intent.clone()),
        (Action::DeletePod { name: "reg-1".into(), uid: "uid-1".into() }, Some((RollPod, 1))),
    );
    let wiped = recreated.pod(2, |p| p.node_id = Some(999));
    check(
        "replacement came back empty",
        3,
        wiped,
        Some(intent),
        (Action::Remove { id: id(2) }, Some((ReplaceMember, 2))),
    );
}

#[test]
fn empty_disk_is_replaced_explicitly() {
    use OperationKind::ReplaceMember;
    let wiped = World::new(3, 3).pod(2, |p| {
        p.node_id = Some(999);
        p.ready = false;
    });
    check("detected without intent", 3, wiped.clone(), None, (Action::Remove { id: id(2) }, Some((ReplaceMember, 2))));
    let mut intent = op(ReplaceMember, 2);
    intent.node_id = Some(999);
    intent.previous_node_id = Some(id(2));
    let removed = wiped.drop_member(2);
    check(
        "stale removed: add the new id",
        3,
        removed.clone(),
        Some(intent.clone()),
        (Action::AddLearner { address: addr(2) }, Some((ReplaceMember, 2))),
    );
    let mut l = learner(2, 0);
    l.id = 999;
    check(
        "promote the new id",
        3,
        removed.clone().add_member(l.clone()),
        Some(intent.clone()),
        (Action::Promote { id: 999 }, Some((ReplaceMember, 2))),
    );
    l.role = MemberRole::Voter;
    check("replaced", 3, removed.add_member(l).pod(2, |p| p.ready = true), Some(intent), (Action::Idle, None));
}
