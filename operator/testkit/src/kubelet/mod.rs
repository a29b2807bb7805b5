//! A fake kubelet: real processes stand in for the Pods of one namespace + label selector.
//!
//! For every matching Pod without a deletionTimestamp (unbound, or bound to this kubelet's Node) it binds the
//! Pod to its Node, assigns a stable loopback IP per pod name, patches `phase=Running` + `podIP`, starts the
//! process built by the caller's closure (env `POD_NAME`, `POD_NAMESPACE`, `POD_IP`, `KUBECONFIG`), and mirrors
//! readiness from an HTTP probe into the `Ready`/`ContainersReady` conditions and container statuses. A process
//! that exits is restarted after [`FakeKubeletOptions::restart_delay`] (restartPolicy Always). When the Pod gets a
//! deletionTimestamp or disappears, the process is stopped (SIGTERM, SIGKILL after the grace period) and a
//! terminating Pod is then removed with grace period 0, so a StatefulSet can recreate it.
//!
//! The kubelet registers a Node (`cairn-fake-kubelet-<random>` unless [`FakeKubeletOptions::node_name`] is set,
//! status Ready) and renews its Lease in `kube-node-lease` every 10 s, so kube-controller-manager's node lifecycle
//! controller keeps the node Ready. After the kubelet is dropped the heartbeat stops: like a dead node, it turns
//! `Unknown` after the node-monitor grace period (~50 s) and its pods are marked NotReady. Kubelet events (starts,
//! exits, readiness changes, API errors) go to `kubelet.log` in [`FakeKubelet::logs_dir`]; with `CAIRN_TEST_LOG`
//! set they are also printed, and pod logs are printed on drop (also when the thread panics).

mod ip_pool;
mod node;
mod worker;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use nix::sys::signal::Signal;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use ip_pool::IpPool;

use crate::control_plane::ControlPlane;
use crate::error::{Error, Result};
use crate::process::signal_group;

/// The default readiness path (the cairn-node readiness probe).
pub const DEFAULT_READINESS_PATH: &str = "/nacos/v1/console/health/readiness";

/// What the command builder is told about the Pod it starts a process for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod UID (changes when the pod is re-created).
    pub uid: String,
    /// The pod's IP (stable per pod name) — bind the process to it.
    pub ip: Ipv4Addr,
    /// The StatefulSet ordinal: the number after the last `-` of the name, if any.
    pub ordinal: Option<u32>,
    /// A data directory that survives pod re-creation, like a PVC: keyed by the first PersistentVolumeClaim
    /// volume's claim name + the claim's UID (a deleted and re-created claim gives an empty dir), or by the pod
    /// name when the pod has no PVC volume. Created before the process starts.
    pub data_dir: PathBuf,
    /// The file the process's stdout and stderr are appended to.
    pub log_file: PathBuf,
}

/// What the fake kubelet knows about one pod's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessState {
    /// The pod as last started.
    pub info: PodInfo,
    /// The process id (= process group id) while a process runs.
    pub pid: Option<u32>,
    /// Readiness as last reported to the API server.
    pub ready: bool,
    /// How many times the process was restarted after exiting.
    pub restarts: u32,
}

/// Options of a [`FakeKubelet`].
#[derive(Debug, Clone)]
pub struct FakeKubeletOptions {
    /// Namespace whose Pods are run.
    pub namespace: String,
    /// Label selector of the Pods to run (e.g. `app=cairn`).
    pub label_selector: String,
    /// Loopback CIDR pod IPs come from (default `127.0.1.0/24`); use distinct pools for kubelets that run at the
    /// same time (parallel tests).
    pub ip_pool: String,
    /// Port of the HTTP readiness probe on the pod IP; `None`: a pod is ready as soon as its process runs.
    pub readiness_port: Option<u16>,
    /// Path of the readiness probe (default [`DEFAULT_READINESS_PATH`]); 2xx/3xx = ready.
    pub readiness_path: String,
    /// Probe period (default 200 ms).
    pub probe_interval: Duration,
    /// Upper bound of the SIGTERM → SIGKILL grace period (default 10 s; the pod's own deletion grace period is
    /// used when shorter).
    pub max_termination_grace: Duration,
    /// SIGKILL right away instead of SIGTERM on pod deletion (default false).
    pub kill_immediately: bool,
    /// Delay before an exited process is restarted (default 1 s).
    pub restart_delay: Duration,
    /// Root of the per-pod data directories (default: a temp dir removed when the kubelet is dropped).
    pub data_root: Option<PathBuf>,
    /// Node name (default `cairn-fake-kubelet-<random>`); the Node object is created if missing.
    pub node_name: Option<String>,
    /// `KUBECONFIG` given to the processes (default: the control plane's admin kubeconfig).
    pub process_kubeconfig: Option<PathBuf>,
}

