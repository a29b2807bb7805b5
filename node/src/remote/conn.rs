//! The client connections of this node: one per TCP transport, registered once the client sends
//! `ConnectionSetupRequest` on its bi-stream. Server→client requests (pushes, detection, reset)
//! go out on the stream and their acknowledgements are matched by `requestId`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_proto::nacos::Payload;
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::remote::wire;

/// Outbound queue depth of one bi-stream.
pub const STREAM_QUEUE: usize = 1024;

/// What a client told us in `ConnectionSetupRequest`.
#[derive(Clone, Debug, Default)]
pub struct ConnMeta {
    /// `clientVersion`, e.g. `Nacos-Java-Client:v2.5.1`.
    pub client_version: String,
    /// `labels.AppName`.
    pub app_name: String,
    /// `labels.module` (`naming` / `config`).
    pub module: String,
    /// `tenant`.
    pub namespace: String,
}

/// Called when a server→client request is acknowledged (`true`) or times out (`false`).
pub type AckCallback = Box<dyn FnOnce(bool, Duration) + Send>;

struct Pending {
    sent: Instant,
    deadline: Instant,
    on_done: Option<AckCallback>,
}

/// One client connection (one TCP transport).
pub struct Conn {
    /// Node-local number.
    pub num: u64,
    /// Nacos connection id `<epochMillis>_<remoteIp>_<remotePort>`.
    pub id: Arc<str>,
    /// Peer address.
    pub remote: SocketAddr,
    registered: AtomicBool,
    last_active_ms: AtomicU64,
    detecting: AtomicBool,
    meta: Mutex<Option<ConnMeta>>,
    tx: Mutex<Option<mpsc::Sender<Box<Payload>>>>,
    pending: Mutex<HashMap<u64, Pending>>,
    stop: CancellationToken,
}

