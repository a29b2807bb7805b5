//! The in-memory naming registry: services, their publishers (gRPC connections or v1 heartbeat
//! clients) and gRPC subscribers. Every change marks the service in a [`DirtySet`] for push.
//!
//! Locking: the service map is an `RwLock` (read for lookups); each service has its own mutex;
//! the client index has one mutex. Order: service map → service → client index.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::metrics::Metrics;
use crate::naming::dirty::{DirtySet, PushTask};
use crate::naming::model::{ClientId, Instance, Metadata, Selection, ServiceKey, ServiceMeta, select};

/// Timing settings of the registry.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Default v1 heartbeat timeout (unhealthy after).
    pub beat_timeout: Duration,
    /// Default v1 delete timeout (removed after).
    pub delete_timeout: Duration,
    /// Implicit empty services are dropped after this long.
    pub empty_service_clean: Duration,
}

struct Publication {
    instances: Vec<Arc<Instance>>,
    last_beat: Instant,
}

struct ServiceState {
    publishers: HashMap<ClientId, Publication>,
    /// gRPC subscribers: connection → (cluster filter, when it (re)subscribed).
    subscribers: HashMap<u64, (Arc<str>, Instant)>,
    /// Other subscribers (v1 UDP push) interested in changes.
    watchers: u32,
    /// Explicit service settings (created through the service API), else implicit.
    meta: Option<ServiceMeta>,
    snapshot: Option<Arc<[Arc<Instance>]>>,
    instance_count: usize,
    last_change: Instant,
    /// The metadata of the instance published last: new instances with equal metadata share it.
    last_meta: Metadata,
    /// Likewise the cluster name.
    last_cluster: Arc<str>,
}

impl ServiceState {
    fn new() -> Self {
        ServiceState {
            publishers: HashMap::new(),
            subscribers: HashMap::new(),
            watchers: 0,
            meta: None,
            snapshot: None,
            instance_count: 0,
            last_change: Instant::now(),
            last_meta: Metadata::default(),
            last_cluster: Arc::from(""),
        }
    }

    /// Wraps a newly published instance, sharing its metadata and cluster name with the
    /// previous instance when equal (most instances of a service have the same ones).
    fn adopt(&mut self, mut inst: Instance) -> Arc<Instance> {
        inst.metadata.share(&self.last_meta);
        self.last_meta = inst.metadata.clone();
        if inst.cluster == self.last_cluster {
            inst.cluster = self.last_cluster.clone();
        } else {
            self.last_cluster = inst.cluster.clone();
        }
        Arc::new(inst)
    }

    fn instances(&mut self) -> Arc<[Arc<Instance>]> {
        if let Some(s) = &self.snapshot {
            return s.clone();
        }
        // One entry per endpoint even when two clients publish it (a client that moved to
        // another member re-registers before the old member's copy expires): this node's own
        // clients win over copies of other members' clients.
        let mut all: Vec<(bool, &Arc<Instance>)> = self
            .publishers
            .iter()
            .flat_map(|(c, p)| p.instances.iter().map(move |i| (matches!(c, ClientId::Remote(_)), i)))
            .collect();
        all.sort_by(|(ra, a), (rb, b)| (&a.ip, a.port, &a.cluster, ra).cmp(&(&b.ip, b.port, &b.cluster, rb)));
        all.dedup_by(|(_, a), (_, b)| a.same_endpoint(&b.ip, b.port, &b.cluster));
        let all: Vec<Arc<Instance>> = all.into_iter().map(|(_, i)| i.clone()).collect();
        let snap: Arc<[Arc<Instance>]> = all.into();
        self.snapshot = Some(snap.clone());
        snap
    }

    /// Call after changing publishers with the change in instance count: drops the snapshot
    /// and returns `delta` for the gauge.
    fn changed(&mut self, delta: i64) -> i64 {
        self.snapshot = None;
        self.last_change = Instant::now();
        self.instance_count = (self.instance_count as i64 + delta).max(0) as usize;
        delta
    }

    fn protect(&self) -> Option<f32> {
        self.meta.as_ref().map(|m| m.protect_threshold)
    }

    fn is_idle(&self) -> bool {
        self.publishers.is_empty() && self.subscribers.is_empty() && self.watchers == 0 && self.meta.is_none()
    }
}

#[derive(Default)]
struct ClientIndex {
    published: HashSet<ServiceKey>,
    subscribed: HashSet<ServiceKey>,
}

