//! PodDisruptionBudget and the optional Prometheus Operator ServiceMonitor.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use serde_json::json;

use super::owned_meta;
use crate::names::LABEL_COMPONENT;
use crate::validate::ValidatedCluster;

/// PDB `<name>` with `maxUnavailable` from the spec; `None` when disabled. The operator itself
/// deletes pods directly (not through eviction), so the budget guards only voluntary disruptions
/// such as node drains.
pub fn pod_disruption_budget(vc: &ValidatedCluster) -> Option<PodDisruptionBudget> {
    let pdb = &vc.spec.pdb;
    pdb.enabled.then(|| PodDisruptionBudget {
        metadata: owned_meta(vc, vc.names.base().to_owned(), "registry"),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(pdb.max_unavailable)),
            selector: Some(LabelSelector { match_labels: Some(vc.names.selector_labels()), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// `monitoring.coreos.com/v1` ServiceMonitor.
pub fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

/// ServiceMonitor `<name>` scraping `/metrics` on every pod behind the headless Service (which
/// includes not-ready pods, whose metrics matter most); `None` when monitoring is off.
pub fn service_monitor(vc: &ValidatedCluster) -> Option<DynamicObject> {
    let m = &vc.spec.monitoring;
    if !m.enabled {
        return None;
    }
    let mut meta = owned_meta(vc, vc.names.base().to_owned(), "registry");
    meta.labels.get_or_insert_default().extend(m.labels.clone());
    let mut peers = vc.names.selector_labels();
    peers.insert(LABEL_COMPONENT.into(), "peers".into());
    let ar = service_monitor_resource();
    let mut obj = DynamicObject::new(vc.names.base(), &ar).within(&vc.names.namespace).data(json!({
        "spec": {
            "selector": {"matchLabels": peers},
            "namespaceSelector": {"matchNames": [vc.names.namespace]},
            "endpoints": [{"port": "http", "path": "/metrics", "scheme": "http", "interval": m.interval}],
        }
    }));
    obj.metadata = meta;
    Some(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{headless_service, tests::vc};
    use crate::crd::RegistryClusterSpec;

    #[test]
    fn pdb_follows_spec() {
        let mut spec = RegistryClusterSpec::default();
        let pdb = pod_disruption_budget(&vc(spec.clone())).unwrap();
        assert_eq!(pdb.spec.as_ref().unwrap().max_unavailable, Some(IntOrString::Int(1)));
        spec.pdb.max_unavailable = 2;
        let pdb = pod_disruption_budget(&vc(spec.clone())).unwrap();
        assert_eq!(pdb.spec.unwrap().max_unavailable, Some(IntOrString::Int(2)));
        spec.pdb.enabled = false;
        assert!(pod_disruption_budget(&vc(spec)).is_none());
    }

    #[test]
    fn service_monitor_selects_the_headless_service() {
        let mut spec = RegistryClusterSpec::default();
        spec.monitoring.enabled = true;
        spec.monitoring.interval = "15s".into();
        spec.monitoring.labels.insert("release".into(), "prom".into());
        let v = vc(spec);
        let sm = service_monitor(&v).unwrap();
        assert_eq!(sm.types.as_ref().unwrap().kind, "ServiceMonitor");
        assert_eq!(sm.types.as_ref().unwrap().api_version, "monitoring.coreos.com/v1");
        assert_eq!(sm.metadata.labels.as_ref().unwrap()["release"], "prom");
        let sel = &sm.data["spec"]["selector"]["matchLabels"];
        let headless = headless_service(&v);
        for (k, want) in sel.as_object().unwrap() {
            assert_eq!(headless.metadata.labels.as_ref().unwrap().get(k).map(|s| json!(s)), Some(want.clone()), "{k}");
        }
        assert_eq!(sm.data["spec"]["endpoints"][0]["interval"], "15s");
        assert_eq!(sm.data["spec"]["endpoints"][0]["port"], "http");
    }
}
