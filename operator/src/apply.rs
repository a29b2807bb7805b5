//! Step 5 of a reconcile: server-side apply of the desired objects in a fixed order —
//! identity and RBAC first, then configuration, Services, the disruption budget and monitor,
//! the StatefulSet last — and deletion of optional objects the spec no longer wants.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::build::DesiredObjects;
use crate::names::MANAGER;
use crate::{Error, Result};

/// Server-side apply with the operator's field manager, forcing ownership of conflicting fields.
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
{
    let name = obj.meta().name.clone().ok_or(Error::MissingField("metadata.name of a desired object"))?;
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(obj))
        .await
        .map_err(Error::kube(format!("apply {kind} {name}")))
}

/// Deletes `name` if it exists and is controlled by the owner with `owner_uid`.
pub async fn delete_owned<K>(api: &Api<K>, name: &str, owner_uid: &str) -> Result<bool>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    let Some(obj) = api.get_opt(name).await.map_err(Error::kube(format!("get {name}")))? else {
        return Ok(false);
    };
    let owned = obj.owner_references().iter().any(|o| o.uid == owner_uid && o.controller == Some(true));
    if !owned {
        return Ok(false);
    }
    match api.delete(name, &Default::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(Error::kube(format!("delete {name}"))(e)),
    }
}

/// What [`apply_all`] needs besides the objects.
pub struct ApplyTarget<'a> {
    /// Client.
    pub client: &'a Client,
    /// Namespace of the cluster.
    pub namespace: &'a str,
    /// Name shared by the PDB and ServiceMonitor (the cluster's name).
    pub name: &'a str,
    /// Uid of the RegistryCluster (to delete only what it owns).
    pub owner_uid: &'a str,
    /// The ServiceMonitor resource when the kind is served (to delete a no longer wanted monitor).
    pub service_monitor: Option<ApiResource>,
}

/// Applies every desired object in order; returns the applied StatefulSet.
pub async fn apply_all(t: &ApplyTarget<'_>, d: &DesiredObjects) -> Result<StatefulSet> {
    let c = t.client.clone();
    let ns = t.namespace;
    apply(&Api::<ServiceAccount>::namespaced(c.clone(), ns), &d.service_account).await?;
    apply(&Api::<Role>::namespaced(c.clone(), ns), &d.role).await?;
    apply(&Api::<RoleBinding>::namespaced(c.clone(), ns), &d.role_binding).await?;
    apply(&Api::<ConfigMap>::namespaced(c.clone(), ns), &d.config_map).await?;
    apply(&Api::<Secret>::namespaced(c.clone(), ns), &d.secret).await?;
    let services = Api::<Service>::namespaced(c.clone(), ns);
    apply(&services, &d.headless_service).await?;
    apply(&services, &d.client_service).await?;
    let pdbs = Api::<PodDisruptionBudget>::namespaced(c.clone(), ns);
    match &d.pod_disruption_budget {
        Some(pdb) => drop(apply(&pdbs, pdb).await?),
        None => drop(delete_owned(&pdbs, t.name, t.owner_uid).await?),
    }
    if let Some(ar) = &t.service_monitor {
        let monitors = Api::<DynamicObject>::namespaced_with(c.clone(), ns, ar);
        match &d.service_monitor {
            Some(sm) => {
                monitors
                    .patch(t.name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(sm))
                    .await
                    .map_err(Error::kube(format!("apply ServiceMonitor {}", t.name)))?;
            }
            None => drop(delete_owned(&monitors, t.name, t.owner_uid).await?),
        }
    }
    apply(&Api::<StatefulSet>::namespaced(c, ns), &d.statefulset).await
}
