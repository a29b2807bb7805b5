//! Shared helpers: control plane with the CRD, the operator in-process, waiting.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use cairn_kube_testkit::{ControlPlane, ControlPlaneOptions, poll_until, tools};
use cairn_operator::crd::{CRD_FILE, RegistryCluster, RegistryClusterStatus};
use cairn_operator::{Addressing, OperatorConfig};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Default wait for something the operator should do.
pub const WAIT: Duration = Duration::from_secs(60);
/// Poll interval.
pub const TICK: Duration = Duration::from_millis(150);

/// Logs of the operator under test when `CAIRN_TEST_LOG` is set.
pub fn init_logs() {
    if let Ok(filter) = std::env::var("CAIRN_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Starts a control plane with kube-controller-manager and the committed CRD installed, or `None`
/// (after a loud `SKIPPED:` from the testkit) without the tools.
pub async fn control_plane() -> anyhow::Result<Option<ControlPlane>> {
    init_logs();
    let Some(tools) = tools() else { return Ok(None) };
    let cp = ControlPlane::start(&tools, ControlPlaneOptions::with_controller_manager()).await?;
    install_crd(&cp.client()).await?;
    Ok(Some(cp))
}

/// Applies the committed CRD file (not the Rust types: the file is what users install) and waits until
/// it is Established.
pub async fn install_crd(client: &Client) -> anyhow::Result<()> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(CRD_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let crd: CustomResourceDefinition = serde_yaml::from_str(&text)?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.patch("registryclusters.cairn.dev", &PatchParams::apply("cairn-test").force(), &Patch::Apply(&crd))
        .await
        .context("apply the RegistryCluster CRD")?;
    poll_until("CRD established", WAIT, TICK, || async {
        let crd = api.get("registryclusters.cairn.dev").await.ok()?;
        let conds = crd.status?.conditions?;
        conds.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
    })
    .await?;
    // Discovery of the new group can lag the Established condition a little.
    let rcs: Api<RegistryCluster> = Api::all(client.clone());
    poll_until("RegistryCluster listable", WAIT, TICK, || async { rcs.list(&Default::default()).await.ok() }).await?;
    Ok(())
}

/// A client authenticating as ServiceAccount `<ns>/cairn-operator` bound to exactly the ClusterRole of
/// [`cairn_operator::rbac::operator_rules`].
pub async fn operator_client(cp: &ControlPlane, ns: &str) -> anyhow::Result<Client> {
    let c = cp.client();
    let pp = PostParams::default();
    let sa = ServiceAccount {
        metadata: ObjectMeta { name: Some("cairn-operator".into()), ..Default::default() },
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(c.clone(), ns).create(&pp, &sa).await?;
    let role = cairn_operator::rbac::operator_cluster_role(&format!("cairn-operator-{ns}"));
    Api::all(c.clone()).create(&pp, &role).await?;
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta { name: Some(format!("cairn-operator-{ns}")), ..Default::default() },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: format!("cairn-operator-{ns}"),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "cairn-operator".into(),
            namespace: Some(ns.into()),
            ..Default::default()
        }]),
    };
    Api::<ClusterRoleBinding>::all(c).create(&pp, &binding).await?;
    Ok(cp.client_for_service_account(ns, "cairn-operator").await?)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Operator configuration for tests: one namespace, Lease in it, metrics on a free port.
pub fn operator_config(ns: &str, identity: &str, addressing: Addressing) -> OperatorConfig {
    let mut c = OperatorConfig::defaults();
    c.metrics_bind = SocketAddr::from(([127, 0, 0, 1], free_port()));
    c.watch_namespace = Some(ns.into());
    c.lease_namespace = Some(ns.into());
    c.lease_duration_seconds = 6;
    c.identity = Some(identity.into());
    c.member_addressing = addressing;
    c.default_node_image = "cairn/cairn-node:test".into();
    c.node_timeout_ms = 5_000;
    c.resync_seconds = 3;
    c
}

/// An operator running in-process.
pub struct RunningOperator {
    token: CancellationToken,
    handle: JoinHandle<cairn_operator::Result<()>>,
    /// Address of its /metrics.
    pub metrics: SocketAddr,
}

impl RunningOperator {
    /// Starts `cairn_operator::run` on a task.
    pub fn start(client: Client, config: OperatorConfig) -> Self {
        let token = CancellationToken::new();
        let metrics = config.metrics_bind;
        let handle = tokio::spawn(cairn_operator::run(config, client, token.clone()));
        Self { token, handle, metrics }
    }

    /// SIGTERM-like graceful stop; returns what `run` returned.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.token.cancel();
        let r =
            tokio::time::timeout(Duration::from_secs(30), self.handle).await.context("operator stop timed out")??;
        r.map_err(|e| anyhow!("operator ended with an error: {e}"))
    }

    /// The text of its /metrics.
    pub async fn metrics_text(&self) -> anyhow::Result<String> {
        Ok(reqwest::get(format!("http://{}/metrics", self.metrics)).await?.text().await?)
    }

    /// Whether its `cairn_operator_leader` gauge is 1.
    pub async fn is_leader(&self) -> bool {
        self.metrics_text().await.is_ok_and(|t| t.lines().any(|l| l.trim() == "cairn_operator_leader 1"))
    }
}

/// The status of RegistryCluster `name`.
pub async fn status(api: &Api<RegistryCluster>, name: &str) -> Option<RegistryClusterStatus> {
    api.get_opt(name).await.ok().flatten()?.status
}

/// Waits until the status of `name` satisfies `check`.
pub async fn wait_status(
    api: &Api<RegistryCluster>,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&RegistryClusterStatus) -> bool,
) -> anyhow::Result<RegistryClusterStatus> {
    let what = format!("RegistryCluster {name}: {what}");
    let r = poll_until(&what, timeout, TICK, || async { status(api, name).await.filter(|s| check(s)) }).await;
    match r {
        Ok(s) => Ok(s),
        Err(e) => {
            let last = status(api, name).await;
            Err(anyhow!("{e}; last status: {}", serde_json::to_string_pretty(&last).unwrap_or_default()))
        }
    }
}

/// The status and reason of condition `t`.
pub fn condition(s: &RegistryClusterStatus, t: &str) -> Option<(String, String)> {
    s.conditions.iter().find(|c| c.type_ == t).map(|c| (c.status.clone(), c.reason.clone()))
}
