//! The RegistryCluster API against a real API server: schema validation with the schema's messages,
//! every owned object, spec changes, pause, the scale subresource, the optional ServiceMonitor, and
//! deletion following the PVC retention policy — with the operator under its documented RBAC.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use cairn_kube_testkit::poll_until;
use cairn_operator::Addressing;
use cairn_operator::crd::{PullPolicy, RegistryCluster, RegistryClusterSpec, RetentionPolicy, condition as cond};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, EnvVar, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::support::{
    RunningOperator, TICK, WAIT, condition, control_plane, operator_client, operator_config, wait_status,
};

const NS: &str = "api";

fn rc(name: &str, spec: RegistryClusterSpec) -> RegistryCluster {
    RegistryCluster::new(name, spec)
}

/// The API server's rejection message for creating `obj`.
async fn rejected(api: &Api<RegistryCluster>, obj: &RegistryCluster) -> String {
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => String::from("<accepted>"),
        Err(kube::Error::Api(s)) => s.message,
        Err(e) => e.to_string(),
    }
}

async fn schema_validation(client: &Client, api: &Api<RegistryCluster>) -> anyhow::Result<()> {
    type Case = (&'static str, fn(&mut RegistryClusterSpec), &'static str);
    let cases: &[Case] = &[
        ("even replicas", |s| s.replicas = 4, "replicas must be odd"),
        ("too many replicas", |s| s.replicas = 11, "less than or equal to 9"),
        ("zero replicas", |s| s.replicas = 0, "greater than or equal to 1"),
        ("storage size", |s| s.storage.size = "lots".into(), "spec.storage.size in body should match"),
        ("low port", |s| s.ports.http = 80, "greater than or equal to 1024"),
        (
            "extraEnv key",
            |s| drop(s.node.extra_env.insert("FOO".into(), "1".into())),
            "node.extraEnv keys must look like CAIRN_<FLAG>",
        ),
        (
            "extraEnv reserved",
            |s| drop(s.node.extra_env.insert("CAIRN_MEMBERS".into(), "x:1".into())),
            "node.extraEnv must not set CAIRN_MEMBERS",
        ),
        (
            "selector label",
            |s| drop(s.pod_template.labels.insert("app.kubernetes.io/instance".into(), "x".into())),
            "podTemplate.labels must not set app.kubernetes.io/name, instance or managed-by",
        ),
        (
            "reserved env",
            |s| {
                s.pod_template.env.push(EnvVar { name: "POD_IP".into(), value: Some("1".into()), ..Default::default() })
            },
            "podTemplate.env must not set POD_NAME",
        ),
        ("cluster domain", |s| s.cluster_domain = "Not A Domain".into(), "spec.clusterDomain in body should match"),
    ];
    for (what, mutate, want) in cases {
        let mut spec = RegistryClusterSpec::default();
        mutate(&mut spec);
        let msg = rejected(api, &rc("bad", spec)).await;
        ensure!(msg.contains(want), "{what}: expected a rejection containing {want:?}, got {msg:?}");
    }
    let long = "x".repeat(53);
    let msg = rejected(api, &rc(&long, RegistryClusterSpec::default())).await;
    ensure!(msg.contains("metadata.name must be at most 52 characters"), "long name: {msg}");
    let raw: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NS, &kube::api::ApiResource::erase::<RegistryCluster>(&()));
    let bad: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "cairn.dev/v1alpha1", "kind": "RegistryCluster",
        "metadata": {"name": "bad"}, "spec": {"updateStrategy": {"type": "Sometimes"}}}))?;
    let msg = match raw.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(s)) => s.message,
        other => format!("{other:?}"),
    };
    ensure!(msg.contains("Unsupported value: \"Sometimes\""), "enum: {msg}");

    // Transition rules: what names addresses or claim templates cannot change.
    let mut spec = RegistryClusterSpec { replicas: 1, ..Default::default() };
    spec.storage.retention.when_deleted = RetentionPolicy::Delete;
    api.create(&PostParams::default(), &rc("immutable", spec)).await?;
    let changes: &[(&str, serde_json::Value, &str)] = &[
        ("size", json!({"spec": {"storage": {"size": "2Gi"}}}), "storage.size is immutable"),
        ("class", json!({"spec": {"storage": {"storageClassName": "fast"}}}), "storage.storageClassName is immutable"),
        ("port", json!({"spec": {"ports": {"http": 9000}}}), "ports are immutable"),
        ("domain", json!({"spec": {"clusterDomain": "example.org"}}), "clusterDomain is immutable"),
    ];
    for (what, patch, want) in changes {
        let msg = match api.patch("immutable", &PatchParams::default(), &Patch::Merge(patch)).await {
            Ok(_) => "<accepted>".to_owned(),
            Err(kube::Error::Api(s)) => s.message,
            Err(e) => e.to_string(),
        };
        ensure!(msg.contains(want), "immutable {what}: expected {want:?}, got {msg:?}");
    }
    // Mutable fields still change.
    api.patch("immutable", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}}))).await?;
    api.delete("immutable", &DeleteParams::default()).await?;
    Ok(())
}