impl FakeKubeletOptions {
    /// Options with defaults for `namespace` and `label_selector`.
    pub fn new(namespace: impl Into<String>, label_selector: impl Into<String>) -> Self {
        FakeKubeletOptions {
            namespace: namespace.into(),
            label_selector: label_selector.into(),
            ip_pool: "127.0.1.0/24".into(),
            readiness_port: None,
            readiness_path: DEFAULT_READINESS_PATH.into(),
            probe_interval: Duration::from_millis(200),
            max_termination_grace: Duration::from_secs(10),
            kill_immediately: false,
            restart_delay: Duration::from_secs(1),
            data_root: None,
            node_name: None,
            process_kubeconfig: None,
        }
    }
}

/// Builds the command of a pod's process. The kubelet adds env `POD_NAME`, `POD_NAMESPACE`, `POD_IP`,
/// `KUBECONFIG`, redirects stdin to null and stdout/stderr to [`PodInfo::log_file`], and runs it in its own
/// process group (program, args, env and current dir of the returned command are used).
pub type CommandBuilder = dyn Fn(&PodInfo) -> tokio::process::Command + Send + Sync;

/// State shared between the kubelet handle and its tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) pool: Mutex<IpPool>,
    pub(crate) processes: Mutex<HashMap<String, ProcessState>>,
}

impl Shared {
    pub(crate) fn processes(&self) -> MutexGuard<'_, HashMap<String, ProcessState>> {
        self.processes.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn pool(&self) -> MutexGuard<'_, IpPool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The fake kubelet; see the [module docs](self). Dropping it SIGKILLs every process it started (whole process
/// groups) and stops its tasks; [`FakeKubelet::shutdown`] stops them gracefully instead. Pods are left as they
/// are either way.
pub struct FakeKubelet {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    node_name: String,
    logs_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for FakeKubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKubelet").field("node_name", &self.node_name).finish()
    }
}

impl FakeKubelet {
    /// Starts a fake kubelet against `control_plane` (admin client; processes get its admin kubeconfig unless
    /// [`FakeKubeletOptions::process_kubeconfig`] is set).
    pub async fn start<F>(control_plane: &ControlPlane, options: FakeKubeletOptions, command: F) -> Result<FakeKubelet>
    where
        F: Fn(&PodInfo) -> tokio::process::Command + Send + Sync + 'static,
    {
        let kubeconfig = control_plane.kubeconfig_path().to_path_buf();
        Self::start_with_client(control_plane.client(), kubeconfig, options, command).await
    }

    /// Starts a fake kubelet with an explicit client (it needs to bind pods, patch pod status, delete pods, get
    /// PVCs, create a Node and renew a Lease) and default process kubeconfig.
    pub async fn start_with_client<F>(
        client: kube::Client,
        kubeconfig: PathBuf,
        options: FakeKubeletOptions,
        command: F,
    ) -> Result<FakeKubelet>
    where
        F: Fn(&PodInfo) -> tokio::process::Command + Send + Sync + 'static,
    {
        let pool = IpPool::parse(&options.ip_pool)?;
        let dir = tempfile::Builder::new()
            .prefix("cairn-kubelet-")
            .tempdir()
            .map_err(|e| Error::io("create temp dir", std::env::temp_dir(), e))?;
        let logs_dir = dir.path().join("logs");
        std::fs::create_dir_all(&logs_dir).map_err(|e| Error::io("create dir", &logs_dir, e))?;
        let data_root = options.data_root.clone().unwrap_or_else(|| dir.path().join("data"));
        std::fs::create_dir_all(&data_root).map_err(|e| Error::io("create dir", &data_root, e))?;
        let node_name = options.node_name.clone().unwrap_or_else(|| {
            let suffix: String = dir
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().trim_start_matches("cairn-kubelet-").to_lowercase())
                .unwrap_or_default()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            format!("cairn-fake-kubelet-{suffix}")
        });
        node::register(&client, &node_name).await?;

