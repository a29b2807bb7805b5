//! Wiring: the controller context, leader election around the kube-runtime controller, the
//! metrics server, and graceful shutdown.

mod reconcile;

pub use reconcile::reconcile;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use prometheus::Registry;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use crate::config::OperatorConfig;
use crate::crd::RegistryCluster;
use crate::lease::LeaderElector;
use crate::membership::NodeClient;
use crate::metrics::Metrics;
use crate::names::{LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGER};
use crate::server::{self, ServerState};
use crate::{Error, Result};

/// How long the "is the ServiceMonitor kind served" answer is cached.
const DISCOVERY_TTL: Duration = Duration::from_secs(60);

/// Shared state of all reconciles.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Operator configuration.
    pub config: OperatorConfig,
    /// Event recorder (one for all objects, so series aggregate).
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Node admin API client.
    pub nodes: NodeClient,
    service_monitor_served: Mutex<Option<(Instant, bool)>>,
}

impl Context {
    /// A context; `identity` names this replica in events.
    pub fn new(client: Client, config: OperatorConfig, metrics: Arc<Metrics>, identity: &str) -> Result<Self> {
        let recorder =
            Recorder::new(client.clone(), Reporter { controller: MANAGER.into(), instance: Some(identity.into()) });
        let nodes = NodeClient::new(Duration::from_millis(config.node_timeout_ms))?;
        Ok(Self { client, config, recorder, metrics, nodes, service_monitor_served: Mutex::new(None) })
    }

    /// Publishes an event about `rc`; failures are logged, not returned.
    pub async fn event(&self, rc: &RegistryCluster, type_: EventType, reason: &str, action: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(truncate(note, 1000)),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &rc.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "publishing an event failed");
        }
    }

    /// Whether `monitoring.coreos.com/v1` serves `servicemonitors` (cached for a minute).
    pub async fn service_monitor_served(&self) -> bool {
        let mut cached = self.service_monitor_served.lock().await;
        if let Some((at, v)) = *cached
            && at.elapsed() < DISCOVERY_TTL
        {
            return v;
        }
        let served = match self.client.list_api_group_resources("monitoring.coreos.com/v1").await {
            Ok(list) => list.resources.iter().any(|r| r.name == "servicemonitors"),
            Err(e) => {
                tracing::debug!(error = %e, "monitoring.coreos.com/v1 not served");
                false
            }
        };
        *cached = Some((Instant::now(), served));
        served
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Requeue policy after a failed reconcile (the reconcile already counted and reported the error).
fn error_policy(_rc: Arc<RegistryCluster>, err: &Error, _ctx: Arc<Context>) -> Action {
    match err {
        Error::InvalidSpec(_) => Action::await_change(),
        _ => Action::requeue(Duration::from_secs(5)),
    }
}

/// This replica's identity: `--identity`, else `$POD_NAME`, else `hostname-pid`.
fn identity(config: &OperatorConfig) -> String {
    config.identity.clone().or_else(|| std::env::var("POD_NAME").ok().filter(|s| !s.is_empty())).unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
        format!("{}-{}", if host.is_empty() { "cairn-operator" } else { &host }, std::process::id())
    })
}

/// The Lease namespace: `--lease-namespace`, else `$POD_NAMESPACE`, else the service account's, else the client's.
fn lease_namespace(config: &OperatorConfig, client: &Client) -> String {
    config
        .lease_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok().filter(|s| !s.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| client.default_namespace().to_owned())
}

/// Runs the operator until `shutdown`: metrics server, leader election (when enabled) and the
/// controller while this replica leads. Returns [`Error::LeaseLost`] when leadership is lost, so
/// the process can exit and start clean.
pub async fn run(config: OperatorConfig, client: Client, shutdown: CancellationToken) -> Result<()> {
    config.validate()?;
    let registry = Registry::new();
    let metrics = Arc::new(Metrics::new(&registry)?);
    let ready = Arc::new(AtomicBool::new(false));
    let server_stop = CancellationToken::new();
    let state = ServerState { registry, ready: ready.clone() };
    let (addr, serve) = server::bind(config.metrics_bind, state, server_stop.clone()).await?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    let id = identity(&config);
    let main = async {
        let result = operate(config, client, shutdown, metrics, ready, &id).await;
        server_stop.cancel();
        result
    };
    let (served, result) = tokio::join!(serve, main);
    result.and(served)
}

