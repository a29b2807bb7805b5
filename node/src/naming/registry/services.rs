//! Service-level operations of the registry: listing, explicit settings, counts.

use super::{Counts, Registry};
use crate::naming::model::{ClientId, ServiceKey, ServiceMeta};

impl Registry {
    /// Service names (bare) in a namespace and group, sorted, paged (1-based page).
    pub fn list_services(&self, namespace: &ServiceKey, page_no: usize, page_size: usize) -> (usize, Vec<String>) {
        let mut names: Vec<String> = self
            .services
            .read()
            .keys()
            .filter(|k| k.namespace == namespace.namespace && k.group == namespace.group)
            .map(|k| k.name.to_string())
            .collect();
        names.sort_unstable();
        let count = names.len();
        let start = page_no.saturating_sub(1).saturating_mul(page_size);
        let page = names.into_iter().skip(start).take(page_size).collect();
        (count, page)
    }

    /// A service's settings and cluster names; `None` when it does not exist.
    pub fn get_service(&self, key: &ServiceKey) -> Option<(ServiceMeta, Vec<String>)> {
        let svc = self.get(key)?;
        let mut s = svc.lock();
        let mut clusters: Vec<String> = s.instances().iter().map(|i| i.cluster.to_string()).collect();
        clusters.sort_unstable();
        clusters.dedup();
        Some((s.meta.clone().unwrap_or_default(), clusters))
    }

    /// Totals for the operator metrics endpoint.
    pub fn counts(&self) -> Counts {
        let clients = self.clients.lock();
        let count = |f: fn(&ClientId) -> bool| clients.keys().filter(|c| f(c)).count();
        Counts {
            services: self.services.read().len(),
            instances: self.metrics.instances.get().max(0) as usize,
            subscribers: self.metrics.subscribers.get().max(0) as usize,
            clients: clients.len(),
            connection_clients: count(|c| matches!(c, ClientId::Conn(_))),
            beat_clients: count(|c| matches!(c, ClientId::Beat(_))),
            persistent_clients: count(|c| matches!(c, ClientId::Persistent(_))),
        }
    }
}