fn env_of(sts: &StatefulSet) -> BTreeMap<String, String> {
    let c = &sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0];
    c.env.iter().flatten().filter_map(|e| Some((e.name.clone(), e.value.clone()?))).collect()
}

async fn get<K>(client: &Client, name: &str) -> anyhow::Result<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), NS);
    poll_until(&format!("{} {name}", K::kind(&Default::default())), WAIT, TICK, || async {
        api.get_opt(name).await.ok().flatten()
    })
    .await
    .map_err(Into::into)
}

/// Installs a minimal `monitoring.coreos.com/v1` ServiceMonitor CRD (what the Prometheus Operator ships,
/// reduced to a schema that keeps unknown fields).
async fn install_service_monitor_crd(client: &Client) -> anyhow::Result<()> {
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
            "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor", "listKind": "ServiceMonitorList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.create(&PostParams::default(), &crd).await?;
    let ar = cairn_operator::build::service_monitor_resource();
    let monitors: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    poll_until("ServiceMonitor served", WAIT, TICK, || async { monitors.list(&ListParams::default()).await.ok() })
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_objects_validation_and_deletion() -> anyhow::Result<()> {
    let Some(cp) = control_plane().await? else { return Ok(()) };
    let started = Instant::now();
    let admin = cp.client();
    cp.create_namespace(NS).await?;
    let rcs: Api<RegistryCluster> = Api::namespaced(admin.clone(), NS);
    schema_validation(&admin, &rcs).await?;
    eprintln!("api: schema validation checked after {:?}", started.elapsed());

    install_service_monitor_crd(&admin).await?;
    let op_client = operator_client(&cp, NS).await?;
    let op = RunningOperator::start(op_client, operator_config(NS, "api-op", Addressing::Dns));

    // A cluster with most settings used.
    let mut spec = RegistryClusterSpec { replicas: 3, image: Some("example/cairn:1".into()), ..Default::default() };
    spec.image_pull_policy = Some(PullPolicy::IfNotPresent);
    spec.storage.retention.when_deleted = RetentionPolicy::Delete;
    spec.node.raft_snapshot_every = Some(5000);
    spec.node.extra_env.insert("CAIRN_HEALTH_CHECK_INTERVAL_MS".into(), "1000".into());
    spec.pod_template.labels.insert("team".into(), "registry".into());
    spec.monitoring.enabled = true;
    spec.monitoring.interval = "15s".into();
    rcs.create(&PostParams::default(), &rc("reg", spec)).await?;

    let sts: StatefulSet = get(&admin, "reg").await?;
    let s = sts.spec.as_ref().unwrap();
    ensure!(s.replicas == Some(1), "a new cluster starts with one pod: {:?}", s.replicas);
    ensure!(s.service_name.as_deref() == Some("reg-headless"));
    ensure!(s.pod_management_policy.as_deref() == Some("OrderedReady"));
    ensure!(s.update_strategy.as_ref().and_then(|u| u.type_.as_deref()) == Some("OnDelete"));
    let retention = s.persistent_volume_claim_retention_policy.as_ref().unwrap();
    ensure!(retention.when_deleted.as_deref() == Some("Delete") && retention.when_scaled.as_deref() == Some("Retain"));
    let env = env_of(&sts);
    ensure!(env["CAIRN_MEMBERS"] == "k8s:app.kubernetes.io/name=cairn,app.kubernetes.io/instance=reg", "{env:?}");
    ensure!(env["CAIRN_PEER_DOMAIN"] == "reg-headless.api.svc.cluster.local", "{env:?}");
    ensure!(env["CAIRN_ADVERTISE_HOST"] == "$(POD_NAME).reg-headless.api.svc.cluster.local", "{env:?}");
    ensure!(env["CAIRN_AUTO_JOIN"] == "false", "{env:?}");
    let pod_spec = s.template.spec.as_ref().unwrap();
    ensure!(pod_spec.service_account_name.as_deref() == Some("reg"));
    let container = &pod_spec.containers[0];
    ensure!(container.image.as_deref() == Some("example/cairn:1"));
    ensure!(container.image_pull_policy.as_deref() == Some("IfNotPresent"));
    let readiness = container.readiness_probe.as_ref().and_then(|p| p.http_get.as_ref()).and_then(|h| h.path.clone());
    ensure!(readiness.as_deref() == Some("/nacos/v1/console/health/readiness"));
    ensure!(s.template.metadata.as_ref().unwrap().labels.as_ref().unwrap()["team"] == "registry");
    let owner = sts.owner_references().first().cloned().context("StatefulSet owner")?;
    ensure!(owner.kind == "RegistryCluster" && owner.controller == Some(true));

    let headless: Service = get(&admin, "reg-headless").await?;
    let hs = headless.spec.as_ref().unwrap();
    ensure!(hs.cluster_ip.as_deref() == Some("None") && hs.publish_not_ready_addresses == Some(true));
    let ports: Vec<_> = hs.ports.iter().flatten().map(|p| (p.name.clone().unwrap_or_default(), p.port)).collect();
    ensure!(ports == [("http".into(), 8848), ("grpc".into(), 9848), ("raft".into(), 9849)], "{ports:?}");
    let client_svc: Service = get(&admin, "reg").await?;
    ensure!(client_svc.spec.as_ref().unwrap().ports.as_ref().unwrap().len() == 2);
    let cm: ConfigMap = get(&admin, "reg-config").await?;
    let data = cm.data.clone().unwrap_or_default();
    ensure!(data.get("CAIRN_RAFT_SNAPSHOT_EVERY").map(String::as_str) == Some("5000"), "{data:?}");
    ensure!(data.get("CAIRN_HEALTH_CHECK_INTERVAL_MS").map(String::as_str) == Some("1000"), "{data:?}");
    let secret: Secret = get(&admin, "reg-auth").await?;
    let key = secret.data.as_ref().and_then(|d| d.get("token-secret-key")).context("auth key")?.0.clone();
    ensure!(key.len() == 64, "generated key length {}", key.len());
    let _: ServiceAccount = get(&admin, "reg").await?;
    let role: Role = get(&admin, "reg-discovery").await?;
    let rule = &role.rules.as_ref().unwrap()[0];
    ensure!(rule.resources.as_deref() == Some(&["pods".to_owned()][..]) && rule.verbs == ["get", "list", "watch"]);
    let rb: RoleBinding = get(&admin, "reg-discovery").await?;
    ensure!(rb.subjects.as_ref().unwrap()[0].name == "reg");
    let pdb: PodDisruptionBudget = get(&admin, "reg").await?;
    ensure!(pdb.spec.as_ref().unwrap().max_unavailable == Some(IntOrString::Int(1)));
    let monitors: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), NS, &cairn_operator::build::service_monitor_resource());
    let sm =
        poll_until("ServiceMonitor reg", WAIT, TICK, || async { monitors.get_opt("reg").await.ok().flatten() }).await?;
    ensure!(sm.data["spec"]["endpoints"][0]["interval"] == "15s", "{:?}", sm.data);
    eprintln!("api: every object created after {:?}", started.elapsed());

    // Status while pod-0 has no IP (no kubelet here): the cluster is being created.
    let st = wait_status(&rcs, "reg", "Creating, Bootstrapping", WAIT, |s| {
        s.phase == Some(cairn_operator::crd::Phase::Creating)
            && condition(s, cond::AVAILABLE) == Some(("False".into(), "Bootstrapping".into()))
    })
    .await?;
    ensure!(st.selector.as_deref() == Some("app.kubernetes.io/name=cairn,app.kubernetes.io/instance=reg"));
    ensure!(st.observed_generation == Some(1));

    // Scale subresource: kubectl scale works, and the schema rules apply to it.
    let scale =
        rcs.patch_scale("reg", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 5}}))).await?;
    ensure!(scale.spec.and_then(|s| s.replicas) == Some(5), "scale answer");
    ensure!(rcs.get("reg").await?.spec.replicas == 5, "spec.replicas follows the scale subresource");
    let even = rcs.patch_scale("reg", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 4}}))).await;
    let msg = match even {
        Err(kube::Error::Api(s)) => s.message,
        other => format!("{other:?}"),
    };
    ensure!(msg.contains("replicas must be odd"), "scale to 4: {msg}");
    let scale = rcs.get_scale("reg").await?;
    ensure!(scale.status.as_ref().and_then(|s| s.selector.clone()).is_some_and(|s| s.contains("instance=reg")));

    // Spec change → ConfigMap, template and StatefulSet revision change; the auth key stays.
    let generation = sts.metadata.generation.unwrap_or(0);
    let patch = json!({"spec": {"node": {"log": "debug"}, "podTemplate": {"annotations": {"rolled": "1"}},
                                "monitoring": {"enabled": false}, "pdb": {"maxUnavailable": 2}}});
    rcs.patch("reg", &PatchParams::default(), &Patch::Merge(&patch)).await?;
    let stss: Api<StatefulSet> = Api::namespaced(admin.clone(), NS);
    let sts = poll_until("StatefulSet template updated", WAIT, TICK, || async {
        let s = stss.get("reg").await.ok()?;
        let ann = s.spec.as_ref()?.template.metadata.as_ref()?.annotations.clone()?;
        (ann.get("rolled").map(String::as_str) == Some("1")).then_some(s)
    })
    .await?;
    ensure!(sts.metadata.generation.unwrap_or(0) > generation, "generation did not increase");
    let cm: ConfigMap = get(&admin, "reg-config").await?;
    ensure!(cm.data.unwrap_or_default().get("CAIRN_LOG").map(String::as_str) == Some("debug"));
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(admin.clone(), NS);
    poll_until("PDB updated", WAIT, TICK, || async {
        let p = pdbs.get("reg").await.ok()?;
        (p.spec?.max_unavailable == Some(IntOrString::Int(2))).then_some(())
    })
    .await?;
    poll_until("ServiceMonitor removed", WAIT, TICK, || async {
        monitors.get_opt("reg").await.ok().flatten().is_none().then_some(())
    })
    .await?;
    let secret: Secret = get(&admin, "reg-auth").await?;
    ensure!(secret.data.unwrap()["token-secret-key"].0 == key, "the auth key must never rotate");
    eprintln!("api: spec change applied after {:?}", started.elapsed());

    // Paused: spec changes are not applied; status says so.
    rcs.patch(
        "reg",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": true, "node": {"log": "warn"}}})),
    )
    .await?;
    wait_status(&rcs, "reg", "Paused", WAIT, |s| s.phase == Some(cairn_operator::crd::Phase::Paused)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cm: ConfigMap = get(&admin, "reg-config").await?;
    ensure!(
        cm.data.unwrap_or_default().get("CAIRN_LOG").map(String::as_str) == Some("debug"),
        "paused cluster changed"
    );
    rcs.patch("reg", &PatchParams::default(), &Patch::Merge(json!({"spec": {"paused": false}}))).await?;
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), NS);
    poll_until("unpaused change applied", WAIT, TICK, || async {
        let d = cms.get("reg-config").await.ok()?.data?;
        (d.get("CAIRN_LOG").map(String::as_str) == Some("warn")).then_some(())
    })
    .await?;

    eprintln!("api: pause checked after {:?}", started.elapsed());
    // A second cluster keeps its claims when deleted.
    let keep_spec = RegistryClusterSpec { replicas: 1, ..Default::default() };
    rcs.create(&PostParams::default(), &rc("keep", keep_spec)).await?;

    // Deletion: garbage collection removes the owned objects; claims follow whenDeleted.
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), NS);
    for claim in ["data-reg-0", "data-keep-0"] {
        poll_until(&format!("PVC {claim}"), WAIT, TICK, || async { pvcs.get_opt(claim).await.ok().flatten() }).await?;
    }
    // The StatefulSet controller marks claims it will delete with an owner reference to the StatefulSet.
    poll_until("PVC data-reg-0 owned by its StatefulSet", WAIT, TICK, || async {
        let p = pvcs.get("data-reg-0").await.ok()?;
        p.owner_references().iter().any(|o| o.kind == "StatefulSet").then_some(())
    })
    .await?;
    eprintln!("api: claims exist after {:?}", started.elapsed());
    rcs.delete("reg", &DeleteParams::default()).await?;
    rcs.delete("keep", &DeleteParams::default()).await?;
    let services: Api<Service> = Api::namespaced(admin.clone(), NS);
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    poll_until("owned objects garbage-collected", WAIT, TICK, || async {
        let none = stss.get_opt("reg").await.ok()?.is_none()
            && stss.get_opt("keep").await.ok()?.is_none()
            && services.get_opt("reg-headless").await.ok()?.is_none()
            && services.get_opt("reg").await.ok()?.is_none()
            && cms.get_opt("reg-config").await.ok()?.is_none()
            && secrets.get_opt("reg-auth").await.ok()?.is_none()
            && pdbs.get_opt("reg").await.ok()?.is_none()
            && pods.get_opt("reg-0").await.ok()?.is_none();
        none.then_some(())
    })
    .await?;
    eprintln!("api: owned objects collected after {:?}", started.elapsed());
    poll_until("claim of the Delete cluster removed", WAIT, TICK, || async {
        pvcs.get_opt("data-reg-0").await.ok()?.is_none().then_some(())
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(pvcs.get_opt("data-keep-0").await?.is_some(), "the Retain cluster's claim must stay");

    let text = op.metrics_text().await?;
    for m in [
        "cairn_operator_reconciles_total{result=\"ok\"}",
        "cairn_operator_reconcile_duration_seconds_count",
        "cairn_operator_leader 1",
    ] {
        ensure!(text.contains(m), "metric {m} missing:\n{text}");
    }
    op.stop().await?;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(admin, NS);
    let lease = leases.get("cairn-operator").await?;
    ensure!(lease.spec.and_then(|s| s.holder_identity).is_none(), "the lease is released on shutdown");
    binary_flags_and_sigterm(&cp).await?;
    eprintln!("api: done in {:?}", started.elapsed());
    Ok(())
}

/// The `cairn-operator` binary: configuration through `CAIRN_OPERATOR_*`, exit 64 on invalid
/// configuration, /readyz, and SIGTERM releasing the Lease.
async fn binary_flags_and_sigterm(cp: &cairn_kube_testkit::ControlPlane) -> anyhow::Result<()> {
    let bin = env!("CARGO_BIN_EXE_cairn-operator");
    let bad = std::process::Command::new(bin).arg("--lease-duration-seconds").arg("1").output()?;
    ensure!(bad.status.code() == Some(64), "invalid configuration must exit 64: {:?}", bad.status);
    let port = crate::support::free_port();
    let mut child = tokio::process::Command::new(bin)
        .env("KUBECONFIG", cp.kubeconfig_path())
        .env("CAIRN_OPERATOR_METRICS_BIND", format!("127.0.0.1:{port}"))
        .env("CAIRN_OPERATOR_WATCH_NAMESPACE", NS)
        .env("CAIRN_OPERATOR_LEASE_NAMESPACE", NS)
        .env("CAIRN_OPERATOR_LEASE_NAME", "binary")
        .env("CAIRN_OPERATOR_IDENTITY", "bin-1")
        .env("CAIRN_OPERATOR_LOG", "warn")
        .kill_on_drop(true)
        .spawn()?;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(cp.client(), NS);
    poll_until("binary ready and leading", WAIT, TICK, || async {
        let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await.ok()?.status().is_success();
        let holder = leases.get_opt("binary").await.ok()??.spec?.holder_identity?;
        (ready && holder == "bin-1").then_some(())
    })
    .await?;
    let pid = child.id().context("pid")?;
    let killed = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status()?;
    ensure!(killed.success(), "kill -TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await??;
    ensure!(status.success(), "SIGTERM must end the operator cleanly: {status:?}");
    let holder = leases.get("binary").await?.spec.and_then(|s| s.holder_identity);
    ensure!(holder.is_none(), "the lease must be released on SIGTERM: {holder:?}");
    Ok(())
}
