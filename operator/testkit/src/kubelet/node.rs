//! The fake kubelet's Node object and its Lease heartbeat (so kube-controller-manager's node lifecycle controller
//! keeps the node — and therefore its pods — Ready).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

const FIELD_MANAGER: &str = "cairn-fake-kubelet";
const LEASE_NAMESPACE: &str = "kube-node-lease";
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Creates Node `name` (if missing) and marks it Ready.
pub(crate) async fn register(client: &kube::Client, name: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                              "cairn.test/fake-kubelet": "true"}},
        "spec": {}
    }))
    .map_err(|source| Error::Json { action: "node object", source })?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => return Err(Error::kube(format!("create node {name}"), e)),
    }
    let now = Timestamp::now().to_string();
    let status = json!({"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "cairn fake kubelet is posting ready status",
                        "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
        "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
        "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(status))
        .await
        .map_err(|e| Error::kube(format!("patch status of node {name}"), e))?;
    renew_lease(client, name).await
}

async fn renew_lease(client: &kube::Client, name: &str) -> Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let lease = Lease {
        metadata: ObjectMeta { name: Some(name.to_string()), ..Default::default() },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.to_string()),
            lease_duration_seconds: Some(40),
            renew_time: Some(MicroTime(Timestamp::now())),
            ..Default::default()
        }),
    };
    leases
        .patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&lease))
        .await
        .map_err(|e| Error::kube(format!("renew lease {LEASE_NAMESPACE}/{name}"), e))?;
    Ok(())
}

/// Renews the node's Lease every 10 s until cancelled.
pub(crate) async fn heartbeat(client: kube::Client, name: String, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
        if let Err(e) = renew_lease(&client, &name).await {
            tracing::warn!(node = %name, error = %e, "fake kubelet heartbeat failed");
        }
    }
}
