//! `k8s:<label-selector>` provider: members are the Pods of this node's namespace that match the
//! selector, have `status.podIP`, no `deletionTimestamp` and have not terminated (phase neither
//! `Succeeded` nor `Failed`). Watched through the API server (list, then watch; re-listed with
//! backoff after errors), so scaling needs no restart.
//!
//! A member's address is `<pod-name>.<peer-domain>:<P>` with `--peer-domain`, else
//! `<pod-ip>:<P>` (P: this node's HTTP port). Namespace: `--namespace` (`CAIRN_NAMESPACE`), else
//! env `POD_NAMESPACE`, else the service account's namespace file. Kubernetes access: in-cluster
//! configuration, else the kubeconfig (`KUBECONFIG`, else `~/.kube/config`). RBAC: `get`,
//! `list`, `watch` on `pods` in that namespace.

use std::collections::BTreeMap;
use std::path::Path;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio_util::sync::CancellationToken;

use super::Member;
use super::provider::{Provider, Sink};
use crate::config::Config;
use crate::error::{Error, Result};

/// The service account's namespace file inside a Pod.
pub const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Watches the member Pods.
pub struct K8sProvider {
    selector: String,
    namespace: String,
    peer_domain: Option<String>,
    port: u16,
    client: kube::Client,
}

impl K8sProvider {
    /// A provider for Pods matching `selector`; fails when no namespace or no Kubernetes
    /// configuration can be found.
    pub async fn new(selector: String, config: &Config) -> Result<K8sProvider> {
        let namespace = namespace(
            config.namespace.as_deref(),
            std::env::var("POD_NAMESPACE").ok().as_deref(),
            Path::new(SERVICE_ACCOUNT_NAMESPACE),
        )?;
        let kube_config = match kube::Config::incluster() {
            Ok(c) => c,
            Err(in_cluster) => {
                kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions::default()).await.map_err(|e| {
                    Error::Config(format!(
                        "--members k8s: no Kubernetes configuration: in-cluster: {in_cluster}; kubeconfig: {e}"
                    ))
                })?
            }
        };
        let client = kube::Client::try_from(kube_config)
            .map_err(|e| Error::Config(format!("--members k8s: cannot create the Kubernetes client: {e}")))?;
        let peer_domain = config.peer_domain.as_deref().map(|d| d.trim_matches('.').to_owned());
        tracing::info!(%namespace, %selector, ?peer_domain, "watching member pods");
        Ok(K8sProvider { selector, namespace, peer_domain, port: config.http_port, client })
    }
}

/// The namespace to watch: the flag, else `POD_NAMESPACE`, else the service account file.
fn namespace(flag: Option<&str>, env: Option<&str>, file: &Path) -> Result<String> {
    if let Some(ns) = flag.or(env).map(str::trim).filter(|n| !n.is_empty()) {
        return Ok(ns.to_owned());
    }
    match std::fs::read_to_string(file) {
        Ok(ns) if !ns.trim().is_empty() => Ok(ns.trim().to_owned()),
        Ok(_) => Err(Error::Config(format!("--members k8s: {} is empty", file.display()))),
        Err(e) => Err(Error::Config(format!(
            "--members k8s: no namespace: set CAIRN_NAMESPACE or POD_NAMESPACE ({} unreadable: {e})",
            file.display()
        ))),
    }
}

/// The member a Pod stands for, if it is one.
pub fn pod_member(pod: &Pod, peer_domain: Option<&str>, port: u16) -> Option<Member> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let name = pod.metadata.name.as_deref()?;
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let ip = status.pod_ip.as_deref().filter(|ip| !ip.is_empty())?;
    let host = match peer_domain {
        Some(d) => format!("{name}.{d}"),
        None if ip.contains(':') => format!("[{ip}]"),
        None => ip.to_owned(),
    };
    Some(Member { address: format!("{host}:{port}"), name: Some(name.to_owned()) })
}