/// A service's instances as one shared, immutable snapshot.
pub type Snapshot = Arc<[Arc<Instance>]>;

/// A service's data for push: current instances, protect threshold and gRPC subscribers.
pub struct PushView {
    /// All instances (unfiltered).
    pub instances: Arc<[Arc<Instance>]>,
    /// Protect threshold when the service has explicit metadata.
    pub protect: Option<f32>,
    /// Subscribers (connection, cluster filter, when it (re)subscribed).
    pub subscribers: Vec<(u64, Arc<str>, Instant)>,
}

/// Counts for `/v1/ns/operator/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Services.
    pub services: usize,
    /// Instances.
    pub instances: usize,
    /// gRPC subscriptions.
    pub subscribers: usize,
    /// Clients with publications or subscriptions.
    pub clients: usize,
    /// Of which gRPC connections.
    pub connection_clients: usize,
    /// Of which v1 heartbeat clients.
    pub beat_clients: usize,
    /// Of which persistent `ip:port` clients.
    pub persistent_clients: usize,
}

/// The naming registry.
pub struct Registry {
    ref_clock: std::sync::atomic::AtomicI64,
    services: RwLock<HashMap<ServiceKey, Arc<Mutex<ServiceState>>>>,
    clients: Mutex<HashMap<ClientId, ClientIndex>>,
    dirty: Arc<DirtySet>,
    metrics: Metrics,
    settings: Settings,
    /// Locally owned clients changed since Distro last looked (only while tracking is on).
    changed: Mutex<HashSet<ClientId>>,
    tracking: std::sync::atomic::AtomicBool,
}

impl Registry {
    /// Creates an empty registry.
    pub fn new(settings: Settings, metrics: Metrics, dirty: Arc<DirtySet>) -> Self {
        Registry {
            ref_clock: Default::default(),
            services: RwLock::default(),
            clients: Mutex::default(),
            dirty,
            metrics,
            settings,
            changed: Mutex::default(),
            tracking: Default::default(),
        }
    }

