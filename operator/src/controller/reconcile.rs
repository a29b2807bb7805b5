//! One reconcile of a RegistryCluster: read → validate → observe → build → apply → plan →
//! record intent → act → status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::Context;
use crate::apply::{ApplyTarget, apply_all};
use crate::build::{self, BuildParams, generate_auth_key, initial_replicas, service_monitor_resource};
use crate::crd::RegistryCluster;
use crate::membership::{self, Action, ActionOutcome, Executor, Plan, PlanInput};
use crate::names::{AUTH_KEY, ClusterNames};
use crate::observe::{observe, sts_view};
use crate::status::{self, StatusInput, same_operation};
use crate::validate::validate;
use crate::{Error, Result};

/// Reconciles one RegistryCluster (kube-runtime entry point): runs the steps, records metrics, and
/// reports a failure as a Warning event.
pub async fn reconcile(rc: Arc<RegistryCluster>, ctx: Arc<Context>) -> Result<Requeue> {
    let started = Instant::now();
    let result = reconcile_inner(&rc, &ctx).await;
    let m = &ctx.metrics;
    m.reconcile_duration.observe(started.elapsed().as_secs_f64());
    match &result {
        Ok(_) => m.reconciles.with_label_values(&["ok"]).inc(),
        Err(e) => {
            m.reconciles.with_label_values(&["error"]).inc();
            m.reconcile_errors.with_label_values(&[e.metric_label()]).inc();
            // An invalid spec was already reported (InvalidSpec event and status).
            if !matches!(e, Error::InvalidSpec(_)) {
                ctx.event(&rc, EventType::Warning, "ReconcileFailed", "Reconcile", e.to_string()).await;
            }
        }
    }
    result
}

fn conditions_of(s: &crate::crd::RegistryClusterStatus) -> Vec<(String, String)> {
    s.conditions.iter().map(|c| (c.type_.clone(), c.status.clone())).collect()
}

