//! UDP push for Nacos 1.x clients: a v1 `instance/list` call with `udpPort` (and `clientIP`)
//! subscribes that address for the service. On change the node sends
//! `{"type":"dom","data":"<ServiceInfo JSON>","lastRefTime":N}`; the client answers
//! `{"type":"push-ack","lastRefTime":"N",...}`. Unacknowledged packets are re-sent every second,
//! three attempts in all. A subscriber expires when it stops listing (see `--udp-subscriber-ttl-ms`).
//! Packets that would exceed one datagram are not sent (the client still polls).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::api::dto::{NameStyle, ServiceInfoOut};
use crate::metrics::Metrics;
use crate::naming::model::{parse_clusters, select};
use crate::naming::{Registry, ServiceKey};

const MAX_DATAGRAM: usize = 65_000;
const RETRY_EVERY: Duration = Duration::from_secs(1);
const ATTEMPTS: u32 = 3;

struct Sub {
    clusters: String,
    expires: Instant,
}

struct PendingPacket {
    addr: SocketAddr,
    packet: Vec<u8>,
    attempts: u32,
    last_sent: Instant,
}

/// v1 UDP subscribers and their unacknowledged pushes.
pub struct UdpPush {
    socket: UdpSocket,
    subs: Mutex<HashMap<ServiceKey, HashMap<SocketAddr, Sub>>>,
    pending: Mutex<HashMap<u64, PendingPacket>>,
    next_ref: AtomicU64,
    ttl: Duration,
    metrics: Metrics,
    registry: Arc<Registry>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PushPacket<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: String,
    last_ref_time: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ack {
    #[serde(rename = "type")]
    kind: String,
    last_ref_time: serde_json::Value,
}

impl UdpPush {
    /// Binds the push socket on an ephemeral port of `bind`.
    pub async fn bind(
        bind: std::net::IpAddr,
        ttl: Duration,
        metrics: Metrics,
        registry: Arc<Registry>,
    ) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(SocketAddr::new(bind, 0)).await?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Ok(UdpPush {
            socket,
            subs: Mutex::default(),
            pending: Mutex::default(),
            next_ref: AtomicU64::new(seed),
            ttl,
            metrics,
            registry,
        })
    }

    /// Adds or renews a subscriber.
    pub fn subscribe(&self, key: &ServiceKey, addr: SocketAddr, clusters: &str) {
        let mut subs = self.subs.lock();
        let inserted = subs
            .entry(key.clone())
            .or_default()
            .insert(addr, Sub { clusters: clusters.to_owned(), expires: Instant::now() + self.ttl })
            .is_none();
        if inserted {
            self.metrics.subscribers.inc();
            self.registry.watch(key, true);
        }
    }

    /// Sends the current state of `key` to its UDP subscribers.
    pub fn push(&self, key: &ServiceKey) {
        let registry = &self.registry;
        let targets: Vec<(SocketAddr, String)> = match self.subs.lock().get(key) {
            Some(m) => m.iter().map(|(a, s)| (*a, s.clusters.clone())).collect(),
            None => return,
        };
        let view = registry.instances_view(key);
        for (addr, clusters) in targets {
            let sel = view
                .as_ref()
                .map(|(instances, protect)| select(instances, &parse_clusters(&clusters), false, *protect))
                .unwrap_or_default();
            let info = ServiceInfoOut::new(key, NameStyle::Grouped, &clusters, &sel, registry.ref_time());
            let ref_time = self.next_ref.fetch_add(1, Ordering::Relaxed);
            let packet = PushPacket {
                kind: "dom",
                data: serde_json::to_string(&info).unwrap_or_default(),
                last_ref_time: ref_time,
            };
            let bytes = serde_json::to_vec(&packet).unwrap_or_default();
            if bytes.len() > MAX_DATAGRAM {
                tracing::warn!(?key, size = bytes.len(), "UDP push too large for one datagram; client must poll");
                self.metrics.pushes.with_label_values(&["udp", "failed"]).inc();
                continue;
            }
            // Pending before sending: a fast client's ack may otherwise arrive before the entry
            // exists, be ignored, and the packet be re-sent although it was acknowledged.
            self.pending.lock().insert(
                ref_time,
                PendingPacket { addr, packet: bytes.clone(), attempts: 1, last_sent: Instant::now() },
            );
            let _ = self.socket.try_send_to(&bytes, addr);
        }
    }

    fn on_packet(&self, buf: &[u8]) {
        let Ok(ack) = serde_json::from_slice::<Ack>(buf) else {
            return;
        };
        if ack.kind != "push-ack" {
            return;
        }
        let id = match &ack.last_ref_time {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        };
        if let Some(id) = id
            && self.pending.lock().remove(&id).is_some()
        {
            self.metrics.pushes.with_label_values(&["udp", "ok"]).inc();
        }
    }

    fn tick(&self, now: Instant) {
        let mut resend = Vec::new();
        {
            let mut pending = self.pending.lock();
            pending.retain(|_, p| {
                if now.duration_since(p.last_sent) < RETRY_EVERY {
                    return true;
                }
                if p.attempts >= ATTEMPTS {
                    self.metrics.pushes.with_label_values(&["udp", "timeout"]).inc();
                    return false;
                }
                p.attempts += 1;
                p.last_sent = now;
                resend.push((p.addr, p.packet.clone()));
                true
            });
        }
        for (addr, bytes) in resend {
            let _ = self.socket.try_send_to(&bytes, addr);
        }
        let mut gone = Vec::new();
        self.subs.lock().retain(|key, m| {
            let before = m.len();
            m.retain(|_, s| s.expires > now);
            gone.extend(std::iter::repeat_n(key.clone(), before - m.len()));
            !m.is_empty()
        });
        self.metrics.subscribers.sub(gone.len() as i64);
        for key in &gone {
            self.registry.watch(key, false);
        }
    }

    /// Receives acks and re-sends/expiries until `cancel` fires.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut buf = vec![0u8; 2048];
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, _)) = r {
                        self.on_packet(&buf[..n]);
                    }
                }
                _ = tick.tick() => self.tick(Instant::now()),
                _ = cancel.cancelled() => return,
            }
        }
    }
}
