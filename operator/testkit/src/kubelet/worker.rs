//! The worker of one pod name: runs at most one process for it at a time, so a re-created pod with the same name
//! starts only after the previous incarnation's process has stopped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Binding, ObjectReference, PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions};
use nix::sys::signal::Signal;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{CommandBuilder, FakeKubeletOptions, PodInfo, ProcessState, Shared};
use crate::error::{Error, Result};
use crate::pod_status::{PodState, status_patch};
use crate::process::{open_log, setpriv, signal_group};

/// Everything the workers share.
pub(crate) struct Context {
    pub(crate) pods: Api<Pod>,
    pub(crate) pvcs: Api<PersistentVolumeClaim>,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) options: FakeKubeletOptions,
    pub(crate) node_name: String,
    pub(crate) command: Arc<CommandBuilder>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) http: reqwest::Client,
    pub(crate) logs_dir: PathBuf,
    pub(crate) data_root: PathBuf,
}

impl Context {
    /// Appends a line to the kubelet's own log (`kubelet.log` in the logs dir); echoed to stderr when
    /// `CAIRN_TEST_LOG` is set.
    pub(crate) fn note(&self, message: &str) {
        let line = format!("{} {}: {message}", Timestamp::now(), self.node_name);
        if std::env::var_os("CAIRN_TEST_LOG").is_some() {
            eprintln!("{line}");
        }
        if let Ok(mut file) = open_log(&self.logs_dir.join("kubelet.log")) {
            let _ = writeln!(file, "{line}");
        }
    }
}

/// The log file of a pod's process.
pub(crate) fn log_file(logs_dir: &Path, pod_name: &str) -> PathBuf {
    logs_dir.join(format!("{pod_name}.log"))
}

/// One incarnation (UID) of the pod with a process.
struct Instance {
    pod: Pod,
    uid: String,
    info: PodInfo,
    child: Option<tokio::process::Child>,
    pid: Option<u32>,
    ready: bool,
    restarts: u32,
    restart_at: Option<Instant>,
    started_at: String,
}

enum Wake {
    Stop,
    Changed,
    Exited(std::io::Result<ExitStatus>),
    Restart,
    Probe,
}

/// Drives the process of one pod name from the stream of that pod's latest object.
pub(crate) struct Worker {
    name: String,
    ctx: Arc<Context>,
    rx: watch::Receiver<Option<Pod>>,
    cancel: CancellationToken,
    current: Option<Instance>,
    retry_at: Option<Instant>,
    deleted_uid: Option<String>,
}

