//! kube-controller-manager (garbage collection, StatefulSet → Pods + PVCs) and the fake kubelet running a real
//! HTTP server per Pod: binding, pod IPs, readiness mirroring, crash restart, deletion and re-creation, scale-in.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};
use cairn_kube_testkit::{
    ControlPlane, ControlPlaneOptions, FakeKubelet, FakeKubeletOptions, PodInfo, poll_until, require_all, tools,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};

const NS: &str = "kit";
const WAIT: Duration = Duration::from_secs(60);
const TICK: Duration = Duration::from_millis(100);

fn python3() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("python3")).find(|p| p.is_file())
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(pod: &Pod) -> Option<String> {
    pod.status.as_ref().and_then(|s| s.pod_ip.clone())
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

/// Waits until pod `name` exists and satisfies `check`.
async fn wait_pod(pods: &Api<Pod>, name: &str, what: &str, check: impl Fn(&Pod) -> bool) -> anyhow::Result<Pod> {
    let what = format!("pod {name}: {what}");
    Ok(poll_until(&what, WAIT, TICK, || async { pods.get_opt(name).await.ok().flatten().filter(|p| check(p)) }).await?)
}

fn readiness_file(data_dir: &Path) -> PathBuf {
    data_dir.join("www/nacos/v1/console/health/readiness")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_gc_and_fake_kubelet() -> anyhow::Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let Some(python) = python3() else {
        assert!(!require_all(), "CAIRN_REQUIRE_ALL=1 but python3 is missing");
        eprintln!("SKIPPED: python3 not found (the fake-kubelet test runs python3 -m http.server per pod)");
        return Ok(());
    };
    let started = std::time::Instant::now();
    let cp = ControlPlane::start(&tools, ControlPlaneOptions::with_controller_manager()).await?;
    eprintln!("control plane with kube-controller-manager ready in {:?}", started.elapsed());
    cp.create_namespace(NS).await?;

    garbage_collection(&cp).await.context("garbage collection")?;
    statefulset_with_kubelet(&cp, python).await.context("StatefulSet + fake kubelet")?;
    eprintln!("done in {:?}", started.elapsed());
    Ok(())
}

async fn garbage_collection(cp: &ControlPlane) -> anyhow::Result<()> {
    let cms: Api<ConfigMap> = Api::namespaced(cp.client(), NS);
    let owner =
        ConfigMap { metadata: ObjectMeta { name: Some("owner".into()), ..Default::default() }, ..Default::default() };
    let owner = cms.create(&PostParams::default(), &owner).await?;
    let dependent = ConfigMap {
        metadata: ObjectMeta {
            name: Some("dependent".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "owner".into(),
                uid: uid_of(&owner.metadata),
                ..Default::default()
            }]),
            ..Default::default()
        },
        ..Default::default()
    };
    cms.create(&PostParams::default(), &dependent).await?;
    let bystander = ConfigMap {
        metadata: ObjectMeta { name: Some("bystander".into()), ..Default::default() },
        ..Default::default()
    };
    cms.create(&PostParams::default(), &bystander).await?;

    cms.delete("owner", &DeleteParams::background()).await?;
    poll_until("dependent ConfigMap to be garbage-collected", WAIT, TICK, || async {
        matches!(cms.get_opt("dependent").await, Ok(None)).then_some(())
    })
    .await?;
    ensure!(cms.get_opt("bystander").await?.is_some(), "GC deleted an unrelated ConfigMap");
    Ok(())
}

fn uid_of(meta: &ObjectMeta) -> String {
    meta.uid.clone().unwrap_or_default()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn statefulset(replicas: i32) -> anyhow::Result<StatefulSet> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": "example.invalid/web:1"}],
                         "terminationGracePeriodSeconds": 5}
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
            }]
        }
    }))?)
}

async fn http_status(ip: &str, port: u16, path: &str) -> Option<u16> {
    let url = format!("http://{ip}:{port}{path}");
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build().ok()?;
    client.get(url).send().await.ok().map(|r| r.status().as_u16())
}