impl Conn {
    /// Cancelled when the connection is unregistered.
    pub fn stopped(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Whether `ConnectionSetupRequest` has been received and the stream is open.
    pub fn is_registered(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    /// The setup metadata, once registered.
    pub fn meta(&self) -> Option<ConnMeta> {
        self.meta.lock().clone()
    }
}

type CloseHook = Box<dyn Fn(u64) + Send + Sync>;

/// All connections of the client gRPC port.
pub struct Connections {
    map: RwLock<HashMap<u64, Arc<Conn>>>,
    next_num: AtomicU64,
    next_request_id: AtomicU64,
    epoch: Instant,
    metrics: Metrics,
    on_unregister: RwLock<Vec<CloseHook>>,
}

fn epoch_millis() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

impl Connections {
    /// Creates an empty set.
    pub fn new(metrics: Metrics) -> Self {
        Connections {
            map: RwLock::default(),
            next_num: AtomicU64::new(1),
            next_request_id: AtomicU64::new(1),
            epoch: Instant::now(),
            metrics,
            on_unregister: RwLock::default(),
        }
    }

    /// Adds a hook run (with the connection number) whenever a registered connection goes away.
    pub fn on_unregister(&self, hook: impl Fn(u64) + Send + Sync + 'static) {
        self.on_unregister.write().push(Box::new(hook));
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A new transport was accepted: allocates its connection id.
    pub fn accept(&self, remote: SocketAddr) -> u64 {
        let num = self.next_num.fetch_add(1, Ordering::Relaxed);
        let id: Arc<str> = format!("{}_{}_{}", epoch_millis(), remote.ip(), remote.port()).into();
        let conn = Arc::new(Conn {
            num,
            id,
            remote,
            registered: AtomicBool::new(false),
            last_active_ms: AtomicU64::new(self.now_ms()),
            detecting: AtomicBool::new(false),
            meta: Mutex::new(None),
            tx: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            stop: CancellationToken::new(),
        });
        self.map.write().insert(num, conn);
        self.metrics.grpc_transports.inc();
        num
    }

    /// Looks up a connection.
    pub fn get(&self, num: u64) -> Option<Arc<Conn>> {
        self.map.read().get(&num).cloned()
    }

    /// Registers the connection's bi-stream after `ConnectionSetupRequest`.
    pub fn register(&self, num: u64, meta: ConnMeta, tx: mpsc::Sender<Box<Payload>>) -> bool {
        let Some(conn) = self.get(num) else {
            return false;
        };
        *conn.meta.lock() = Some(meta);
        *conn.tx.lock() = Some(tx);
        if !conn.registered.swap(true, Ordering::AcqRel) {
            self.metrics.grpc_connections.inc();
        }
        self.touch(&conn);
        true
    }

    /// Records activity (any request) on a connection.
    pub fn touch(&self, conn: &Conn) {
        conn.last_active_ms.store(self.now_ms(), Ordering::Relaxed);
        conn.detecting.store(false, Ordering::Relaxed);
    }

    /// Unregisters a connection (stream ended, detection failed, or transport closed): closes its
    /// stream, fails its pending requests and runs the unregister hooks once.
    pub fn unregister(&self, num: u64) {
        let Some(conn) = self.get(num) else { return };
        self.unregister_conn(&conn);
    }

    fn unregister_conn(&self, conn: &Conn) {
        if !conn.registered.swap(false, Ordering::AcqRel) {
            return;
        }
        conn.tx.lock().take();
        conn.stop.cancel();
        self.metrics.grpc_connections.dec();
        let pending: Vec<Pending> = conn.pending.lock().drain().map(|(_, p)| p).collect();
        for p in pending {
            if let Some(cb) = p.on_done {
                cb(false, p.sent.elapsed());
            }
        }
        for hook in self.on_unregister.read().iter() {
            hook(conn.num);
        }
    }

    /// The TCP transport is gone.
    pub fn transport_closed(&self, num: u64) {
        let conn = self.map.write().remove(&num);
        if let Some(conn) = conn {
            self.metrics.grpc_transports.dec();
            self.unregister_conn(&conn);
        }
    }

    /// Sends a server→client request of type `ty`; `fields` are extra JSON members (without
    /// braces). Returns `false` when the connection is not registered or its queue is full.
    pub fn send_request(
        &self,
        num: u64,
        ty: &str,
        module: &str,
        fields: &str,
        timeout: Duration,
        on_done: Option<AckCallback>,
    ) -> bool {
        let Some(conn) = self.get(num) else {
            return false;
        };
        let Some(tx) = conn.tx.lock().clone() else {
            return false;
        };
        let rid = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let body = wire::server_request_body(&rid.to_string(), module, fields);
        let now = Instant::now();
        conn.pending.lock().insert(rid, Pending { sent: now, deadline: now + timeout, on_done });
        if tx.try_send(Box::new(wire::payload(ty, body))).is_err() {
            conn.pending.lock().remove(&rid);
            return false;
        }
        true
    }

    /// Sends a payload that expects no answer (e.g. `SetupAckRequest`).
    pub fn send_oneway(&self, num: u64, payload: Payload) -> bool {
        let Some(conn) = self.get(num) else {
            return false;
        };
        let Some(tx) = conn.tx.lock().clone() else {
            return false;
        };
        tx.try_send(Box::new(payload)).is_ok()
    }

    /// Matches a client's response on the stream to a pending request.
    pub fn acknowledge(&self, num: u64, request_id: &str) {
        let Some(conn) = self.get(num) else { return };
        self.touch(&conn);
        let Ok(rid) = request_id.parse::<u64>() else {
            return;
        };
        let pending = conn.pending.lock().remove(&rid);
        if let Some(Pending { sent, on_done: Some(cb), .. }) = pending {
            cb(true, sent.elapsed());
        }
    }

    /// Fails pending requests past their deadline.
    pub fn expire_pending(&self, now: Instant) {
        for conn in self.all() {
            let expired: Vec<Pending> = {
                let mut p = conn.pending.lock();
                let ids: Vec<u64> = p.iter().filter(|(_, v)| v.deadline <= now).map(|(k, _)| *k).collect();
                ids.into_iter().filter_map(|id| p.remove(&id)).collect()
            };
            for p in expired {
                if let Some(cb) = p.on_done {
                    cb(false, p.sent.elapsed());
                }
            }
        }
    }

    /// Registered connections idle for at least `idle` that are not already being probed;
    /// marks them as being probed.
    pub fn idle_for_detection(&self, idle: Duration) -> Vec<u64> {
        let now = self.now_ms();
        let idle_ms = idle.as_millis() as u64;
        self.all()
            .into_iter()
            .filter(|c| c.is_registered())
            .filter(|c| now.saturating_sub(c.last_active_ms.load(Ordering::Relaxed)) >= idle_ms)
            .filter(|c| !c.detecting.swap(true, Ordering::Relaxed))
            .map(|c| c.num)
            .collect()
    }

    /// Every connection (registered or not).
    pub fn all(&self) -> Vec<Arc<Conn>> {
        self.map.read().values().cloned().collect()
    }

    /// Numbers of registered connections.
    pub fn registered(&self) -> Vec<u64> {
        self.map.read().values().filter(|c| c.is_registered()).map(|c| c.num).collect()
    }
}