async fn reconcile_inner(cached: &RegistryCluster, ctx: &Context) -> Result<Requeue> {
    let ns = cached.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = cached.name_any();
    let key = format!("{ns}/{name}");
    let rcs: Api<RegistryCluster> = Api::namespaced(ctx.client.clone(), &ns);
    // The intent in status must be the latest written, not the cache's: read the object afresh.
    let Some(rc) = rcs.get_opt(&name).await.map_err(Error::kube(format!("get RegistryCluster {key}")))? else {
        ctx.metrics.set_cluster_conditions(&key, None);
        return Ok(Requeue::await_change());
    };
    if rc.metadata.deletion_timestamp.is_some() {
        ctx.metrics.set_cluster_conditions(&key, None);
        return Ok(Requeue::await_change());
    }
    let previous = rc.status.clone();
    let now = Timestamp::now();
    let cfg = &ctx.config;
    let vc = match validate(&rc, &cfg.default_node_image) {
        Ok(vc) => vc,
        Err(e @ Error::InvalidSpec(_)) => {
            ctx.event(&rc, EventType::Warning, "InvalidSpec", "Validate", e.to_string()).await;
            let names = ClusterNames {
                name: name.clone(),
                namespace: ns.clone(),
                cluster_domain: rc.spec.cluster_domain.clone(),
                http_port: rc.spec.ports.http,
            };
            let st = status::compute(&StatusInput {
                names: &names,
                generation: rc.metadata.generation,
                desired_replicas: rc.spec.replicas,
                paused: rc.spec.paused,
                observed: None,
                raft_problem: None,
                plan: None,
                error: Some(("InvalidSpec", e.to_string())),
                previous: previous.as_ref(),
                now,
            });
            status::write(&rcs, &name, &st).await?;
            ctx.metrics.set_cluster_conditions(&key, Some(conditions_of(&st)));
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let statefulsets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let mut obs = observe(&vc.names, cfg.member_addressing, &statefulsets, &pods, &ctx.nodes).await?;
    if vc.spec.paused {
        let st = status_of(&vc, &obs, None, previous.as_ref(), now);
        status::write(&rcs, &name, &st).await?;
        ctx.metrics.set_cluster_conditions(&key, Some(conditions_of(&st)));
        return Ok(Requeue::requeue(Duration::from_secs(cfg.resync_seconds)));
    }

    // Build and apply.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let auth_key = existing_auth_key(&secrets, &vc.names.secret()).await?.unwrap_or_else(generate_auth_key);
    let sm_served = ctx.service_monitor_served().await;
    if vc.spec.monitoring.enabled && !sm_served {
        let note =
            "spec.monitoring.enabled is set but monitoring.coreos.com/v1 ServiceMonitor is not served".to_owned();
        ctx.event(&rc, EventType::Warning, "ServiceMonitorUnavailable", "Apply", note).await;
    }
    let sts_replicas = obs
        .statefulset
        .as_ref()
        .and_then(|s| s.spec.as_ref()?.replicas)
        .unwrap_or_else(|| initial_replicas(obs.observed.pods.iter().map(|p| p.ordinal)));
    let params = BuildParams {
        addressing: cfg.member_addressing,
        statefulset_replicas: sts_replicas,
        auth_key,
        service_monitor_available: sm_served,
    };
    let desired = build::desired(&vc, &params);
    let target = ApplyTarget {
        client: &ctx.client,
        namespace: &ns,
        name: &name,
        owner_uid: &vc.owner.uid,
        service_monitor: sm_served.then(service_monitor_resource),
    };
    let applied = apply_all(&target, &desired).await?;
    obs.observed.sts = Some(sts_view(&applied));

    // Plan; record a new intent before acting on it.
    let intent = previous.as_ref().and_then(|s| s.membership_operation.as_ref());
    let mut plan = membership::plan(&PlanInput {
        desired_replicas: vc.spec.replicas,
        strategy: vc.spec.update_strategy.type_,
        names: &vc.names,
        observed: &obs.observed,
        intent,
        now,
    });
    if !same_operation(plan.intent.as_ref(), intent) {
        if let Some(old) = intent {
            let note = format!("{} {} finished or superseded", old.kind.as_str(), old.pod);
            ctx.event(&rc, EventType::Normal, "OperationEnded", old.kind.as_str(), note).await;
        }
        if let Some(new) = &plan.intent {
            let st = status_of(&vc, &obs, Some(&plan), previous.as_ref(), now);
            status::write(&rcs, &name, &st).await?;
            let note = format!("{} {}: {}", new.kind.as_str(), new.pod, plan.action.name());
            ctx.event(&rc, EventType::Normal, "OperationStarted", new.kind.as_str(), note).await;
        }
    }

    // Act.
    let exec = Executor {
        nodes: &ctx.nodes,
        leader_address: obs.leader_address.as_deref(),
        pods: &pods,
        statefulsets: &statefulsets,
        desired_statefulset: &desired.statefulset,
    };
    let kind = plan.intent.as_ref().map_or("None", |o| o.kind.as_str());
    match membership::execute(&plan.action, &exec).await {
        Ok(ActionOutcome::Done(what)) => {
            tracing::info!(cluster = %key, action = plan.action.name(), "{what}");
            ctx.metrics.membership_operations.with_label_values(&[plan.action.name(), "ok"]).inc();
            ctx.event(&rc, EventType::Normal, plan.action.name(), kind, what).await;
        }
        Ok(ActionOutcome::Nothing) => {}
        Err(e) => {
            tracing::warn!(cluster = %key, action = plan.action.name(), error = %e, "membership action failed");
            ctx.metrics.membership_operations.with_label_values(&[plan.action.name(), "error"]).inc();
            ctx.event(&rc, EventType::Warning, "MembershipActionFailed", kind, format!("{}: {e}", plan.action.name()))
                .await;
            if let Some(op) = plan.intent.as_mut() {
                op.step = Some(format!("{} failed: {e}", plan.action.name()));
            }
        }
    }

    let st = status_of(&vc, &obs, Some(&plan), previous.as_ref(), now);
    status::write(&rcs, &name, &st).await?;
    ctx.metrics.set_cluster_conditions(&key, Some(conditions_of(&st)));
    Ok(match &plan.action {
        Action::Idle => Requeue::requeue(Duration::from_secs(cfg.resync_seconds)),
        Action::Wait(_) => Requeue::requeue(Duration::from_secs(2)),
        _ => Requeue::requeue(Duration::from_millis(500)),
    })
}

fn status_of(
    vc: &crate::validate::ValidatedCluster,
    obs: &crate::observe::Observation,
    plan: Option<&Plan>,
    previous: Option<&crate::crd::RegistryClusterStatus>,
    now: Timestamp,
) -> crate::crd::RegistryClusterStatus {
    status::compute(&StatusInput {
        names: &vc.names,
        generation: vc.generation,
        desired_replicas: vc.spec.replicas,
        paused: vc.spec.paused,
        observed: Some(&obs.observed),
        raft_problem: obs.raft_problem.as_deref(),
        plan,
        error: None,
        previous,
        now,
    })
}

/// The auth key already stored in the cluster's Secret, if any (so it is never rotated).
async fn existing_auth_key(secrets: &Api<Secret>, name: &str) -> Result<Option<String>> {
    let secret = secrets.get_opt(name).await.map_err(Error::kube(format!("get Secret {name}")))?;
    Ok(secret
        .and_then(|s| s.data)
        .and_then(|d| d.get(AUTH_KEY).cloned())
        .and_then(|b| String::from_utf8(b.0).ok())
        .filter(|k| !k.is_empty()))
}
