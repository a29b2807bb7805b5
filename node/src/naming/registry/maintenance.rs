//! Periodic and Raft-driven maintenance of the registry: v1 heartbeat expiry, dropping idle
//! services, and the persistent (Raft-applied) instances and service settings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{Registry, ServiceState};
use crate::naming::model::{ClientId, Instance, ServiceKey, ServiceMeta};

impl Registry {
    /// Periodic work: v1 heartbeat expiry (unhealthy, then removed) and dropping idle services.
    pub fn sweep(&self, now: Instant) {
        let services: Vec<(ServiceKey, Arc<Mutex<ServiceState>>)> =
            self.services.read().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut idle = Vec::new();
        for (key, svc) in services {
            let mut removed_clients = Vec::new();
            let mut touched = Vec::new();
            let mut changed = false;
            let mut removed = 0i64;
            {
                let mut s = svc.lock();
                for (client, p) in s.publishers.iter_mut() {
                    if !matches!(client, ClientId::Beat(_)) {
                        continue;
                    }
                    let silent = now.saturating_duration_since(p.last_beat);
                    let before = p.instances.len();
                    p.instances.retain(|i| {
                        silent
                            < Duration::from_millis(
                                i.delete_timeout_ms(self.settings.delete_timeout.as_millis() as u64),
                            )
                    });
                    removed += (before - p.instances.len()) as i64;
                    let mut this_changed = p.instances.len() != before;
                    for i in p.instances.iter_mut() {
                        let limit =
                            Duration::from_millis(i.beat_timeout_ms(self.settings.beat_timeout.as_millis() as u64));
                        if i.healthy && silent >= limit {
                            Arc::make_mut(i).healthy = false;
                            this_changed = true;
                        }
                    }
                    if this_changed {
                        touched.push(client.clone());
                    }
                    changed |= this_changed;
                    if p.instances.is_empty() {
                        removed_clients.push(client.clone());
                    }
                }
                for c in &removed_clients {
                    s.publishers.remove(c);
                }
                if changed {
                    let delta = s.changed(-removed);
                    self.metrics.instances.add(delta);
                }
                if s.is_idle() && now.saturating_duration_since(s.last_change) >= self.settings.empty_service_clean {
                    idle.push(key.clone());
                }
            }
            for c in &removed_clients {
                self.index_publish(c, &key, false);
            }
            for c in &touched {
                self.touched(c);
            }
            if changed {
                self.mark(&key);
            }
        }
        if !idle.is_empty() {
            let mut map = self.services.write();
            for key in idle {
                let still_idle = map.get(&key).is_some_and(|s| s.lock().is_idle());
                if still_idle {
                    map.remove(&key);
                }
            }
            self.metrics.services.set(map.len() as i64);
        }
    }

    /// Sets or clears a service's explicit settings (applied from Raft).
    pub fn set_service_meta(&self, key: &ServiceKey, meta: Option<ServiceMeta>) {
        let (svc, _) = self.get_or_create(key);
        let idle = {
            let mut s = svc.lock();
            s.meta = meta;
            s.is_idle()
        };
        if idle {
            // A deleted service with nothing left disappears at once, as with the in-memory delete.
            let mut map = self.services.write();
            if map.get(key).is_some_and(|s| s.lock().is_idle()) {
                map.remove(key);
            }
            self.metrics.services.set(map.len() as i64);
        }
        self.mark(key);
    }

    /// Drops every persistent instance and explicit setting (before reloading them from Raft).
    pub fn clear_persistent(&self) {
        let services: Vec<(ServiceKey, Arc<Mutex<ServiceState>>)> =
            self.services.read().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (key, svc) in services {
            let removed: Vec<ClientId> = {
                let mut s = svc.lock();
                let gone: Vec<ClientId> =
                    s.publishers.keys().filter(|c| matches!(c, ClientId::Persistent(_))).cloned().collect();
                let mut delta = 0i64;
                for c in &gone {
                    if let Some(p) = s.publishers.remove(c) {
                        delta -= p.instances.len() as i64;
                    }
                }
                let had_meta = s.meta.take().is_some();
                if !gone.is_empty() || had_meta {
                    let d = s.changed(delta);
                    self.metrics.instances.add(d);
                }
                gone
            };
            for c in &removed {
                self.index_publish(c, &key, false);
            }
            self.mark(&key);
        }
    }

    /// Whether a service holds instances that are not persistent (checked before replicating a delete).
    pub fn has_instances(&self, key: &ServiceKey) -> bool {
        self.get(key).is_some_and(|s| !s.lock().publishers.is_empty())
    }

    /// Every persistent instance with its service (for active health checks).
    pub fn persistent_instances(&self) -> Vec<(ServiceKey, Arc<Instance>)> {
        let services: Vec<(ServiceKey, Arc<Mutex<ServiceState>>)> =
            self.services.read().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut out = Vec::new();
        for (key, svc) in services {
            let s = svc.lock();
            for (client, p) in &s.publishers {
                if matches!(client, ClientId::Persistent(_)) {
                    out.extend(p.instances.iter().map(|i| (key.clone(), i.clone())));
                }
            }
        }
        out
    }
}
