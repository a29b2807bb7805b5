//! Runs real `cairn-node` processes for the operator's pods (through the testkit's fake kubelet)
//! with the environment the operator put into the pod: the container's `env` (with `$(VAR)`
//! expansion and the downward-API fields) over the ConfigMap of `envFrom`. Only what a process on
//! a shared loopback needs is overridden: the bind address (the pod IP) and the data directory
//! (the fake kubelet's per-claim directory).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_kube_testkit::{PodInfo, require_all};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, EnvVar, Pod};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;

/// The `cairn-node` binary: `$CAIRN_NODE_BIN`, else `cairn-node` next to the test binary's profile dir
/// (`<target>/debug/cairn-node`, built by `./test.sh`). `None` (after `SKIPPED:`) when absent or when it
/// lacks `k8s:` member discovery; a failure under `CAIRN_REQUIRE_ALL=1`.
pub fn node_binary() -> Option<PathBuf> {
    let path = std::env::var_os("CAIRN_NODE_BIN").map(PathBuf::from).or_else(|| {
        let exe = std::env::current_exe().ok()?;
        Some(exe.parent()?.parent()?.join("cairn-node"))
    })?;
    let skip = |why: String| {
        assert!(!require_all(), "CAIRN_REQUIRE_ALL=1 but {why}");
        eprintln!("SKIPPED: {why}");
        None
    };
    if !path.is_file() {
        return skip(format!(
            "{} not found (build it with `cargo build --bins`, or set CAIRN_NODE_BIN)",
            path.display()
        ));
    }
    let help = std::process::Command::new(&path).arg("--help").output().ok()?;
    let text = String::from_utf8_lossy(&help.stdout);
    if !text.contains("--auto-join") || !text.contains("--peer-domain") {
        return skip(format!("{} has no k8s: member discovery (--auto-join/--peer-domain) yet", path.display()));
    }
    Some(path)
}

#[derive(Default)]
struct Source {
    by_uid: HashMap<String, Vec<EnvVar>>,
    template: Vec<EnvVar>,
    config: BTreeMap<String, String>,
}

/// The pods' environment, refreshed from the API server in the background.
#[derive(Clone)]
pub struct NodeEnv {
    source: Arc<Mutex<Source>>,
    node_bin: PathBuf,
    stop: CancellationToken,
}

fn container_env(env: Option<&Vec<EnvVar>>) -> Vec<EnvVar> {
    env.cloned().unwrap_or_default()
}

impl NodeEnv {
    /// Starts refreshing from pods, StatefulSet `sts` and ConfigMap `config_map` of `ns`.
    pub fn start(client: Client, ns: &str, sts: &str, config_map: &str, node_bin: &Path) -> Self {
        let env = Self { source: Arc::default(), node_bin: node_bin.to_owned(), stop: CancellationToken::new() };
        let (source, stop) = (env.source.clone(), env.stop.clone());
        let (pods, stss, cms): (Api<Pod>, Api<StatefulSet>, Api<ConfigMap>) =
            (Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns), Api::namespaced(client, ns));
        let (sts, config_map) = (sts.to_owned(), config_map.to_owned());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    let mut s = source.lock().unwrap_or_else(|e| e.into_inner());
                    for p in list.items {
                        let env =
                            p.spec.as_ref().and_then(|s| s.containers.first()).map(|c| container_env(c.env.as_ref()));
                        if let (Some(uid), Some(env)) = (p.uid(), env) {
                            s.by_uid.insert(uid, env);
                        }
                    }
                }
                if let Ok(Some(st)) = stss.get_opt(&sts).await {
                    let env = st.spec.and_then(|s| s.template.spec).and_then(|s| s.containers.into_iter().next());
                    source.lock().unwrap_or_else(|e| e.into_inner()).template =
                        container_env(env.and_then(|c| c.env).as_ref());
                }
                if let Ok(Some(cm)) = cms.get_opt(&config_map).await {
                    source.lock().unwrap_or_else(|e| e.into_inner()).config = cm.data.unwrap_or_default();
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        });
        env
    }

    /// Stops the background refresh.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// The environment of `pod`'s node process.
    pub fn env_for(&self, pod: &PodInfo) -> BTreeMap<String, String> {
        let s = self.source.lock().unwrap_or_else(|e| e.into_inner());
        let container = s.by_uid.get(&pod.uid).unwrap_or(&s.template);
        let mut out: BTreeMap<String, String> = s.config.clone();
        for e in container {
            let value = match (&e.value, &e.value_from) {
                (Some(v), _) => expand(v, &out),
                (None, Some(from)) => match from.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                    Some("metadata.name") => pod.name.clone(),
                    Some("metadata.namespace") => pod.namespace.clone(),
                    Some("status.podIP") => pod.ip.to_string(),
                    _ => continue,
                },
                (None, None) => String::new(),
            };
            out.insert(e.name.clone(), value);
        }
        out.insert("CAIRN_BIND".into(), pod.ip.to_string());
        out.insert("CAIRN_DATA_DIR".into(), pod.data_dir.display().to_string());
        out.entry("CAIRN_LOG".into())
            .or_insert_with(|| std::env::var("CAIRN_TEST_LOG").unwrap_or_else(|_| "warn".into()));
        out
    }

    /// The command for `pod`.
    pub fn command(&self, pod: &PodInfo) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.node_bin);
        cmd.envs(self.env_for(pod));
        cmd
    }
}

/// `$(NAME)` expansion as the kubelet does it (unknown names stay as written).
fn expand(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find(')') {
            Some(end) if vars.contains_key(&after[..end]) => {
                out.push_str(&vars[&after[..end]]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("$(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn expansion() {
    let vars = BTreeMap::from([("POD_IP".to_owned(), "127.0.0.9".to_owned())]);
    assert_eq!(expand("$(POD_IP)", &vars), "127.0.0.9");
    assert_eq!(expand("a.$(POD_IP):1", &vars), "a.127.0.0.9:1");
    assert_eq!(expand("$(NOPE).x", &vars), "$(NOPE).x");
}
