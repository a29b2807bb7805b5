//! What Distro needs from the registry: which locally owned clients changed, a client's whole
//! publication, and replacing a remote client's publication with the copy its owner sent.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use super::Registry;
use crate::naming::model::{ClientId, Instance, ServiceKey};

/// A client's ephemeral instances, per service.
pub type ClientData = Vec<(ServiceKey, Vec<Instance>)>;

impl Registry {
    /// Starts (or stops) recording which locally owned clients change, for Distro. Off on a
    /// standalone node, so its write path does no extra work.
    pub fn set_tracking(&self, on: bool) {
        self.tracking.store(on, Ordering::Relaxed);
    }

    /// Notes that a locally owned client's publication changed.
    pub(super) fn touched(&self, client: &ClientId) {
        if client.is_local_ephemeral() && self.tracking.load(Ordering::Relaxed) {
            self.changed.lock().insert(client.clone());
        }
    }

    /// The locally owned clients changed since the last call.
    pub fn take_changed(&self) -> Vec<ClientId> {
        std::mem::take(&mut *self.changed.lock()).into_iter().collect()
    }

    /// A client's current instances in every service it publishes to (empty when it has none).
    pub fn client_data(&self, client: &ClientId) -> ClientData {
        let keys: Vec<ServiceKey> = match self.clients.lock().get(client) {
            Some(ix) => ix.published.iter().cloned().collect(),
            None => return Vec::new(),
        };
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(svc) = self.get(&key) {
                let s = svc.lock();
                if let Some(p) = s.publishers.get(client) {
                    out.push((key, p.instances.iter().map(|i| Instance::clone(i)).collect()));
                }
            }
        }
        out
    }

    /// Makes `client`'s publication exactly `data`: services missing from it lose the client's
    /// instances. Used for copies of other nodes' clients.
    pub fn replace_client(&self, client: &ClientId, data: ClientData) {
        let keep: HashSet<&ServiceKey> = data.iter().map(|(k, _)| k).collect();
        let stale: Vec<ServiceKey> = match self.clients.lock().get(client) {
            Some(ix) => ix.published.iter().filter(|k| !keep.contains(k)).cloned().collect(),
            None => Vec::new(),
        };
        for key in stale {
            self.publish(client, &key, Vec::new());
        }
        for (key, instances) in data {
            if !self.same_publication(client, &key, &instances) {
                self.publish(client, &key, instances);
            }
        }
    }

    /// Whether `client` already publishes exactly `instances` in `key` (a re-sent copy then
    /// causes no push).
    fn same_publication(&self, client: &ClientId, key: &ServiceKey, instances: &[Instance]) -> bool {
        let Some(svc) = self.get(key) else {
            return instances.is_empty();
        };
        let s = svc.lock();
        match s.publishers.get(client) {
            Some(p) => {
                p.instances.len() == instances.len() && p.instances.iter().zip(instances).all(|(a, b)| **a == *b)
            }
            None => instances.is_empty(),
        }
    }
}
