//! Table tests of the status computation.

use super::*;
use crate::crd::MemberRole;
use crate::membership::{PodView, RaftMember, RaftView, StsView};

fn names() -> ClusterNames {
    ClusterNames::sample()
}

fn observed(pods: i32, ready: i32, voters: i32) -> Observed {
    Observed {
        pods: (0..pods)
            .map(|k| PodView {
                name: format!("reg-{k}"),
                ordinal: k,
                uid: format!("u{k}"),
                ready: k < ready,
                revision: Some("r1".into()),
                address: Some(format!("a{k}:8848")),
                node_id: Some(100 + k as u64),
                ..Default::default()
            })
            .collect(),
        sts: Some(StsView { replicas: pods, update_revision: Some("r1".into()), up_to_date: true }),
        raft: (voters > 0).then(|| RaftView {
            leader: 100,
            term: 2,
            members: (0..voters)
                .map(|k| RaftMember {
                    id: 100 + k as u64,
                    address: format!("a{k}:8848"),
                    role: if k == 0 { MemberRole::Leader } else { MemberRole::Voter },
                    lag: Some(0),
                    healthy: Some(true),
                    ordinal: Some(k),
                })
                .collect(),
        }),
    }
}

fn input<'a>(names: &'a ClusterNames, obs: &'a Observed, plan: &'a Plan) -> StatusInput<'a> {
    StatusInput {
        names,
        generation: Some(4),
        desired_replicas: 3,
        paused: false,
        observed: Some(obs),
        raft_problem: None,
        plan: Some(plan),
        error: None,
        previous: None,
        now: Timestamp::from_second(1_000_000).unwrap(),
    }
}

fn cond<'a>(s: &'a RegistryClusterStatus, t: &str) -> (&'a str, &'a str) {
    let c = s.conditions.iter().find(|c| c.type_ == t).unwrap();
    (c.status.as_str(), c.reason.as_str())
}

fn op(kind: OperationKind, k: i32, started: i64) -> MembershipOperation {
    MembershipOperation {
        kind,
        pod: format!("reg-{k}"),
        ordinal: k,
        node_id: None,
        previous_node_id: None,
        pod_uid: None,
        target_revision: None,
        started_at: Time(Timestamp::from_second(started).unwrap()),
        step: Some("AddLearner".into()),
    }
}

#[test]
fn settled_cluster() {
    let n = names();
    let obs = observed(3, 3, 3);
    let plan = Plan { intent: None, action: Action::Idle };
    let s = compute(&input(&n, &obs, &plan));
    assert_eq!(s.phase, Some(Phase::Running));
    assert_eq!((s.replicas, s.ready_replicas, s.ready.as_deref()), (3, 3, Some("3/3")));
    assert_eq!(s.leader.as_deref(), Some("reg-0"));
    assert_eq!(s.term, Some(2));
    assert_eq!(s.observed_generation, Some(4));
    assert_eq!(s.selector.as_deref(), Some("app.kubernetes.io/name=cairn,app.kubernetes.io/instance=reg"));
    let names: Vec<_> = s.members.iter().map(|m| (m.name.as_str(), m.role, m.ready)).collect();
    assert_eq!(
        names,
        [("reg-0", MemberRole::Leader, true), ("reg-1", MemberRole::Voter, true), ("reg-2", MemberRole::Voter, true)]
    );
    assert_eq!(cond(&s, condition::AVAILABLE), ("True", "Quorate"));
    assert_eq!(cond(&s, condition::PROGRESSING), ("False", "Reconciled"));
    assert_eq!(cond(&s, condition::DEGRADED), ("False", "AsExpected"));
    assert!(s.conditions.iter().all(|c| c.observed_generation == Some(4)));
}

