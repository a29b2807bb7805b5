//! Membership against real `cairn-node` processes standing in for the pods: create 3 → scale to 5
//! → scale to 3 → rolling update → a member's disk wiped, while a client writes configs the whole
//! time. Checked: no
//! acknowledged write is lost, a leader with a reachable majority of voters is never missing for
//! long, no pod is ever deleted while it leads, and the roll deletes the leader last.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use cairn_kube_testkit::{FakeKubelet, FakeKubeletOptions, poll_until};
use cairn_operator::Addressing;
use cairn_operator::crd::{MemberRole, Phase, RegistryCluster, RegistryClusterSpec, RegistryClusterStatus};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::node_pods::{NodeEnv, node_binary};
use crate::support::{RunningOperator, control_plane, operator_client, operator_config, wait_status};

const NS: &str = "members";
const POOL: &str = "127.0.88.0/24";
const STEP: Duration = Duration::from_secs(120);

/// Every pod of the cluster is a ready voter, `n` of them, nothing in progress.
fn settled(s: &RegistryClusterStatus, n: usize) -> bool {
    s.phase == Some(Phase::Running)
        && s.ready_replicas == n as i32
        && s.members.len() == n
        && s.members.iter().all(|m| m.ready && m.role != MemberRole::Learner && !m.name.is_empty())
        && s.membership_operation.is_none()
        && s.outdated_replicas == 0
}

/// Addresses of the running node processes (`ip:8848`) with their pod names.
fn targets(kubelet: &FakeKubelet) -> Vec<(String, String)> {
    kubelet.running_pods().into_iter().filter_map(|p| kubelet.pod_ip(&p).map(|ip| (p, format!("{ip}:8848")))).collect()
}

#[derive(Default)]
struct Observations {
    /// Acknowledged writes: dataId → content.
    acked: BTreeMap<String, String>,
    /// Longest time between two acknowledged writes.
    max_write_gap: Duration,
    /// When that gap ended.
    max_write_gap_at: Option<Instant>,
    /// Longest time without a leader that sees a reachable majority of voters.
    max_no_quorum: Duration,
    /// (time, leader pod) samples.
    leaders: Vec<(Instant, String)>,
    /// (time, pod) of each pod deletion.
    deletions: Vec<(Instant, String)>,
    /// Failed write attempts (retried on another node).
    write_errors: Vec<String>,
    /// Write attempts that took over a second.
    slow_writes: Vec<String>,
}