impl Provider for K8sProvider {
    fn run(self: Box<Self>, sink: Sink, cancel: CancellationToken) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
            let stream = watcher::watcher(api, watcher::Config::default().labels(&self.selector)).default_backoff();
            let mut stream = std::pin::pin!(stream);
            let domain = self.peer_domain.as_deref();
            let mut pods: BTreeMap<String, Member> = BTreeMap::new();
            let mut listing: Option<BTreeMap<String, Member>> = None;
            let mut synced = false;
            let mut last_error: Option<String> = None;
            loop {
                let event = tokio::select! {
                    e = stream.next() => e,
                    _ = cancel.cancelled() => return,
                };
                let changed = match event {
                    None => {
                        tracing::warn!("the member pod watch ended");
                        return;
                    }
                    Some(Err(e)) => {
                        let e = e.to_string();
                        if last_error.as_deref() != Some(e.as_str()) {
                            tracing::warn!(error = %e, "member pod watch failed; retrying, keeping the last member set");
                        }
                        last_error = Some(e);
                        false
                    }
                    Some(Ok(Event::Init)) => {
                        listing = Some(BTreeMap::new());
                        false
                    }
                    Some(Ok(Event::InitApply(pod))) => {
                        if let (Some(l), Some(m)) = (listing.as_mut(), pod_member(&pod, domain, self.port)) {
                            l.insert(m.name.clone().unwrap_or_default(), m);
                        }
                        false
                    }
                    Some(Ok(Event::InitDone)) => {
                        if last_error.take().is_some() {
                            tracing::info!("member pod watch works again");
                        }
                        pods = listing.take().unwrap_or_default();
                        synced = true;
                        true
                    }
                    Some(Ok(Event::Apply(pod))) => {
                        let Some(name) = pod.metadata.name.clone() else { continue };
                        match pod_member(&pod, domain, self.port) {
                            Some(m) => pods.insert(name, m.clone()).as_ref() != Some(&m),
                            None => pods.remove(&name).is_some(),
                        }
                    }
                    Some(Ok(Event::Delete(pod))) => {
                        pod.metadata.name.as_ref().is_some_and(|name| pods.remove(name).is_some())
                    }
                };
                if changed && synced {
                    sink.publish(pods.values().cloned().collect());
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(name: &str, ip: Option<&str>, phase: &str) -> Pod {
        Pod {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            status: Some(PodStatus { pod_ip: ip.map(Into::into), phase: Some(phase.into()), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn pods_to_members() {
        let p = pod("cairn-0", Some("10.1.0.7"), "Running");
        assert_eq!(pod_member(&p, None, 8848).map(|m| m.address), Some("10.1.0.7:8848".into()));
        let m = pod_member(&p, Some("cairn-hl.ns.svc.cluster.local"), 8848).unwrap();
        assert_eq!(m.address, "cairn-0.cairn-hl.ns.svc.cluster.local:8848");
        assert_eq!(m.name.as_deref(), Some("cairn-0"));
        assert_eq!(pod_member(&pod("a", Some("fd00::5"), "Pending"), None, 1).unwrap().address, "[fd00::5]:1");
        assert!(pod_member(&pod("a", None, "Pending"), None, 1).is_none());
        assert!(pod_member(&pod("a", Some(""), "Pending"), None, 1).is_none());
        assert!(pod_member(&pod("a", Some("10.0.0.1"), "Failed"), None, 1).is_none());
        let mut deleting = pod("a", Some("10.0.0.1"), "Running");
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert!(pod_member(&deleting, None, 1).is_none());
    }

    #[test]
    fn namespace_sources() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("namespace");
        assert_eq!(namespace(Some("a"), Some("b"), &file).unwrap(), "a");
        assert_eq!(namespace(None, Some("b"), &file).unwrap(), "b");
        assert!(namespace(None, None, &file).is_err());
        std::fs::write(&file, "c\n").unwrap();
        assert_eq!(namespace(None, None, &file).unwrap(), "c");
        assert_eq!(namespace(Some(" "), None, &file).unwrap(), "c");
    }
}