#[test]
fn phases_follow_what_happens() {
    let n = names();
    // Bootstrapping: no leader yet, never formed.
    let obs = observed(1, 0, 0);
    let plan = Plan { intent: None, action: Action::Wait("no Raft leader".into()) };
    let s = compute(&input(&n, &obs, &plan));
    assert_eq!(s.phase, Some(Phase::Creating));
    assert_eq!(cond(&s, condition::AVAILABLE), ("False", "Bootstrapping"));
    assert_eq!(cond(&s, condition::PROGRESSING), ("True", "Bootstrapping"));
    // Scaling: the pod being added is not ready, which is expected.
    let obs = observed(3, 2, 2);
    let plan = Plan { intent: Some(op(OperationKind::AddMember, 2, 999_990)), action: Action::Wait("x".into()) };
    let s = compute(&input(&n, &obs, &plan));
    assert_eq!(s.phase, Some(Phase::Scaling));
    assert_eq!(cond(&s, condition::PROGRESSING), ("True", "ScalingUp"));
    assert_eq!(cond(&s, condition::DEGRADED), ("False", "AsExpected"));
    assert_eq!(s.membership_operation.as_ref().unwrap().kind, OperationKind::AddMember);
    // Rolling.
    let plan = Plan { intent: Some(op(OperationKind::RollPod, 2, 999_990)), action: Action::Wait("x".into()) };
    assert_eq!(compute(&input(&n, &obs, &plan)).phase, Some(Phase::Updating));
    // A stuck operation degrades.
    let plan = Plan { intent: Some(op(OperationKind::AddMember, 2, 1)), action: Action::Wait("x".into()) };
    let s = compute(&input(&n, &obs, &plan));
    assert_eq!(cond(&s, condition::DEGRADED), ("True", "OperationSlow"));
    assert_eq!(s.phase, Some(Phase::Degraded));
    // A pod not ready with nothing going on degrades.
    let plan = Plan { intent: None, action: Action::Idle };
    let s = compute(&input(&n, &observed(3, 2, 3), &plan));
    assert_eq!(cond(&s, condition::DEGRADED), ("True", "PodsNotReady"));
    // Quorum lost after the cluster formed.
    let prev = compute(&input(&n, &observed(3, 3, 3), &plan));
    let lost = observed(3, 0, 0);
    let wait = Plan { intent: None, action: Action::Wait("no leader".into()) };
    let mut i = input(&n, &lost, &wait);
    i.previous = Some(&prev);
    let s = compute(&i);
    assert_eq!(cond(&s, condition::AVAILABLE), ("False", "QuorumLost"));
    assert_eq!(s.phase, Some(Phase::Degraded));
    // Paused.
    let mut i = input(&n, &obs, &plan);
    i.paused = true;
    i.plan = None;
    let s = compute(&i);
    assert_eq!(s.phase, Some(Phase::Paused));
    assert_eq!(cond(&s, condition::PROGRESSING), ("False", "Paused"));
    // Errors are reported with their reason.
    let mut i = input(&n, &obs, &plan);
    i.error = Some(("NodeRefused", "promote refused".into()));
    assert_eq!(cond(&compute(&i), condition::DEGRADED), ("True", "NodeRefused"));
}

#[test]
fn transition_times_change_only_with_status() {
    let n = names();
    let obs = observed(3, 3, 3);
    let plan = Plan { intent: None, action: Action::Idle };
    let first = compute(&input(&n, &obs, &plan));
    let mut i = input(&n, &obs, &plan);
    i.previous = Some(&first);
    i.now = Timestamp::from_second(2_000_000).unwrap();
    let second = compute(&i);
    assert_eq!(first.conditions, second.conditions, "unchanged conditions keep their transition time");
    let lost = observed(3, 0, 0);
    let mut i = input(&n, &lost, &plan);
    i.previous = Some(&first);
    i.now = Timestamp::from_second(3_000_000).unwrap();
    let third = compute(&i);
    let t = |s: &RegistryClusterStatus, ty: &str| {
        s.conditions.iter().find(|c| c.type_ == ty).unwrap().last_transition_time.0
    };
    assert_eq!(t(&third, condition::AVAILABLE), Timestamp::from_second(3_000_000).unwrap());
}

#[test]
fn operations_compare_without_step() {
    let a = op(OperationKind::AddMember, 1, 5);
    let mut b = a.clone();
    b.step = Some("Promote".into());
    assert!(same_operation(Some(&a), Some(&b)));
    b.node_id = Some(3);
    assert!(!same_operation(Some(&a), Some(&b)));
    assert!(!same_operation(Some(&a), None));
    assert!(same_operation(None, None));
}
