//! Driving Pod status by hand (there is no real kubelet): phase, IP and readiness through the status subresource.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// A Pod phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// Accepted, containers not running yet.
    Pending,
    /// Bound and containers running.
    Running,
    /// All containers terminated successfully.
    Succeeded,
    /// All containers terminated, at least one in failure.
    Failed,
    /// State unknown.
    Unknown,
}

impl PodPhase {
    /// The API string (`"Running"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
            PodPhase::Unknown => "Unknown",
        }
    }
}

/// The status a test wants a Pod to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodState {
    /// `status.phase`.
    pub phase: PodPhase,
    /// `status.podIP` / `status.podIPs` (`None` leaves them unset / removes them).
    pub pod_ip: Option<String>,
    /// The `Ready` and `ContainersReady` conditions and every container status' `ready`.
    pub ready: bool,
}

impl PodState {
    /// Running with `ip`, ready or not.
    pub fn running(ip: impl Into<String>, ready: bool) -> PodState {
        PodState { phase: PodPhase::Running, pod_ip: Some(ip.into()), ready }
    }
}

fn condition(kind: &str, status: bool, now: &str) -> Value {
    json!({"type": kind, "status": if status { "True" } else { "False" }, "lastTransitionTime": now,
           "lastProbeTime": null})
}

/// The strategic-merge status patch that gives `pod` the state `state`. `started_at` is the RFC 3339 start time
/// of the containers when running; `restart_count` goes into every container status.
pub(crate) fn status_patch(pod: &Pod, state: &PodState, started_at: Option<&str>, restart_count: u32) -> Value {
    let now = Timestamp::now().to_string();
    let running = state.phase == PodPhase::Running;
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
    let container_statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            let state_value = match (state.phase, started_at) {
                (PodPhase::Running, Some(at)) => json!({"running": {"startedAt": at}}),
                (PodPhase::Running, None) => json!({"running": {"startedAt": now}}),
                (PodPhase::Succeeded, _) => json!({"terminated": {"exitCode": 0, "reason": "Completed"}}),
                (PodPhase::Failed, _) => json!({"terminated": {"exitCode": 1, "reason": "Error"}}),
                _ => json!({"waiting": {"reason": "ContainerCreating"}}),
            };
            json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_else(|| "fake".into()),
                "imageID": "",
                "ready": state.ready && running,
                "started": running,
                "restartCount": restart_count,
                "state": state_value,
            })
        })
        .collect();
    let mut status = json!({
        "phase": state.phase.as_str(),
        "conditions": [
            condition("PodScheduled", true, &now),
            condition("Initialized", true, &now),
            condition("PodReadyToStartContainers", running, &now),
            condition("ContainersReady", state.ready && running, &now),
            condition("Ready", state.ready && running, &now),
        ],
        "containerStatuses": container_statuses,
    });
    match &state.pod_ip {
        Some(ip) => {
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{ "ip": ip }]);
            status["hostIP"] = json!("127.0.0.1");
            status["hostIPs"] = json!([{ "ip": "127.0.0.1" }]);
        }
        None => {
            status["podIP"] = Value::Null;
            status["podIPs"] = Value::Null;
        }
    }
    if running && pod.status.as_ref().and_then(|s| s.start_time.as_ref()).is_none() {
        status["startTime"] = json!(now);
    }
    json!({ "status": status })
}

/// Sets the status of Pod `namespace/name` to `state` (phase, IP, `Ready`/`ContainersReady` conditions and
/// container statuses) through the status subresource, as a kubelet would, and returns the updated Pod.
pub async fn set_pod_status(client: &kube::Client, namespace: &str, name: &str, state: PodState) -> Result<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod = api.get(name).await.map_err(|e| Error::kube(format!("get pod {namespace}/{name}"), e))?;
    let patch = status_patch(&pod, &state, None, 0);
    api.patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map_err(|e| Error::kube(format!("patch status of pod {namespace}/{name}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-0"},
            "spec": {"containers": [{"name": "node", "image": "cairn:dev"}, {"name": "sidecar"}]}
        }))
        .unwrap()
    }

    #[test]
    fn ready_running_patch() {
        let patch = status_patch(&pod(), &PodState::running("127.0.1.1", true), Some("2026-01-01T00:00:00Z"), 2);
        let status = &patch["status"];
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["podIP"], "127.0.1.1");
        assert_eq!(status["podIPs"][0]["ip"], "127.0.1.1");
        let ready = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(ready["status"], "True");
        let cs = status["containerStatuses"].as_array().unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["ready"], true);
        assert_eq!(cs[0]["restartCount"], 2);
        assert_eq!(cs[0]["state"]["running"]["startedAt"], "2026-01-01T00:00:00Z");
        assert_eq!(cs[1]["image"], "fake");
    }

    #[test]
    fn not_ready_and_no_ip() {
        let state = PodState { phase: PodPhase::Pending, pod_ip: None, ready: true };
        let patch = status_patch(&pod(), &state, None, 0);
        let status = &patch["status"];
        assert_eq!(status["phase"], "Pending");
        assert!(status["podIP"].is_null());
        let ready = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(ready["status"], "False", "a pending pod is never ready");
        assert_eq!(status["containerStatuses"][0]["state"]["waiting"]["reason"], "ContainerCreating");
    }
}
