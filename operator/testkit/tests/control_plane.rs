//! A real etcd + kube-apiserver: startup, ConfigMap CRUD, RBAC for a ServiceAccount, helm against the cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, ensure};
use cairn_kube_testkit::{ControlPlane, ControlPlaneOptions, poll_until, tools};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), ..Default::default() }
}

fn config_map(name: &str, key: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("kit".to_string(), "crud".to_string())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(key.to_string(), value.to_string())])),
        ..Default::default()
    }
}

fn is_forbidden(result: &kube::Result<impl Sized>) -> bool {
    matches!(result, Err(kube::Error::Api(s)) if s.code == 403)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_crud_rbac_and_helm() -> anyhow::Result<()> {
    let Some(tools) = tools() else { return Ok(()) };
    let started = std::time::Instant::now();
    let cp = ControlPlane::start(&tools, ControlPlaneOptions::default()).await?;
    eprintln!("control plane ready in {:?} at {}", started.elapsed(), cp.server_url());
    let client = cp.client();

    let version = client.apiserver_version().await?;
    ensure!(version.major == "1" && version.minor.starts_with("36"), "unexpected version {version:?}");
    ensure!(version.git_version.starts_with("v1.36."), "version ldflags not set: {}", version.git_version);

    crud(&cp).await.context("ConfigMap CRUD")?;
    rbac(&cp).await.context("RBAC")?;
    helm(&cp, &tools.helm).await.context("helm")?;
    Ok(())
}

async fn crud(cp: &ControlPlane) -> anyhow::Result<()> {
    cp.create_namespace("crud").await?;
    let api: Api<ConfigMap> = Api::namespaced(cp.client(), "crud");
    api.create(&PostParams::default(), &config_map("one", "k", "v1")).await?;
    let got = api.get("one").await?;
    ensure!(got.data.as_ref().and_then(|d| d.get("k")).map(String::as_str) == Some("v1"), "{got:?}");

    let patch = serde_json::json!({"data": {"k": "v2", "extra": "x"}});
    api.patch("one", &PatchParams::default(), &Patch::Merge(&patch)).await?;
    let got = api.get("one").await?;
    let data = got.data.unwrap_or_default();
    ensure!(data.get("k").map(String::as_str) == Some("v2") && data.contains_key("extra"), "{data:?}");

    api.create(&PostParams::default(), &config_map("two", "k", "v")).await?;
    let listed = api.list(&ListParams::default().labels("kit=crud")).await?;
    let mut names: Vec<String> = listed.items.into_iter().filter_map(|c| c.metadata.name).collect();
    names.sort();
    ensure!(names == ["one", "two"], "{names:?}");

    let dup = api.create(&PostParams::default(), &config_map("one", "k", "v")).await;
    ensure!(matches!(dup, Err(kube::Error::Api(ref s)) if s.code == 409), "duplicate create: {dup:?}");

    api.delete("one", &DeleteParams::default()).await?;
    ensure!(api.get_opt("one").await?.is_none(), "ConfigMap one still exists after delete");
    ensure!(api.get_opt("two").await?.is_some(), "ConfigMap two vanished");
    Ok(())
}

async fn rbac(cp: &ControlPlane) -> anyhow::Result<()> {
    cp.create_namespace("rbac").await?;
    cp.create_namespace("other").await?;
    let sas: Api<ServiceAccount> = Api::namespaced(cp.client(), "rbac");
    sas.create(&PostParams::default(), &ServiceAccount { metadata: meta("reader"), ..Default::default() }).await?;
    let admin_cms: Api<ConfigMap> = Api::namespaced(cp.client(), "rbac");
    admin_cms.create(&PostParams::default(), &config_map("visible", "k", "v")).await?;

    let reader = cp.client_for_service_account("rbac", "reader").await?;
    let reader_cms: Api<ConfigMap> = Api::namespaced(reader.clone(), "rbac");
    let denied = reader_cms.list(&ListParams::default()).await;
    ensure!(is_forbidden(&denied), "a ServiceAccount without a Role could list ConfigMaps: {denied:?}");

    let role = Role {
        metadata: meta("cm-reader"),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(cp.client(), "rbac").create(&PostParams::default(), &role).await?;
    let binding = RoleBinding {
        metadata: meta("cm-reader"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "cm-reader".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "reader".into(),
            namespace: Some("rbac".into()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(cp.client(), "rbac").create(&PostParams::default(), &binding).await?;

    // The RBAC authorizer works from informers: allow a moment for the binding to arrive.
    let names = poll_until("Role to take effect", Duration::from_secs(30), Duration::from_millis(200), || async {
        reader_cms.list(&ListParams::default()).await.ok()
    })
    .await?;
    ensure!(names.items.iter().any(|c| c.metadata.name.as_deref() == Some("visible")), "list misses ConfigMap");

    let create = reader_cms.create(&PostParams::default(), &config_map("nope", "k", "v")).await;
    ensure!(is_forbidden(&create), "the Role grants no create, yet: {create:?}");
    let elsewhere = Api::<ConfigMap>::namespaced(reader, "other").list(&ListParams::default()).await;
    ensure!(is_forbidden(&elsewhere), "the Role is namespaced, yet: {elsewhere:?}");
    Ok(())
}

async fn helm(cp: &ControlPlane, helm: &std::path::Path) -> anyhow::Result<()> {
    let home = tempfile::tempdir()?;
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(helm);
        cmd.args(args)
            .env("KUBECONFIG", cp.kubeconfig_path())
            .env("HELM_CACHE_HOME", home.path().join("cache"))
            .env("HELM_CONFIG_HOME", home.path().join("config"))
            .env("HELM_DATA_HOME", home.path().join("data"));
        let out = cmd.output().with_context(|| format!("run helm {args:?}"))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        ensure!(out.status.success(), "helm {args:?} failed ({}): {text}", out.status);
        Ok(text)
    };
    let version = run(&["version", "--short"])?;
    ensure!(version.starts_with("v3."), "helm version: {version}");

    let chart = home.path().join("chart");
    std::fs::create_dir_all(chart.join("templates"))?;
    std::fs::write(chart.join("Chart.yaml"), "apiVersion: v2\nname: kit\nversion: 0.1.0\n")?;
    std::fs::write(
        chart.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
    )?;
    std::fs::write(chart.join("values.yaml"), "greeting: hello\n")?;
    let chart_arg = chart.to_string_lossy().into_owned();
    run(&["install", "rel", &chart_arg, "--namespace", "helm-ns", "--create-namespace", "--set", "greeting=hi"])?;
    let cms: Api<ConfigMap> = Api::namespaced(cp.client(), "helm-ns");
    let cm = cms.get("rel-cm").await?;
    ensure!(cm.data.unwrap_or_default().get("greeting").map(String::as_str) == Some("hi"), "helm values not applied");
    let list = run(&["list", "--namespace", "helm-ns", "--short"])?;
    ensure!(list.lines().any(|l| l.trim() == "rel"), "helm list: {list}");
    run(&["uninstall", "rel", "--namespace", "helm-ns"])?;
    ensure!(cms.get_opt("rel-cm").await?.is_none(), "helm uninstall left the ConfigMap");
    Ok(())
}

fn bare_pod(name: &str, labels: &[(&str, &str)]) -> anyhow::Result<k8s_openapi::api::core::v1::Pod> {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "example.invalid/app:1"}]}
    }))?)
}