    /// A strictly increasing `lastRefTime` (epoch ms): clients drop ServiceInfo whose
    /// `lastRefTime` is not newer than what they hold, so two renders in one millisecond must differ.
    pub fn ref_time(&self) -> i64 {
        use std::sync::atomic::Ordering;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut prev = self.ref_clock.load(Ordering::Relaxed);
        loop {
            let next = now.max(prev + 1);
            match self.ref_clock.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }

    /// The queue of services to push.
    pub fn dirty(&self) -> &Arc<DirtySet> {
        &self.dirty
    }

    fn get(&self, key: &ServiceKey) -> Option<Arc<Mutex<ServiceState>>> {
        self.services.read().get(key).cloned()
    }

    /// The service (created when missing) and the map's own copy of its key, so long-lived
    /// indexes share the key's strings instead of keeping each request's copies.
    fn get_or_create(&self, key: &ServiceKey) -> (Arc<Mutex<ServiceState>>, ServiceKey) {
        if let Some((k, s)) = self.services.read().get_key_value(key) {
            return (s.clone(), k.clone());
        }
        let mut map = self.services.write();
        if !map.contains_key(key) {
            map.insert(key.clone(), Arc::new(Mutex::new(ServiceState::new())));
            self.metrics.services.set(map.len() as i64);
        }
        let (k, s) = map.get_key_value(key).expect("just inserted");
        (s.clone(), k.clone())
    }

    /// Queues a push of `key`, but only when someone listens (gRPC subscribers or UDP
    /// watchers): changes to services nobody subscribes to cost no push work at all.
    fn mark(&self, key: &ServiceKey) {
        let interested = self.get(key).is_some_and(|s| {
            let s = s.lock();
            !s.subscribers.is_empty() || s.watchers > 0
        });
        if interested {
            self.dirty.mark(PushTask { key: key.clone(), only: None });
        }
    }

    /// Registers (`on`) or drops interest of a non-gRPC subscriber (v1 UDP push) in `key`.
    pub fn watch(&self, key: &ServiceKey, on: bool) {
        let (svc, _) = self.get_or_create(key);
        let mut s = svc.lock();
        if on {
            s.watchers += 1;
        } else {
            s.watchers = s.watchers.saturating_sub(1);
        }
    }

    fn index_publish(&self, client: &ClientId, key: &ServiceKey, present: bool) {
        let mut clients = self.clients.lock();
        if present {
            clients.entry(client.clone()).or_default().published.insert(key.clone());
        } else if let Some(ix) = clients.get_mut(client) {
            ix.published.remove(key);
            if ix.published.is_empty() && ix.subscribed.is_empty() {
                clients.remove(client);
            }
        }
    }

    /// Replaces `client`'s instances in a service with `instances` (empty removes them).
    /// A gRPC connection or a v1 client holds one publication per service, as in Nacos.
    pub fn publish(&self, client: &ClientId, key: &ServiceKey, instances: Vec<Instance>) {
        let (svc, key) = self.get_or_create(key);
        let key = &key;
        let present = !instances.is_empty();
        let new_len = instances.len() as i64;
        {
            let mut s = svc.lock();
            let old = if present {
                let instances = instances.into_iter().map(|i| s.adopt(i)).collect();
                s.publishers.insert(client.clone(), Publication { instances, last_beat: Instant::now() })
            } else {
                match s.publishers.remove(client) {
                    Some(p) => Some(p),
                    None => return,
                }
            };
            let old_len = old.map_or(0, |p| p.instances.len() as i64);
            let delta = s.changed(new_len - old_len);
            self.metrics.instances.add(delta);
        }
        self.index_publish(client, key, present);
        self.touched(client);
        self.mark(key);
    }

    /// Adds or replaces one endpoint (ip, port, cluster) in `client`'s publication.
    pub fn upsert(&self, client: &ClientId, key: &ServiceKey, inst: Instance) {
        let (svc, key) = self.get_or_create(key);
        let key = &key;
        {
            let mut s = svc.lock();
            let inst = s.adopt(inst);
            let p = s
                .publishers
                .entry(client.clone())
                .or_insert_with(|| Publication { instances: Vec::new(), last_beat: Instant::now() });
            let before = p.instances.len() as i64;
            p.instances.retain(|i| !i.same_endpoint(&inst.ip, inst.port, &inst.cluster));
            p.instances.push(inst);
            p.last_beat = Instant::now();
            let delta = p.instances.len() as i64 - before;
            let delta = s.changed(delta);
            self.metrics.instances.add(delta);
        }
        self.index_publish(client, key, true);
        self.touched(client);
        self.mark(key);
    }

    /// Removes one endpoint from `client`'s publication; `true` when something was removed.
    pub fn remove_endpoint(&self, client: &ClientId, key: &ServiceKey, ip: &str, port: u16, cluster: &str) -> bool {
        let Some(svc) = self.get(key) else {
            return false;
        };
        let now_empty;
        {
            let mut s = svc.lock();
            let Some(p) = s.publishers.get_mut(client) else {
                return false;
            };
            let before = p.instances.len();
            p.instances.retain(|i| !i.same_endpoint(ip, port, cluster));
            if p.instances.len() == before {
                return false;
            }
            let delta = p.instances.len() as i64 - before as i64;
            now_empty = p.instances.is_empty();
            if now_empty {
                s.publishers.remove(client);
            }
            let delta = s.changed(delta);
            self.metrics.instances.add(delta);
        }
        if now_empty {
            self.index_publish(client, key, false);
        }
        self.touched(client);
        self.mark(key);
        true
    }

    /// Subscribes a gRPC connection. The subscription is in place before the caller reads the
    /// current state for its reply, so every later change reaches it by push (after the
    /// dispatcher's settle window, see [`crate::api::push::SUBSCRIBE_SETTLE`]); no extra initial
    /// push is sent when nothing changed.
    pub fn subscribe(&self, conn: u64, key: &ServiceKey, clusters: &str) {
        let (svc, key) = self.get_or_create(key);
        let key = &key;
        let added = svc.lock().subscribers.insert(conn, (clusters.into(), Instant::now())).is_none();
        if added {
            self.metrics.subscribers.inc();
            self.clients.lock().entry(ClientId::Conn(conn)).or_default().subscribed.insert(key.clone());
        }
    }

    /// Removes a gRPC subscription.
    pub fn unsubscribe(&self, conn: u64, key: &ServiceKey) {
        let Some(svc) = self.get(key) else { return };
        if svc.lock().subscribers.remove(&conn).is_some() {
            self.metrics.subscribers.dec();
            let client = ClientId::Conn(conn);
            let mut clients = self.clients.lock();
            if let Some(ix) = clients.get_mut(&client) {
                ix.subscribed.remove(key);
                if ix.published.is_empty() && ix.subscribed.is_empty() {
                    clients.remove(&client);
                }
            }
        }
    }

    /// Drops everything a client published or subscribed (connection closed, client expired).
    pub fn client_gone(&self, client: &ClientId) {
        let Some(ix) = self.clients.lock().remove(client) else {
            return;
        };
        if !ix.published.is_empty() {
            self.touched(client);
        }
        for key in &ix.published {
            if let Some(svc) = self.get(key) {
                let mut s = svc.lock();
                if let Some(p) = s.publishers.remove(client) {
                    let delta = s.changed(-(p.instances.len() as i64));
                    self.metrics.instances.add(delta);
                    drop(s);
                    self.mark(key);
                }
            }
        }
        if let ClientId::Conn(conn) = client {
            for key in &ix.subscribed {
                if let Some(svc) = self.get(key)
                    && svc.lock().subscribers.remove(conn).is_some()
                {
                    self.metrics.subscribers.dec();
                }
            }
        }
    }

    /// Selects instances of a service; `None` when the service does not exist.
    pub fn query(&self, key: &ServiceKey, clusters: &[String], healthy_only: bool) -> Option<Selection> {
        let svc = self.get(key)?;
        let (all, protect) = {
            let mut s = svc.lock();
            (s.instances(), s.protect())
        };
        Some(select(&all, clusters, healthy_only, protect))
    }

    /// Finds one instance by endpoint, across publishers.
    pub fn find_instance(&self, key: &ServiceKey, ip: &str, port: u16, cluster: &str) -> Option<Instance> {
        let svc = self.get(key)?;
        let mut s = svc.lock();
        s.instances().iter().find(|i| i.same_endpoint(ip, port, cluster)).map(|i| Instance::clone(i))
    }

    /// Applies `f` to every instance at an endpoint (any publisher); `false` when none matched.
    pub fn update_instance(
        &self,
        key: &ServiceKey,
        ip: &str,
        port: u16,
        cluster: &str,
        f: impl Fn(&mut Instance),
    ) -> bool {
        let Some(svc) = self.get(key) else {
            return false;
        };
        let mut touched = Vec::new();
        {
            let mut s = svc.lock();
            // Copies of other nodes' clients change only through their owners.
            for (client, p) in s.publishers.iter_mut().filter(|(c, _)| !matches!(c, ClientId::Remote(_))) {
                for i in p.instances.iter_mut().filter(|i| i.same_endpoint(ip, port, cluster)) {
                    f(Arc::make_mut(i));
                    touched.push(client.clone());
                }
            }
            if !touched.is_empty() {
                s.changed(0);
            }
        }
        for c in &touched {
            self.touched(c);
        }
        if !touched.is_empty() {
            self.mark(key);
        }
        !touched.is_empty()
    }

    /// All instances of a service and its protect threshold (for pushes outside gRPC).
    pub fn instances_view(&self, key: &ServiceKey) -> Option<(Snapshot, Option<f32>)> {
        let svc = self.get(key)?;
        let mut s = svc.lock();
        Some((s.instances(), s.protect()))
    }

    /// What a push needs; `None` when the service is gone or nobody subscribes (the instance
    /// snapshot is not built for services without subscribers).
    pub fn push_view(&self, key: &ServiceKey) -> Option<PushView> {
        let svc = self.get(key)?;
        let mut s = svc.lock();
        if s.subscribers.is_empty() {
            return None;
        }
        Some(PushView {
            instances: s.instances(),
            protect: s.protect(),
            subscribers: s.subscribers.iter().map(|(c, (cl, at))| (*c, cl.clone(), *at)).collect(),
        })
    }

    /// Renews a v1 heartbeat client's instance; `false` when it is not registered.
    pub fn beat(&self, client: &ClientId, key: &ServiceKey, ip: &str, port: u16, cluster: &str) -> bool {
        let Some(svc) = self.get(key) else {
            return false;
        };
        let revived;
        {
            let mut s = svc.lock();
            let Some(p) = s.publishers.get_mut(client) else {
                return false;
            };
            let Some(i) = p.instances.iter_mut().find(|i| i.same_endpoint(ip, port, cluster)) else {
                return false;
            };
            p.last_beat = Instant::now();
            revived = !i.healthy;
            if revived {
                Arc::make_mut(i).healthy = true;
                s.changed(0);
            }
        }
        if revived {
            self.touched(client);
            self.mark(key);
        }
        true
    }
}

mod maintenance;
pub mod replica;
mod services;
#[cfg(test)]
mod tests;