async fn wait_child(current: &mut Option<Instance>) -> std::io::Result<ExitStatus> {
    match current.as_mut().and_then(|i| i.child.as_mut()) {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn ordinal(name: &str) -> Option<u32> {
    name.rsplit_once('-').and_then(|(_, n)| n.parse().ok())
}

impl Worker {
    pub(crate) fn new(
        name: String,
        ctx: Arc<Context>,
        rx: watch::Receiver<Option<Pod>>,
        cancel: CancellationToken,
    ) -> Worker {
        Worker { name, ctx, rx, cancel, current: None, retry_at: None, deleted_uid: None }
    }

    pub(crate) async fn run(mut self) {
        let mut probe = tokio::time::interval(self.ctx.options.probe_interval);
        probe.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut dirty = true;
        loop {
            if dirty {
                let desired = self.rx.borrow_and_update().clone();
                self.reconcile(desired).await;
                dirty = false;
            }
            let restart_at = self.current.as_ref().and_then(|c| c.restart_at);
            let retry_at = self.retry_at;
            let has_child = self.current.as_ref().is_some_and(|c| c.child.is_some());
            let wake = tokio::select! {
                _ = self.cancel.cancelled() => Wake::Stop,
                changed = self.rx.changed() => if changed.is_ok() { Wake::Changed } else { Wake::Stop },
                status = wait_child(&mut self.current) => Wake::Exited(status),
                _ = sleep_until_opt(restart_at) => Wake::Restart,
                _ = sleep_until_opt(retry_at) => Wake::Changed,
                _ = probe.tick(), if has_child => Wake::Probe,
            };
            match wake {
                Wake::Stop => break,
                Wake::Changed => {
                    self.retry_at = None;
                    dirty = true;
                }
                Wake::Exited(status) => self.on_exit(status).await,
                Wake::Restart => self.restart().await,
                Wake::Probe => self.probe().await,
            }
        }
        self.stop(self.ctx.options.max_termination_grace).await;
    }

    fn retry_later(&mut self, what: &str, error: &Error) {
        self.ctx.note(&format!("pod {}: {what} failed, retrying in 1s: {error}", self.name));
        self.retry_at = Some(Instant::now() + Duration::from_secs(1));
    }

    async fn reconcile(&mut self, desired: Option<Pod>) {
        let max_grace = self.ctx.options.max_termination_grace;
        let Some(pod) = desired else {
            if self.current.is_some() {
                self.ctx.note(&format!("pod {} is gone: stopping its process", self.name));
                self.stop(max_grace).await;
            }
            return;
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let bound_to = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        if bound_to.as_deref().is_some_and(|n| n != self.ctx.node_name) {
            // Another kubelet's pod.
            self.stop(max_grace).await;
            return;
        }
        if self.current.as_ref().is_some_and(|c| c.uid != uid) {
            self.ctx.note(&format!("pod {} was re-created (uid {uid}): stopping the old process", self.name));
            self.stop(max_grace).await;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .map_or(max_grace, |s| Duration::from_secs(u64::try_from(s).unwrap_or(0)).min(max_grace));
            if self.current.is_some() {
                self.ctx.note(&format!("pod {} is terminating: stopping its process (grace {grace:?})", self.name));
                self.stop(grace).await;
            }
            let finalizers = pod.metadata.finalizers.as_ref().is_some_and(|f| !f.is_empty());
            if bound_to.is_some() && !finalizers && self.deleted_uid.as_deref() != Some(uid.as_str()) {
                match self.remove(&uid).await {
                    Ok(()) => self.deleted_uid = Some(uid),
                    Err(e) => self.retry_later("final delete", &e),
                }
            }
            return;
        }
        match self.current.as_mut() {
            Some(current) => current.pod = pod,
            None => {
                if let Err(e) = self.admit(pod).await {
                    self.retry_later("start", &e);
                }
            }
        }
    }

    /// Deletes the terminating pod with grace period 0 (only this UID).
    async fn remove(&self, uid: &str) -> Result<()> {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
            ..Default::default()
        };
        match self.ctx.pods.delete(&self.name, &params).await {
            Ok(_) => {
                self.ctx.note(&format!("pod {} (uid {uid}) removed", self.name));
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(Error::kube(format!("delete pod {}", self.name), e)),
        }
    }

    async fn bind(&self, uid: &str) -> Result<()> {
        let binding = Binding {
            metadata: ObjectMeta { name: Some(self.name.clone()), uid: Some(uid.to_string()), ..Default::default() },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(self.ctx.node_name.clone()),
                ..Default::default()
            },
        };
        self.ctx
            .pods
            .create_subresource::<_, serde_json::Value>("binding", &self.name, &PostParams::default(), &binding)
            .await
            .map(drop)
            .map_err(|e| Error::kube(format!("bind pod {} to node {}", self.name, self.ctx.node_name), e))
    }

    async fn data_dir(&self, pod: &Pod) -> Result<PathBuf> {
        let claim =
            pod.spec.as_ref().and_then(|s| s.volumes.as_ref()).and_then(|vs| {
                vs.iter().find_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.clone()))
            });
        let key = match claim {
            None => self.name.clone(),
            Some(claim) => {
                let pvc = self.ctx.pvcs.get(&claim).await.map_err(|e| Error::kube(format!("get pvc {claim}"), e))?;
                let uid = pvc.metadata.uid.unwrap_or_default();
                format!("{claim}-{}", &uid[..uid.len().min(8)])
            }
        };
        let dir = self.ctx.data_root.join(key);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create dir", &dir, e))?;
        Ok(dir)
    }

    async fn admit(&mut self, pod: Pod) -> Result<()> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() {
            match self.bind(&uid).await {
                Ok(()) => {}
                // Bound meanwhile (by us or someone else): the watch brings the bound pod.
                Err(e) if e.is_api_status(409) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        let ip = self
            .ctx
            .shared
            .pool()
            .ip_for(&self.name)
            .ok_or_else(|| Error::InvalidIpPool { pool: self.ctx.options.ip_pool.clone(), reason: "exhausted" })?;
        let data_dir = self.data_dir(&pod).await?;
        let info = PodInfo {
            name: self.name.clone(),
            namespace: self.ctx.options.namespace.clone(),
            uid: uid.clone(),
            ip,
            ordinal: ordinal(&self.name),
            data_dir,
            log_file: log_file(&self.ctx.logs_dir, &self.name),
        };
        let mut instance = Instance {
            pod,
            uid,
            info,
            child: None,
            pid: None,
            ready: false,
            restarts: 0,
            restart_at: None,
            started_at: Timestamp::now().to_string(),
        };
        self.patch_status(&instance, false).await?;
        self.ctx.note(&format!("pod {} (uid {}) running on {ip}", self.name, instance.uid));
        if let Err(e) = self.spawn(&mut instance) {
            self.ctx.note(&format!("pod {}: {e}; retrying after the restart delay", self.name));
            instance.restart_at = Some(Instant::now() + self.ctx.options.restart_delay);
        }
        self.publish(&instance);
        self.current = Some(instance);
        Ok(())
    }

    fn spawn(&self, instance: &mut Instance) -> Result<()> {
        let info = &instance.info;
        let user = (self.ctx.command)(info);
        let std_cmd = user.as_std();
        let mut cmd = match setpriv() {
            Some(setpriv) => {
                let mut cmd = tokio::process::Command::new(setpriv);
                cmd.args(["--pdeathsig", "KILL", "--"]).arg(std_cmd.get_program());
                cmd
            }
            None => tokio::process::Command::new(std_cmd.get_program()),
        };
        cmd.args(std_cmd.get_args());
        for (key, value) in std_cmd.get_envs() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        if let Some(dir) = std_cmd.get_current_dir() {
            cmd.current_dir(dir);
        }
        cmd.env("POD_NAME", &info.name)
            .env("POD_NAMESPACE", &info.namespace)
            .env("POD_IP", info.ip.to_string())
            .env("KUBECONFIG", &self.ctx.kubeconfig);
        let mut log = open_log(&info.log_file)?;
        let _ = writeln!(
            log,
            "===== fake kubelet: start pod {} (uid {}, restart {}) at {} =====",
            info.name,
            instance.uid,
            instance.restarts,
            Timestamp::now()
        );
        let err = log.try_clone().map_err(|e| Error::io("clone log handle", &info.log_file, e))?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(err).process_group(0).kill_on_drop(true);
        let program = std_cmd.get_program().to_string_lossy().into_owned();
        let child = cmd.spawn().map_err(|source| Error::Spawn { program, source })?;
        instance.pid = child.id();
        instance.child = Some(child);
        Ok(())
    }

    fn publish(&self, instance: &Instance) {
        let state = ProcessState {
            info: instance.info.clone(),
            pid: instance.child.as_ref().and(instance.pid),
            ready: instance.ready,
            restarts: instance.restarts,
        };
        self.ctx.shared.processes().insert(self.name.clone(), state);
    }

    async fn patch_status(&self, instance: &Instance, ready: bool) -> Result<()> {
        let state = PodState::running(instance.info.ip.to_string(), ready);
        let mut patch = status_patch(&instance.pod, &state, Some(&instance.started_at), instance.restarts);
        // A UID in the patch is a precondition: never touch a re-created pod of the same name.
        patch["metadata"] = serde_json::json!({ "uid": instance.uid });
        self.ctx
            .pods
            .patch_status(&self.name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .map(drop)
            .map_err(|e| Error::kube(format!("patch status of pod {}", self.name), e))
    }

    async fn on_exit(&mut self, status: std::io::Result<ExitStatus>) {
        let Some(mut instance) = self.current.take() else { return };
        instance.child = None;
        if let Some(pgid) = instance.pid.and_then(|p| i32::try_from(p).ok()) {
            // Descendants of the process are part of the container too.
            let _ = signal_group(pgid, Signal::SIGKILL);
        }
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        self.ctx.note(&format!("pod {}: process exited ({status}); restarting after the delay", self.name));
        if let Ok(mut log) = open_log(&instance.info.log_file) {
            let _ = writeln!(log, "===== fake kubelet: process exited ({status}) =====");
        }
        instance.restart_at = Some(Instant::now() + self.ctx.options.restart_delay);
        if instance.ready {
            instance.ready = false;
            if let Err(e) = self.patch_status(&instance, false).await {
                self.ctx.note(&format!("pod {}: {e}", self.name));
            }
        }
        self.publish(&instance);
        self.current = Some(instance);
    }

    async fn restart(&mut self) {
        let Some(mut instance) = self.current.take() else { return };
        instance.restart_at = None;
        instance.restarts += 1;
        instance.started_at = Timestamp::now().to_string();
        if let Err(e) = self.spawn(&mut instance) {
            self.ctx.note(&format!("pod {}: {e}; retrying after the restart delay", self.name));
            instance.restart_at = Some(Instant::now() + self.ctx.options.restart_delay);
        } else if let Err(e) = self.patch_status(&instance, false).await {
            self.ctx.note(&format!("pod {}: {e}", self.name));
        }
        self.publish(&instance);
        self.current = Some(instance);
    }

    async fn probe(&mut self) {
        let Some(instance) = self.current.as_ref() else { return };
        let ready = match self.ctx.options.readiness_port {
            None => true,
            Some(port) => {
                let url = format!("http://{}:{port}{}", instance.info.ip, self.ctx.options.readiness_path);
                match self.ctx.http.get(url).send().await {
                    Ok(resp) => resp.status().is_success() || resp.status().is_redirection(),
                    Err(_) => false,
                }
            }
        };
        if ready == instance.ready {
            return;
        }
        match self.patch_status(instance, ready).await {
            Ok(()) => {
                self.ctx.note(&format!("pod {} ready={ready}", self.name));
                if let Some(instance) = self.current.as_mut() {
                    instance.ready = ready;
                }
                if let Some(instance) = self.current.as_ref() {
                    self.publish(instance);
                }
            }
            Err(e) => self.ctx.note(&format!("pod {}: {e}", self.name)),
        }
    }

    /// Stops the current process (SIGTERM, SIGKILL after `grace`; SIGKILL at once with `kill_immediately`).
    async fn stop(&mut self, grace: Duration) {
        let Some(mut instance) = self.current.take() else { return };
        if let Some(mut child) = instance.child.take() {
            let pgid = instance.pid.and_then(|p| i32::try_from(p).ok());
            if let Some(pgid) = pgid {
                if self.ctx.options.kill_immediately || grace.is_zero() {
                    let _ = signal_group(pgid, Signal::SIGKILL);
                } else {
                    let _ = signal_group(pgid, Signal::SIGTERM);
                    if tokio::time::timeout(grace, child.wait()).await.is_err() {
                        self.ctx.note(&format!("pod {}: no exit {grace:?} after SIGTERM, SIGKILL", self.name));
                        let _ = signal_group(pgid, Signal::SIGKILL);
                    }
                }
            }
            let status = child.wait().await;
            if let Some(pgid) = pgid {
                let _ = signal_group(pgid, Signal::SIGKILL);
            }
            let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
            if let Ok(mut log) = open_log(&instance.info.log_file) {
                let _ = writeln!(log, "===== fake kubelet: process stopped ({status}) =====");
            }
        }
        instance.ready = false;
        instance.restart_at = None;
        self.publish(&instance);
    }
}

#[cfg(test)]
mod tests {
    use super::ordinal;

    #[test]
    fn ordinals() {
        assert_eq!(ordinal("cairn-0"), Some(0));
        assert_eq!(ordinal("my-cluster-12"), Some(12));
        assert_eq!(ordinal("standalone"), None);
        assert_eq!(ordinal("web-x"), None);
    }
}