        let shared = Arc::new(Shared { pool: Mutex::new(pool), processes: Mutex::new(HashMap::new()) });
        let cancel = CancellationToken::new();
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(1)).no_proxy().build().map_err(|e| {
                Error::Spawn { program: "readiness HTTP client".into(), source: std::io::Error::other(e) }
            })?;
        let ctx = Arc::new(worker::Context {
            pods: Api::namespaced(client.clone(), &options.namespace),
            pvcs: Api::namespaced(client.clone(), &options.namespace),
            kubeconfig: options.process_kubeconfig.clone().unwrap_or(kubeconfig),
            options,
            node_name: node_name.clone(),
            command: Arc::new(command),
            shared: shared.clone(),
            http,
            logs_dir: logs_dir.clone(),
            data_root,
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(node::heartbeat(client, node_name.clone(), cancel.clone()));
        tasks.spawn(watch_pods(ctx, cancel.clone()));
        Ok(FakeKubelet { shared, cancel, tasks, node_name, logs_dir, _dir: dir })
    }

    /// The Node name this kubelet binds pods to.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// SIGKILLs the process group of `pod_name`, simulating a crash: the pod stays, the process is restarted
    /// after [`FakeKubeletOptions::restart_delay`] (readiness drops meanwhile).
    pub fn kill9(&self, pod_name: &str) -> Result<()> {
        let pid = self
            .shared
            .processes()
            .get(pod_name)
            .and_then(|p| p.pid)
            .ok_or_else(|| Error::PodNotRunning { pod: pod_name.to_string() })?;
        let pgid = i32::try_from(pid).map_err(|_| Error::PodNotRunning { pod: pod_name.to_string() })?;
        signal_group(pgid, Signal::SIGKILL)
    }

    /// The process state of `pod_name` (`None` when the kubelet never started it).
    pub fn process(&self, pod_name: &str) -> Option<ProcessState> {
        self.shared.processes().get(pod_name).cloned()
    }

    /// Names of the pods whose process is running now, sorted.
    pub fn running_pods(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.shared.processes().iter().filter(|(_, p)| p.pid.is_some()).map(|(n, _)| n.clone()).collect();
        names.sort();
        names
    }

    /// The IP assigned to `pod_name`, if any.
    pub fn pod_ip(&self, pod_name: &str) -> Option<Ipv4Addr> {
        self.shared.pool().assigned(pod_name)
    }

    /// The log file of `pod_name`'s process (it exists once the process was started).
    pub fn log_file(&self, pod_name: &str) -> PathBuf {
        worker::log_file(&self.logs_dir, pod_name)
    }

    /// Directory of the process log files.
    pub fn logs_dir(&self) -> &Path {
        &self.logs_dir
    }

    /// Stops every process gracefully (SIGTERM, then SIGKILL after the grace period) and the kubelet's tasks.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.cancel.cancel();
        let print = std::env::var_os("CAIRN_TEST_LOG").is_some() || std::thread::panicking();
        for (name, process) in self.shared.processes().iter() {
            if let Some(pgid) = process.pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = signal_group(pgid, Signal::SIGKILL);
            }
            if print {
                let log = &process.info.log_file;
                eprintln!("===== pod {name} log ({}) =====\n{}", log.display(), crate::process::log_tail(log, 60));
            }
        }
        self.tasks.abort_all();
    }
}

/// Watches the selected pods and feeds each pod name's worker the latest object (`None` once gone).
async fn watch_pods(ctx: Arc<worker::Context>, cancel: CancellationToken) {
    let config = watcher::Config::default().labels(&ctx.options.label_selector);
    let mut events = watcher(ctx.pods.clone(), config).default_backoff().boxed();
    let mut workers: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut listed: Option<HashSet<String>> = None;
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => break,
            event = events.next() => event,
        };
        match event {
            None => break,
            Some(Err(e)) => tracing::warn!(error = %e, "fake kubelet pod watch error (retrying)"),
            Some(Ok(watcher::Event::Init)) => listed = Some(HashSet::new()),
            Some(Ok(watcher::Event::InitApply(pod))) | Some(Ok(watcher::Event::Apply(pod))) => {
                let name = pod.metadata.name.clone().unwrap_or_default();
                if let Some(listed) = listed.as_mut() {
                    listed.insert(name.clone());
                }
                dispatch(&ctx, &cancel, &mut workers, &mut tasks, name, Some(pod));
            }
            Some(Ok(watcher::Event::Delete(pod))) => {
                let name = pod.metadata.name.clone().unwrap_or_default();
                dispatch(&ctx, &cancel, &mut workers, &mut tasks, name, None);
            }
            Some(Ok(watcher::Event::InitDone)) => {
                if let Some(listed) = listed.take() {
                    let gone: Vec<String> = workers.keys().filter(|n| !listed.contains(*n)).cloned().collect();
                    for name in gone {
                        dispatch(&ctx, &cancel, &mut workers, &mut tasks, name, None);
                    }
                }
            }
        }
    }
    // Workers see the same cancellation and stop their processes; wait for them.
    cancel.cancel();
    while tasks.join_next().await.is_some() {}
}

/// Hands `pod` (or its absence) to the worker of `name`, starting a worker for a name seen for the first time.
fn dispatch(
    ctx: &Arc<worker::Context>,
    cancel: &CancellationToken,
    workers: &mut HashMap<String, watch::Sender<Option<Pod>>>,
    tasks: &mut JoinSet<()>,
    name: String,
    pod: Option<Pod>,
) {
    if let Some(tx) = workers.get(&name) {
        tx.send_replace(pod);
    } else if pod.is_some() {
        let (tx, rx) = watch::channel(pod);
        tasks.spawn(worker::Worker::new(name.clone(), ctx.clone(), rx, cancel.clone()).run());
        workers.insert(name, tx);
    }
}