async fn operate(
    config: OperatorConfig,
    client: Client,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    id: &str,
) -> Result<()> {
    if !wait_for_crd(&client, &config, &shutdown).await {
        return Ok(());
    }
    ready.store(true, Ordering::Relaxed);
    let ctx = Arc::new(Context::new(client.clone(), config.clone(), metrics.clone(), id)?);
    if !config.leader_elect {
        metrics.leader.set(1);
        run_controller(ctx, shutdown.cancelled()).await;
        metrics.leader.set(0);
        return Ok(());
    }
    let ns = lease_namespace(&config, &client);
    tracing::info!(lease = %config.lease_name, namespace = %ns, identity = %id, "leader election");
    let elector =
        LeaderElector::new(Api::<Lease>::namespaced(client, &ns), &config.lease_name, id, config.lease_duration());
    let (tx, mut rx) = watch::channel(false);
    let elector_stop = CancellationToken::new();
    let elected = async {
        let led = loop {
            if *rx.borrow_and_update() {
                break true;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break false,
                changed = rx.changed() => if changed.is_err() { break false },
            }
        };
        if led {
            metrics.leader.set(1);
            let mut lost = rx.clone();
            let trigger = async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = lost.wait_for(|l| !*l) => tracing::error!("leadership lost: stopping the controller"),
                }
            };
            run_controller(ctx, trigger).await;
            metrics.leader.set(0);
        }
        // The lease is released only after the controller stopped.
        elector_stop.cancel();
    };
    let (elector_result, ()) = tokio::join!(elector.run(tx, elector_stop.clone()), elected);
    elector_result
}

/// Waits until RegistryClusters can be listed (the CRD is installed); `false` on shutdown.
async fn wait_for_crd(client: &Client, config: &OperatorConfig, shutdown: &CancellationToken) -> bool {
    let api: Api<RegistryCluster> = match &config.watch_namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut delay = Duration::from_millis(200);
    loop {
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => return true,
            Err(e) => tracing::warn!(
                error = %e,
                "cannot list RegistryClusters; is the CRD installed? (kubectl apply --server-side -f crds/registryclusters.cairn.dev.yaml)"
            ),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

fn scoped<K: Resource<Scope = k8s_openapi::NamespaceResourceScope>>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller until `stop` completes; in-flight reconciles finish first.
async fn run_controller(ctx: Arc<Context>, stop: impl Future<Output = ()>) {
    let ns = ctx.config.watch_namespace.clone();
    let client = ctx.client.clone();
    let clusters: Api<RegistryCluster> = scoped(&client, ns.as_deref());
    let (reader, writer) = reflector::store();
    // Status writes do not trigger reconciles (generation predicate); pods and StatefulSets do.
    let trigger = watcher(clusters, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let managed = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGER}"));
    let graceful = CancellationToken::new();
    let graceful_wait = graceful.clone();
    let metrics = ctx.metrics.clone();
    let controller = Controller::for_stream(trigger, reader)
        .owns(scoped::<StatefulSet>(&client, ns.as_deref()), managed.clone())
        .watches(scoped::<Pod>(&client, ns.as_deref()), managed, |pod| {
            let instance = pod.labels().get(LABEL_INSTANCE)?.clone();
            Some(ObjectRef::<RegistryCluster>::new(&instance).within(&pod.namespace()?))
        })
        .with_config(controller::Config::default().debounce(Duration::from_millis(300)))
        .graceful_shutdown_on(async move { graceful_wait.cancelled().await })
        .run(reconcile, error_policy, ctx)
        .for_each(|res| {
            match res {
                Ok((obj, _)) => tracing::debug!(cluster = %obj, "reconciled"),
                Err(controller::Error::ObjectNotFound(obj)) => {
                    let key = format!("{}/{}", obj.namespace.clone().unwrap_or_default(), obj.name);
                    metrics.set_cluster_conditions(&key, None);
                }
                Err(controller::Error::ReconcilerFailed(e, obj)) => {
                    tracing::warn!(cluster = %obj, error = %e, "reconcile failed")
                }
                Err(e) => tracing::warn!(error = %e, "controller error"),
            }
            std::future::ready(())
        });
    tokio::pin!(controller);
    tokio::select! {
        _ = &mut controller => {}
        _ = stop => {
            graceful.cancel();
            controller.await;
        }
    }
    tracing::info!("controller stopped");
}