async fn write_loop(
    http: reqwest::Client,
    kubelet: Arc<FakeKubelet>,
    obs: Arc<Mutex<Observations>>,
    stop: CancellationToken,
) {
    let mut n = 0u64;
    let mut last_ack = Instant::now();
    while !stop.is_cancelled() {
        n += 1;
        let (id, content) = (format!("w{n}"), format!("v{n}-{}", n * 7));
        let body = format!("dataId={id}&group=it&content={content}");
        'retry: while !stop.is_cancelled() {
            for (_, addr) in targets(&kubelet).into_iter().cycle().skip(n as usize % 5).take(5) {
                let sent = Instant::now();
                let resp = http
                    .post(format!("http://{addr}/nacos/v1/cs/configs"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone())
                    .timeout(Duration::from_secs(3))
                    .send()
                    .await;
                if sent.elapsed() > Duration::from_secs(1) {
                    obs.lock().unwrap().slow_writes.push(format!("{addr} took {:?}", sent.elapsed()));
                }
                let ok = match resp {
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        if !status.is_success() || text.trim() != "true" {
                            obs.lock().unwrap().write_errors.push(format!("{addr}: {status} {}", text.trim()));
                        }
                        status.is_success() && text.trim() == "true"
                    }
                    Err(e) => {
                        obs.lock().unwrap().write_errors.push(format!("{addr}: {e}"));
                        false
                    }
                };
                if ok {
                    let mut o = obs.lock().unwrap();
                    o.acked.insert(id.clone(), content.clone());
                    if last_ack.elapsed() > o.max_write_gap {
                        o.max_write_gap = last_ack.elapsed();
                        o.max_write_gap_at = Some(Instant::now());
                    }
                    last_ack = Instant::now();
                    break 'retry;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    // A stall at the end counts too.
    let mut o = obs.lock().unwrap();
    o.max_write_gap = o.max_write_gap.max(last_ack.elapsed());
}

async fn quorum_loop(
    http: reqwest::Client,
    kubelet: Arc<FakeKubelet>,
    obs: Arc<Mutex<Observations>>,
    stop: CancellationToken,
) {
    let mut last_ok = Instant::now();
    while !stop.is_cancelled() {
        let mut leader = None;
        for (pod, addr) in targets(&kubelet) {
            let Ok(r) =
                http.get(format!("http://{addr}/cairn/v1/raft/members")).timeout(Duration::from_secs(1)).send().await
            else {
                continue;
            };
            let Ok(v) = r.json::<serde_json::Value>().await else { continue };
            if v["leader"] != v["nodeId"] || v["leader"].is_null() {
                continue;
            }
            let voters: Vec<&serde_json::Value> =
                v["members"].as_array().into_iter().flatten().filter(|m| m["role"] != "learner").collect();
            let healthy = voters.iter().filter(|m| m["role"] == "leader" || m["healthy"] == true).count();
            if healthy > voters.len() / 2 {
                leader = Some(pod);
                break;
            }
        }
        {
            let mut o = obs.lock().unwrap();
            o.max_no_quorum = o.max_no_quorum.max(last_ok.elapsed());
            if let Some(pod) = leader {
                last_ok = Instant::now();
                o.leaders.push((Instant::now(), pod));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn deletion_watch(pods: Api<Pod>, obs: Arc<Mutex<Observations>>, stop: CancellationToken) {
    let mut seen = HashSet::new();
    let stream = watcher(pods, watcher::Config::default()).default_backoff().applied_objects();
    let mut stream = std::pin::pin!(stream.take_until(stop.cancelled_owned()));
    while let Some(ev) = stream.next().await {
        if let Ok(pod) = ev
            && pod.metadata.deletion_timestamp.is_some()
            && seen.insert(pod.uid().unwrap_or_default())
        {
            obs.lock().unwrap().deletions.push((Instant::now(), pod.name_any()));
        }
    }
}

/// The leader sampled last before `t`.
fn leader_at(o: &Observations, t: Instant) -> Option<&str> {
    o.leaders.iter().rev().find(|(at, _)| *at <= t).map(|(_, p)| p.as_str())
}

async fn step(
    rcs: &Api<RegistryCluster>,
    what: &str,
    n: usize,
    started: Instant,
) -> anyhow::Result<RegistryClusterStatus> {
    let st = wait_status(rcs, "reg", what, STEP, |s| settled(s, n)).await?;
    eprintln!("membership: {what} after {:?}", started.elapsed());
    Ok(st)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_3_5_3_and_roll_under_writes() -> anyhow::Result<()> {
    let Some(cp) = control_plane().await? else { return Ok(()) };
    let Some(node_bin) = node_binary() else { return Ok(()) };
    let started = Instant::now();
    let client = cp.client();
    cp.create_namespace(NS).await?;
    let env = NodeEnv::start(client.clone(), NS, "reg", "reg-config", &node_bin);
    let mut options = FakeKubeletOptions::new(NS, "app.kubernetes.io/name=cairn,app.kubernetes.io/instance=reg");
    options.ip_pool = POOL.into();
    options.readiness_port = Some(8848);
    options.restart_delay = Duration::from_millis(500);
    options.max_termination_grace = Duration::from_secs(5);
    let env_for_pods = env.clone();
    let kubelet = Arc::new(FakeKubelet::start(&cp, options, move |pod| env_for_pods.command(pod)).await?);
    let op = RunningOperator::start(operator_client(&cp, NS).await?, operator_config(NS, "op", Addressing::Ip));

    let rcs: Api<RegistryCluster> = Api::namespaced(client.clone(), NS);
    let mut spec = RegistryClusterSpec { replicas: 3, ..Default::default() };
    spec.node.shutdown_grace_ms = Some(200);
    rcs.create(&PostParams::default(), &RegistryCluster::new("reg", spec)).await?;
    let st = step(&rcs, "3 voters", 3, started).await?;
    let addresses: Vec<_> = st.members.iter().map(|m| m.address.clone()).collect();
    for (pod, addr) in targets(&kubelet) {
        ensure!(addresses.contains(&addr), "Raft address of {pod} is {addr}: the operator's IP addressing must match");
    }

    // Writers and watchers from here on.
    let http = reqwest::Client::builder().no_proxy().build()?;
    let obs = Arc::new(Mutex::new(Observations::default()));
    let stop = CancellationToken::new();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let tasks = vec![
        tokio::spawn(write_loop(http.clone(), kubelet.clone(), obs.clone(), stop.clone())),
        tokio::spawn(quorum_loop(http.clone(), kubelet.clone(), obs.clone(), stop.clone())),
        tokio::spawn(deletion_watch(pods.clone(), obs.clone(), stop.clone())),
    ];
    tokio::time::sleep(Duration::from_secs(1)).await;

    let scale = |n: i32| json!({"spec": {"replicas": n}});
    rcs.patch_scale("reg", &PatchParams::default(), &Patch::Merge(scale(5))).await?;
    step(&rcs, "scaled to 5", 5, started).await?;
    rcs.patch_scale("reg", &PatchParams::default(), &Patch::Merge(scale(3))).await?;
    step(&rcs, "scaled to 3", 3, started).await?;
    let stss: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    let sts = stss.get("reg").await?;
    ensure!(sts.spec.as_ref().and_then(|s| s.replicas) == Some(3), "StatefulSet shrunk to 3");

    // Rolling update: a pod template change gives a new revision.
    let before = rcs.get("reg").await?.status.and_then(|s| s.update_revision).context("update revision")?;
    let roll_start = Instant::now();
    let leader_before = wait_status(&rcs, "reg", "leader known", STEP, |s| s.leader.is_some()).await?.leader.unwrap();
    let patch = json!({"spec": {"podTemplate": {"annotations": {"cairn.dev/test-roll": "1"}}}});
    rcs.patch("reg", &PatchParams::default(), &Patch::Merge(&patch)).await?;
    let st = wait_status(&rcs, "reg", "rolled", STEP, |s| {
        settled(s, 3) && s.update_revision.as_ref().is_some_and(|r| *r != before)
    })
    .await?;
    eprintln!("membership: rolled after {:?}", started.elapsed());
    let new_rev = st.update_revision.clone().unwrap();
    for p in pods.list(&Default::default()).await?.items {
        let rev = p.labels().get("controller-revision-hash").cloned();
        ensure!(rev.as_deref() == Some(new_rev.as_str()), "pod {} on {rev:?}, want {new_rev}", p.name_any());
    }

    // A follower's disk is wiped (kill -9, empty data dir): it comes back with a new Raft id at the same
    // address, and the operator replaces the stale id explicitly. (A follower, so that the quorum
    // checks below measure the operator's steps, not an election after a crash.)
    let victim = st.members.iter().rev().find(|m| Some(&m.name) != st.leader.as_ref()).context("a follower")?.clone();
    let data_dir = kubelet.process(&victim.name).context("victim process")?.info.data_dir;
    kubelet.kill9(&victim.name)?;
    std::fs::remove_dir_all(&data_dir)?;
    std::fs::create_dir_all(&data_dir)?;
    let st = wait_status(&rcs, "reg", "wiped member replaced", STEP, |s| {
        settled(s, 3) && s.members.iter().any(|m| m.name == victim.name && m.node_id != victim.node_id)
    })
    .await?;
    ensure!(!st.members.iter().any(|m| m.node_id == victim.node_id), "stale id {} still a member", victim.node_id);
    eprintln!("membership: wiped member {} replaced after {:?}", victim.name, started.elapsed());

    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    for t in tasks {
        t.await?;
    }
    let o = std::mem::take(&mut *obs.lock().unwrap());
    eprintln!(
        "membership: {} writes acknowledged, longest write gap {:?}, longest time without a quorate leader {:?}, deletions {:?}",
        o.acked.len(),
        o.max_write_gap,
        o.max_no_quorum,
        o.deletions.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>()
    );
    if let Some(at) = o.max_write_gap_at {
        eprintln!("membership: longest write gap ended at {:?}", at.duration_since(started));
    }
    eprintln!("membership: slow write attempts: {:?}", o.slow_writes);
    let mut errors = o.write_errors.clone();
    errors.dedup();
    eprintln!(
        "membership: {} failed write attempts (retried), e.g. {:?}",
        o.write_errors.len(),
        errors.iter().take(5).collect::<Vec<_>>()
    );
    ensure!(o.acked.len() > 50, "too few writes acknowledged: {}", o.acked.len());
    ensure!(o.max_no_quorum < Duration::from_secs(2), "no quorate leader for {:?}", o.max_no_quorum);
    ensure!(o.max_write_gap < Duration::from_secs(5), "writes stalled for {:?}", o.max_write_gap);
    for (t, pod) in &o.deletions {
        ensure!(leader_at(&o, *t) != Some(pod.as_str()), "pod {pod} was deleted while it led");
    }
    let rolled: Vec<&(Instant, String)> = o.deletions.iter().filter(|(t, _)| *t >= roll_start).collect();
    ensure!(rolled.len() == 3, "the roll deleted {} pods: {rolled:?}", rolled.len());
    ensure!(
        rolled.last().map(|(_, p)| p.as_str()) == Some(leader_before.as_str()),
        "leader {leader_before} must go last: {rolled:?}"
    );

    // Every acknowledged write is on every member.
    for (pod, addr) in targets(&kubelet) {
        let missing =
            poll_until(&format!("writes on {pod}"), Duration::from_secs(30), Duration::from_millis(500), || {
                let (http, addr, acked) = (http.clone(), addr.clone(), o.acked.clone());
                async move {
                    let mut missing = Vec::new();
                    let checks = acked.iter().map(|(id, content)| {
                        let http = http.clone();
                        let url = format!("http://{addr}/nacos/v1/cs/configs?dataId={id}&group=it");
                        async move {
                            let got = match http.get(url).timeout(Duration::from_secs(3)).send().await {
                                Ok(r) if r.status().is_success() => r.text().await.ok(),
                                _ => None,
                            };
                            (got.as_deref() != Some(content.as_str())).then(|| id.clone())
                        }
                    });
                    let results: Vec<Option<String>> =
                        futures::stream::iter(checks).buffer_unordered(32).collect().await;
                    missing.extend(results.into_iter().flatten());
                    missing.is_empty().then_some(())
                }
            })
            .await;
        ensure!(missing.is_ok(), "acknowledged writes missing on {pod}: {missing:?}");
    }
    env.stop();
    op.stop().await?;
    drop(kubelet);
    eprintln!("membership: done in {:?}", started.elapsed());
    Ok(())
}
