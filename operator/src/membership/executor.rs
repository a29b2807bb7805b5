//! Carries out one planner [`Action`]: membership changes through the leader's admin API, StatefulSet
//! replicas through server-side apply, pod deletion with a uid precondition.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Preconditions};

use super::NodeClient;
use super::model::Action;
use crate::{Error, Result};

/// What an executed action did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionOutcome {
    /// Nothing was done (idle or waiting).
    Nothing,
    /// A change was made; the text describes it (for events and logs).
    Done(String),
}

/// Everything [`execute`] needs.
pub struct Executor<'a> {
    /// Node admin API client.
    pub nodes: &'a NodeClient,
    /// HTTP address of the current leader.
    pub leader_address: Option<&'a str>,
    /// Pods of the cluster's namespace.
    pub pods: &'a Api<Pod>,
    /// StatefulSets of the cluster's namespace.
    pub statefulsets: &'a Api<StatefulSet>,
    /// The desired StatefulSet (applied with new replicas for [`Action::SetReplicas`]).
    pub desired_statefulset: &'a StatefulSet,
}

/// Executes `action`.
pub async fn execute(action: &Action, ex: &Executor<'_>) -> Result<ActionOutcome> {
    let leader = || {
        ex.leader_address.ok_or_else(|| Error::NodeRefused {
            address: String::new(),
            action: action.name().to_owned(),
            status: 503,
            body: "no leader address known".into(),
        })
    };
    match action {
        Action::Idle | Action::Wait(_) => Ok(ActionOutcome::Nothing),
        Action::SetReplicas(n) => {
            let mut sts = ex.desired_statefulset.clone();
            let name = sts.metadata.name.clone().unwrap_or_default();
            if let Some(spec) = sts.spec.as_mut() {
                spec.replicas = Some(*n);
            }
            crate::apply::apply(ex.statefulsets, &sts).await?;
            Ok(ActionOutcome::Done(format!("StatefulSet {name} set to {n} replicas")))
        }
        Action::AddLearner { address } => {
            let id = ex.nodes.add_learner(leader()?, address).await?;
            let id = id.map(|i| format!(" (id {i})")).unwrap_or_default();
            Ok(ActionOutcome::Done(format!("added {address}{id} as learner")))
        }
        Action::Promote { id } => {
            ex.nodes.promote(leader()?, *id).await?;
            Ok(ActionOutcome::Done(format!("promoted learner {id} to voter")))
        }
        Action::TransferLeader { from, to } => {
            ex.nodes.transfer_leader(leader()?, *to).await?;
            Ok(ActionOutcome::Done(format!("transferred leadership from {from} to {to}")))
        }
        Action::Remove { id } => {
            ex.nodes.remove(leader()?, *id).await?;
            Ok(ActionOutcome::Done(format!("removed member {id}")))
        }
        Action::DeletePod { name, uid } => {
            let dp = DeleteParams {
                preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }),
                ..Default::default()
            };
            match ex.pods.delete(name, &dp).await {
                Ok(_) => Ok(ActionOutcome::Done(format!("deleted pod {name} (uid {uid})"))),
                // Already gone, or a different incarnation: nothing left to delete.
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(ActionOutcome::Nothing),
                Err(e) => Err(Error::kube(format!("delete pod {name}"))(e)),
            }
        }
    }
}