/// Runs beside `apiserver_crud_rbac_and_helm` (own control plane): hand-driven pod status, and the fake kubelet
/// without kube-controller-manager, with process-based readiness and `kill_immediately`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_status_and_bare_pod_kubelet() -> anyhow::Result<()> {
    use cairn_kube_testkit::{FakeKubelet, FakeKubeletOptions, PodPhase, PodState, set_pod_status};
    use k8s_openapi::api::core::v1::Pod;
    let Some(tools) = tools() else { return Ok(()) };
    let cp = ControlPlane::start(&tools, ControlPlaneOptions::default()).await?;
    cp.create_namespace("bare").await?;
    let pods: Api<Pod> = Api::namespaced(cp.client(), "bare");
    let ready = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };

    // By hand: Pending → Running + IP + ready → not ready.
    pods.create(&PostParams::default(), &bare_pod("manual", &[("app", "manual")])?).await?;
    let pod = set_pod_status(&cp.client(), "bare", "manual", PodState::running("127.0.5.9", true)).await?;
    let status = pod.status.clone().unwrap_or_default();
    ensure!(status.phase.as_deref() == Some("Running") && status.pod_ip.as_deref() == Some("127.0.5.9"), "{status:?}");
    ensure!(ready(&pod), "not ready: {status:?}");
    let state = PodState { phase: PodPhase::Running, pod_ip: Some("127.0.5.9".into()), ready: false };
    let pod = set_pod_status(&cp.client(), "bare", "manual", state).await?;
    ensure!(!ready(&pod), "still ready");
    let cs = pod.status.and_then(|s| s.container_statuses).unwrap_or_default();
    ensure!(cs.len() == 1 && !cs[0].ready, "container statuses {cs:?}");
    let state = PodState { phase: PodPhase::Failed, pod_ip: None, ready: false };
    let pod = set_pod_status(&cp.client(), "bare", "manual", state).await?;
    let status = pod.status.unwrap_or_default();
    ensure!(status.phase.as_deref() == Some("Failed") && status.pod_ip.is_none(), "{status:?}");

    // Fake kubelet, no readiness probe (ready = process runs), SIGKILL on deletion.
    let mut options = FakeKubeletOptions::new("bare", "app=sleeper");
    options.ip_pool = "127.0.78.0/24".into();
    options.kill_immediately = true;
    let kubelet = FakeKubelet::start(&cp, options, |_pod| {
        let mut cmd = tokio::process::Command::new("sh");
        // Ignores SIGTERM: only SIGKILL stops it, so this also checks kill_immediately.
        cmd.arg("-c").arg("trap '' TERM; echo up; while :; do sleep 1; done");
        cmd
    })
    .await?;
    pods.create(&PostParams::default(), &bare_pod("sleeper", &[("app", "sleeper")])?).await?;
    let pod = poll_until("sleeper ready", Duration::from_secs(30), Duration::from_millis(100), || async {
        pods.get_opt("sleeper").await.ok().flatten().filter(|p| ready(p))
    })
    .await?;
    ensure!(pod.status.and_then(|s| s.pod_ip).as_deref() == Some("127.0.78.1"), "pod IP not from the pool");
    let pid = kubelet.process("sleeper").and_then(|p| p.pid).context("no pid")?;
    ensure!(kubelet.process("manual").is_none(), "the kubelet ran a pod outside its selector");

    let started = std::time::Instant::now();
    pods.delete("sleeper", &DeleteParams::default()).await?;
    poll_until("sleeper removed", Duration::from_secs(20), Duration::from_millis(100), || async {
        matches!(pods.get_opt("sleeper").await, Ok(None)).then_some(())
    })
    .await?;
    ensure!(started.elapsed() < Duration::from_secs(5), "kill_immediately took {:?}", started.elapsed());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    ensure!(stat.is_empty() || stat.contains(") Z "), "process {pid} survived: {stat}");
    ensure!(kubelet.running_pods().is_empty(), "{:?}", kubelet.running_pods());
    kubelet.shutdown().await;
    Ok(())
}