async fn statefulset_with_kubelet(cp: &ControlPlane, python: PathBuf) -> anyhow::Result<()> {
    let port = free_port()?;
    let mut options = FakeKubeletOptions::new(NS, "app=web");
    options.ip_pool = "127.0.77.0/24".into();
    options.readiness_port = Some(port);
    options.restart_delay = Duration::from_millis(300);
    options.max_termination_grace = Duration::from_secs(5);
    let kubelet = FakeKubelet::start(cp, options, move |pod: &PodInfo| {
        // A real HTTP server bound to the pod IP that serves the readiness path from the pod's data dir.
        let script = r#"set -e
mkdir -p "$DATA/www/nacos/v1/console/health"
echo ok > "$DATA/www/nacos/v1/console/health/readiness"
echo "env POD_NAME=$POD_NAME POD_NAMESPACE=$POD_NAMESPACE POD_IP=$POD_IP KUBECONFIG=$KUBECONFIG"
exec "$PYTHON" -m http.server "$PORT" --bind "$POD_IP" --directory "$DATA/www""#;
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c").arg(script).env("DATA", &pod.data_dir).env("PORT", port.to_string()).env("PYTHON", &python);
        cmd
    })
    .await?;
    let result = exercise_kubelet(cp, &kubelet, port).await;
    if result.is_err() {
        for name in ["web-0", "web-1"] {
            let log = kubelet.log_file(name);
            eprintln!("== {} ==\n{}", log.display(), std::fs::read_to_string(&log).unwrap_or_default());
        }
        let log = kubelet.logs_dir().join("kubelet.log");
        eprintln!("== kubelet ==\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    }
    result?;
    kubelet.shutdown().await;
    Ok(())
}

async fn exercise_kubelet(cp: &ControlPlane, kubelet: &FakeKubelet, port: u16) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(cp.client(), NS);
    let sts_api: Api<StatefulSet> = Api::namespaced(cp.client(), NS);
    sts_api.create(&PostParams::default(), &statefulset(2)?).await?;

    // OrderedReady: web-1 is only created once web-0 is Running and Ready — which the kubelet reports.
    let web0 = wait_pod(&pods, "web-0", "ready", pod_ready).await?;
    let web1 = wait_pod(&pods, "web-1", "ready", pod_ready).await?;
    let ip0 = pod_ip(&web0).context("web-0 has no IP")?;
    let ip1 = pod_ip(&web1).context("web-1 has no IP")?;
    ensure!(ip0.parse::<Ipv4Addr>()?.octets()[..3] == [127, 0, 77], "web-0 IP {ip0} not from the pool");
    ensure!(ip0 != ip1, "pods share IP {ip0}");
    for pod in [&web0, &web1] {
        let spec = pod.spec.as_ref().context("no spec")?;
        ensure!(spec.node_name.as_deref() == Some(kubelet.node_name()), "pod not bound to the kubelet's node");
        ensure!(pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"), "phase not Running");
    }
    ensure!(kubelet.running_pods() == ["web-0", "web-1"], "running: {:?}", kubelet.running_pods());
    ensure!(http_status(&ip0, port, "/nacos/v1/console/health/readiness").await == Some(200), "web-0 not serving");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(cp.client(), NS);
    ensure!(pvcs.get_opt("data-web-0").await?.is_some(), "StatefulSet created no PVC");
    poll_until("StatefulSet readyReplicas=2", WAIT, TICK, || async {
        let sts = sts_api.get("web").await.ok()?;
        (sts.status?.ready_replicas == Some(2)).then_some(())
    })
    .await?;
    let log0 = std::fs::read_to_string(kubelet.log_file("web-0"))?;
    let kubeconfig = cp.kubeconfig_path().display().to_string();
    let expected_env = format!("env POD_NAME=web-0 POD_NAMESPACE={NS} POD_IP={ip0} KUBECONFIG={kubeconfig}");
    ensure!(log0.contains(&expected_env), "process env wrong; log:\n{log0}");

    // Readiness mirrors the probe: the server answers 404 without the file.
    let state1 = kubelet.process("web-1").context("no process state for web-1")?;
    let data1 = state1.info.data_dir.clone();
    std::fs::remove_file(readiness_file(&data1))?;
    wait_pod(&pods, "web-1", "not ready after the probe fails", |p| !pod_ready(p)).await?;
    std::fs::write(readiness_file(&data1), "ok")?;
    wait_pod(&pods, "web-1", "ready again", pod_ready).await?;

    // kill -9: the pod stays (same UID), the process is restarted.
    let before = kubelet.process("web-0").context("no process state for web-0")?;
    kubelet.kill9("web-0")?;
    let after = poll_until("web-0 restarted", WAIT, TICK, || async {
        kubelet.process("web-0").filter(|p| p.restarts == before.restarts + 1 && p.pid.is_some())
    })
    .await?;
    ensure!(after.pid != before.pid, "same pid after kill -9");
    let web0_again = wait_pod(&pods, "web-0", "ready after restart", pod_ready).await?;
    ensure!(uid(&web0_again) == uid(&web0), "kill -9 must not re-create the pod");
    let restart_count =
        web0_again.status.as_ref().and_then(|s| s.container_statuses.as_ref()).map(|cs| cs[0].restart_count);
    ensure!(restart_count == Some(1), "containerStatuses restartCount {restart_count:?}");

    // Pod deletion: process stopped, pod removed, StatefulSet re-creates it with the same IP and data dir.
    std::fs::write(data1.join("marker"), "kept")?;
    let old_pid = state1.pid.context("web-1 has no pid")?;
    pods.delete("web-1", &DeleteParams::default()).await?;
    let web1_new = wait_pod(&pods, "web-1", "re-created and ready", |p| uid(p) != uid(&web1) && pod_ready(p)).await?;
    ensure!(!Path::new(&format!("/proc/{old_pid}")).exists() || is_zombie(old_pid), "old web-1 process alive");
    ensure!(pod_ip(&web1_new).as_deref() == Some(ip1.as_str()), "IP changed on re-creation");
    let state1_new = kubelet.process("web-1").context("no state for new web-1")?;
    ensure!(state1_new.info.data_dir == data1, "data dir changed: {:?}", state1_new.info.data_dir);
    ensure!(std::fs::read_to_string(data1.join("marker"))? == "kept", "data lost");

    // Scale in to zero: every process stops and the pods go away.
    let scale = serde_json::json!({"spec": {"replicas": 0}});
    sts_api.patch("web", &PatchParams::default(), &Patch::Merge(&scale)).await?;
    poll_until("all pods gone and processes stopped", WAIT, TICK, || async {
        let none_left = pods.get_opt("web-0").await.ok()?.is_none() && pods.get_opt("web-1").await.ok()?.is_none();
        (none_left && kubelet.running_pods().is_empty()).then_some(())
    })
    .await?;
    ensure!(http_status(&ip0, port, "/").await.is_none(), "web-0 still serving after scale-in");
    Ok(())
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}
