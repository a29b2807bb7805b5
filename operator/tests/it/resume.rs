//! Status and conditions as pods (created by the StatefulSet controller, given status by the test)
//! become ready; the operator stopped in the middle of a scale-up, a second replica taking over
//! the Lease and resuming from the intent recorded in status — verified against scripted node
//! admin APIs that record every membership call.

use std::time::{Duration, Instant};

use anyhow::ensure;
use cairn_kube_testkit::{PodState, poll_until, set_pod_status};
use cairn_operator::Addressing;
use cairn_operator::crd::{OperationKind, Phase, RegistryCluster, RegistryClusterSpec, condition as cond};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, PostParams};

use cairn_operator::lease::LeaderElector;

use crate::fake_nodes::{FakeMember, FakeNodes};
use crate::support::{RunningOperator, TICK, WAIT, condition, control_plane, operator_config, wait_status};

const NS: &str = "resume";
const IP: &str = "127.0.77";

async fn wait_pod(pods: &Api<Pod>, name: &str) -> anyhow::Result<()> {
    poll_until(&format!("pod {name} created"), WAIT, TICK, || async { pods.get_opt(name).await.ok().flatten() })
        .await?;
    Ok(())
}

async fn wait_calls(fake: &FakeNodes, want: &[&str]) -> anyhow::Result<()> {
    let want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
    poll_until(&format!("membership calls {want:?}"), WAIT, TICK, || async {
        let calls = fake.calls();
        (calls.len() >= want.len()).then_some(calls)
    })
    .await?;
    let calls = fake.calls();
    ensure!(calls == want, "membership calls: {calls:?}, expected {want:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_conditions_and_resume_after_restart() -> anyhow::Result<()> {
    let Some(cp) = control_plane().await? else { return Ok(()) };
    let started = Instant::now();
    let client = cp.client();
    cp.create_namespace(NS).await?;
    let rcs: Api<RegistryCluster> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    let mut fake = FakeNodes::new();

    let op_a = RunningOperator::start(client.clone(), operator_config(NS, "op-a", Addressing::Ip));
    rcs.create(&PostParams::default(), &RegistryCluster::new("reg", RegistryClusterSpec::default())).await?;
    wait_status(&rcs, "reg", "Creating", WAIT, |s| s.phase == Some(Phase::Creating)).await?;

    // pod-0 runs and has bootstrapped a one-voter cluster, but is not ready yet.
    wait_pod(&pods, "reg-0").await?;
    let a0 = format!("{IP}.1:8848");
    fake.serve(&a0, 1).await?;
    fake.with(|s| {
        s.members = vec![FakeMember { id: 1, address: a0.clone(), voter: true, lag: 0 }];
        s.leader = Some(1);
        s.term = 1;
        s.new_learner_lag = 5_000;
    });
    set_pod_status(&client, NS, "reg-0", PodState::running(format!("{IP}.1"), false)).await?;
    let st = wait_status(&rcs, "reg", "leader known, pod-0 not ready", WAIT, |s| {
        s.leader.as_deref() == Some("reg-0")
            && condition(s, cond::DEGRADED) == Some(("True".into(), "PodsNotReady".into()))
    })
    .await?;
    ensure!(condition(&st, cond::AVAILABLE) == Some(("True".into(), "Quorate".into())), "{st:?}");
    ensure!(st.ready_replicas == 0 && st.term == Some(1));

    set_pod_status(&client, NS, "reg-0", PodState::running(format!("{IP}.1"), true)).await?;
    let st = wait_status(&rcs, "reg", "pod-0 ready, scaling up", WAIT, |s| {
        s.ready_replicas == 1
            && s.phase == Some(Phase::Scaling)
            && condition(s, cond::DEGRADED) == Some(("False".into(), "AsExpected".into()))
            && condition(s, cond::PROGRESSING) == Some(("True".into(), "ScalingUp".into()))
    })
    .await?;
    ensure!(st.ready.as_deref() == Some("1/3"), "{:?}", st.ready);

    // pod-1 starts; the operator adds it as learner and waits for it to catch up.
    wait_pod(&pods, "reg-1").await?;
    let a1 = format!("{IP}.2:8848");
    fake.serve(&a1, 2).await?;
    set_pod_status(&client, NS, "reg-1", PodState::running(format!("{IP}.2"), false)).await?;
    wait_calls(&fake, &[&format!("learners {a1}")]).await?;
    let st = wait_status(&rcs, "reg", "intent: AddMember reg-1, catching up", WAIT, |s| {
        s.membership_operation.as_ref().is_some_and(|o| {
            o.kind == OperationKind::AddMember
                && o.pod == "reg-1"
                && o.node_id == Some(2)
                && o.step.as_deref().is_some_and(|t| t.contains("catching up"))
        })
    })
    .await?;
    ensure!(st.members.iter().any(|m| m.node_id == 2 && m.name == "reg-1"), "learner listed: {:?}", st.members);
    eprintln!("resume: operation in progress after {:?}", started.elapsed());

    // A second replica waits for the Lease while the first one holds it.
    let op_b = RunningOperator::start(client.clone(), operator_config(NS, "op-b", Addressing::Ip));
    poll_until("op-b serving metrics", WAIT, TICK, || async { op_b.metrics_text().await.ok() }).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(op_a.is_leader().await && !op_b.is_leader().await, "exactly op-a leads");
    let holder = leases.get("cairn-operator").await?.spec.and_then(|s| s.holder_identity);
    ensure!(holder.as_deref() == Some("op-a"), "lease holder {holder:?}");

    // op-a stops mid-operation (SIGTERM); op-b takes the Lease over.
    op_a.stop().await?;
    poll_until("op-b leads", WAIT, TICK, || async { op_b.is_leader().await.then_some(()) }).await?;
    let holder = leases.get("cairn-operator").await?.spec.and_then(|s| s.holder_identity);
    ensure!(holder.as_deref() == Some("op-b"), "lease holder {holder:?}");

    // The learner catches up: op-b promotes it — from the recorded intent, without adding it again.
    fake.with(|s| s.members.iter_mut().for_each(|m| m.lag = 0));
    wait_calls(&fake, &[&format!("learners {a1}"), "promote 2"]).await?;
    set_pod_status(&client, NS, "reg-1", PodState::running(format!("{IP}.2"), true)).await?;

    // The last member: new learners are caught up at once now.
    fake.with(|s| s.new_learner_lag = 0);
    wait_pod(&pods, "reg-2").await?;
    let a2 = format!("{IP}.3:8848");
    fake.serve(&a2, 3).await?;
    set_pod_status(&client, NS, "reg-2", PodState::running(format!("{IP}.3"), false)).await?;
    wait_calls(&fake, &[&format!("learners {a1}"), "promote 2", &format!("learners {a2}"), "promote 3"]).await?;
    set_pod_status(&client, NS, "reg-2", PodState::running(format!("{IP}.3"), true)).await?;
    let st = wait_status(&rcs, "reg", "Running 3/3", WAIT, |s| {
        s.phase == Some(Phase::Running)
            && s.ready_replicas == 3
            && s.membership_operation.is_none()
            && condition(s, cond::PROGRESSING) == Some(("False".into(), "Reconciled".into()))
            && condition(s, cond::DEGRADED) == Some(("False".into(), "AsExpected".into()))
    })
    .await?;
    let roles: Vec<_> = st.members.iter().map(|m| (m.name.as_str(), m.node_id, m.ready)).collect();
    ensure!(roles == [("reg-0", 1, true), ("reg-1", 2, true), ("reg-2", 3, true)], "{roles:?}");
    ensure!(st.ready.as_deref() == Some("3/3"));

    // Events for the actions, metrics of the replica that did them.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), NS);
    let reasons: Vec<String> =
        events.list(&ListParams::default()).await?.items.into_iter().filter_map(|e| e.reason).collect();
    for want in ["OperationStarted", "SetReplicas", "AddLearner", "Promote"] {
        ensure!(reasons.iter().any(|r| r == want), "event {want} missing in {reasons:?}");
    }
    let text = op_b.metrics_text().await?;
    for m in [
        "cairn_operator_membership_operations_total{kind=\"Promote\",result=\"ok\"} 2",
        "cairn_operator_leader 1",
        "cairn_operator_clusters{condition=\"Available\",status=\"True\"} 1",
    ] {
        ensure!(text.contains(m), "metric {m} missing:\n{text}");
    }
    op_b.stop().await?;
    lease_expiry_and_loss(&leases).await?;
    eprintln!("resume: done in {:?}", started.elapsed());
    Ok(())
}

/// A holder that stops renewing (crash, no release) loses the Lease after its duration; a holder
/// whose Lease is taken stops with `LeaseLost`.
async fn lease_expiry_and_loss(leases: &Api<Lease>) -> anyhow::Result<()> {
    let d = Duration::from_secs(3);
    let mut a = LeaderElector::new(leases.clone(), "expiry", "a", d);
    let mut b = LeaderElector::new(leases.clone(), "expiry", "b", d);
    ensure!(a.try_acquire_or_renew().await?, "a acquires a new lease");
    ensure!(!b.try_acquire_or_renew().await?, "b must wait while a renews");
    ensure!(a.try_acquire_or_renew().await?, "a renews");
    let since = Instant::now();
    // a "crashes": no renewals, no release. b takes over only after a full duration of silence.
    loop {
        if b.try_acquire_or_renew().await? {
            break;
        }
        ensure!(since.elapsed() < Duration::from_secs(20), "b never took the expired lease");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ensure!(since.elapsed() >= d, "taken over after {:?}, before the lease duration", since.elapsed());
    ensure!(!a.try_acquire_or_renew().await?, "a must not win back a lease b renews");
    let lease = leases.get("expiry").await?;
    let spec = lease.spec.unwrap_or_default();
    ensure!(spec.holder_identity.as_deref() == Some("b") && spec.lease_transitions == Some(1), "{spec:?}");

    // b runs the loop; an intruder takes the lease → b reports the loss.
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(b.run(tx, stop.clone()));
    rx.wait_for(|l| *l).await?;
    let mut intruder = LeaderElector::new(leases.clone(), "expiry", "intruder", d);
    let mut lease = leases.get("expiry").await?;
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = Some("intruder".into());
    }
    leases.replace("expiry", &PostParams::default(), &lease).await?;
    let ended = tokio::time::timeout(Duration::from_secs(10), run).await??;
    ensure!(matches!(ended, Err(cairn_operator::Error::LeaseLost(_))), "b must stop with LeaseLost: {ended:?}");
    ensure!(!*rx.borrow(), "b no longer leads");
    ensure!(intruder.try_acquire_or_renew().await?, "the intruder holds it");
    stop.cancel();
    Ok(())
}
