//! Distro: AP replication of ephemeral naming data between cluster members.
//!
//! - **Ownership.** A gRPC client's instances belong to the node it is connected to; a v1
//!   heartbeat client belongs to the member its service hashes to over the sorted member list
//!   (other members forward its writes, see `api::http::forward`).
//! - **Sync.** Every `sync_delay` (default 1 s) the owner sends the clients that changed —
//!   their whole publication at a new revision, or a removal — to every peer, in one batch.
//! - **Verify.** Every `verify_interval` (default 5 s) the owner sends every client id with its
//!   revision; a peer renews the copies that match, drops those the owner no longer has, and
//!   names the ones it lacks, which the owner then sends. A member that joins the set is
//!   verified at once, so it converges without waiting for the next round.
//! - **Expiry.** A copy not verified for `expire_after` (default 15 s) is dropped: its owner
//!   died or is cut off, and its clients reconnect (and re-register) elsewhere.
//! - **Snapshot.** A starting node loads every peer's own clients before it reports ready.
//!
//! Copies live in the registry as [`ClientId::Remote`](crate::naming::ClientId) clients, so
//! queries and pushes on every node see every node's instances.

pub mod owned;
pub mod peers;
pub mod replicas;
pub mod server;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, IntGauge, Opts};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::membership::Membership;
use crate::metrics::Metrics;
use crate::naming::Registry;
use owned::Owned;
use peers::Peers;
use replicas::Replicas;
use wire::{Origin, SyncBatch};

/// Distro timings.
#[derive(Debug, Clone)]
pub struct DistroSettings {
    /// Changes are batched for this long before they are sent.
    pub sync_delay: Duration,
    /// Every client is verified with every peer this often.
    pub verify_interval: Duration,
    /// A copy not verified for this long is dropped.
    pub expire_after: Duration,
    /// Longest time a starting node spends loading one peer's snapshot.
    pub snapshot_timeout: Duration,
}

impl Default for DistroSettings {
    fn default() -> Self {
        DistroSettings {
            sync_delay: Duration::from_secs(1),
            verify_interval: Duration::from_secs(5),
            expire_after: Duration::from_secs(15),
            snapshot_timeout: Duration::from_secs(30),
        }
    }
}

/// Clients per snapshot message.
const SNAPSHOT_BATCH: usize = 2_000;

struct DistroMetrics {
    messages: IntCounterVec,
    clients_sent: IntCounterVec,
    owned: IntGauge,
    copies: IntGauge,
    expired: IntCounterVec,
}

impl DistroMetrics {
    fn new(m: &Metrics) -> Result<Self> {
        let d = DistroMetrics {
            messages: IntCounterVec::new(
                Opts::new("cairn_distro_messages_total", "Distro messages sent, by kind and result"),
                &["kind", "result"],
            )?,
            clients_sent: IntCounterVec::new(
                Opts::new("cairn_distro_clients_sent_total", "Client copies and removals sent to peers, by kind"),
                &["kind"],
            )?,
            owned: IntGauge::new("cairn_distro_owned_clients", "Clients with instances owned by this node")?,
            copies: IntGauge::new("cairn_distro_remote_clients", "Copies of other nodes' clients held here")?,
            expired: IntCounterVec::new(
                Opts::new("cairn_distro_expired_total", "Copies dropped because their owner stopped verifying them"),
                &["reason"],
            )?,
        };
        m.register_collector(Box::new(d.messages.clone()))?;
        m.register_collector(Box::new(d.clients_sent.clone()))?;
        m.register_collector(Box::new(d.owned.clone()))?;
        m.register_collector(Box::new(d.copies.clone()))?;
        m.register_collector(Box::new(d.expired.clone()))?;
        Ok(d)
    }
}

/// A node's Distro: its own clients, copies of its peers', and the channels between them.
pub struct Distro {
    owned: Owned,
    replicas: Replicas,
    peers: Peers,
    membership: Membership,
    settings: DistroSettings,
    metrics: DistroMetrics,
    loaded: AtomicBool,
}

impl Distro {
    /// Starts tracking `registry`'s local clients; nothing is sent until [`run`](Self::run).
    pub fn new(
        registry: Arc<Registry>,
        membership: Membership,
        settings: DistroSettings,
        metrics: &Metrics,
    ) -> Result<Arc<Distro>> {
        // Incarnations grow across restarts (time first), so a restarted owner's messages
        // supersede its previous life's and never the other way round.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let incarnation = (now_ms << 16) | u64::from(rand::random::<u16>());
        let origin = Origin { owner: membership.self_address().to_owned(), incarnation };
        let metrics = DistroMetrics::new(metrics)?;
        Ok(Arc::new(Distro {
            owned: Owned::new(registry.clone(), origin),
            replicas: Replicas::new(registry),
            peers: Peers::default(),
            membership,
            settings,
            metrics,
            loaded: AtomicBool::new(false),
        }))
    }

    /// Whether the starting snapshot has been loaded (part of readiness).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// The tonic service peers call.
    pub fn service(self: &Arc<Self>) -> server::DistroServer {
        server::DistroServer::new(self.clone())
    }

    /// Loads every current peer's own clients (peers that cannot be reached within the timeout
    /// are skipped: they send their data once they see this node), then marks Distro loaded.
    pub async fn load_snapshot(&self, cancel: &CancellationToken) {
        let me = self.membership.self_address().to_owned();
        let peers: Vec<String> = if self.membership.is_discovered() {
            // What the provider found first (the published member set may lag behind it).
            match self.membership.first_discovery(cancel).await {
                Some(found) => found.iter().map(|m| m.address.clone()).filter(|a| *a != me).collect(),
                None => return,
            }
        } else {
            self.membership.peers()
        };
        let started = Instant::now();
        let loads = peers.iter().map(|p| async move {
            let r = self.peers.snapshot(p, self.settings.snapshot_timeout, |b| {
                self.replicas.apply_sync(b);
            });
            (p, r.await)
        });
        let results = tokio::select! {
            r = futures::future::join_all(loads) => r,
            _ = cancel.cancelled() => return,
        };
        for (peer, r) in results {
            match r {
                Ok(n) => tracing::debug!(%peer, batches = n, "loaded Distro snapshot"),
                Err(e) => tracing::info!(%peer, error = %e, "no Distro snapshot from peer; it will sync later"),
            }
        }
        tracing::info!(
            copies = self.replicas.count(),
            ms = started.elapsed().as_millis() as u64,
            "Distro snapshot loaded"
        );
        self.loaded.store(true, Ordering::Release);
    }

    /// Runs the sync, verify and expiry loops until `cancel` fires.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut sync = tokio::time::interval(self.settings.sync_delay);
        let mut verify = tokio::time::interval(self.settings.verify_interval);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        verify.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut members = self.membership.subscribe();
        let mut known = self.membership.peers();
        loop {
            tokio::select! {
                _ = sync.tick() => self.send_changes(),
                _ = verify.tick() => {
                    self.verify_with(&self.membership.peers());
                    self.expire();
                }
                r = members.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let now = self.membership.peers();
                    let joined: Vec<String> = now.iter().filter(|p| !known.contains(p)).cloned().collect();
                    self.peers.retain(&now);
                    if !joined.is_empty() {
                        tracing::info!(?joined, "verifying with new members");
                        self.verify_with(&joined);
                    }
                    known = now;
                }
                _ = cancel.cancelled() => return,
            }
        }
    }

    fn send_changes(self: &Arc<Self>) {
        let batch = self.owned.take_changes();
        self.metrics.owned.set(self.owned.count() as i64);
        if batch.upserts.is_empty() && batch.removals.is_empty() {
            return;
        }
        let peers = self.membership.peers();
        if peers.is_empty() {
            return;
        }
        self.metrics.clients_sent.with_label_values(&["upsert"]).inc_by((batch.upserts.len() * peers.len()) as u64);
        self.metrics.clients_sent.with_label_values(&["removal"]).inc_by((batch.removals.len() * peers.len()) as u64);
        let payload = Arc::new(wire::encode(&batch));
        for peer in peers {
            let (me, payload) = (self.clone(), payload.clone());
            tokio::spawn(async move {
                let r = me.peers.sync(&peer, payload.to_vec()).await;
                me.count_message("sync", &peer, r);
            });
        }
    }

    fn verify_with(self: &Arc<Self>, peers: &[String]) {
        if peers.is_empty() {
            return;
        }
        let payload = Arc::new(wire::encode(&self.owned.verify()));
        for peer in peers {
            let (me, payload, peer) = (self.clone(), payload.clone(), peer.clone());
            tokio::spawn(async move {
                match me.peers.verify(&peer, payload.to_vec()).await {
                    Ok(reply) => {
                        me.count_message("verify", &peer, Ok(()));
                        if reply.missing.is_empty() {
                            return;
                        }
                        me.metrics.clients_sent.with_label_values(&["repair"]).inc_by(reply.missing.len() as u64);
                        for chunk in reply.missing.chunks(SNAPSHOT_BATCH) {
                            let batch = me.owned.copies(chunk);
                            let r = me.peers.sync(&peer, wire::encode(&batch)).await;
                            me.count_message("repair", &peer, r);
                        }
                    }
                    Err(e) => me.count_message("verify", &peer, Err(e)),
                }
            });
        }
    }

    fn expire(&self) {
        let n = self.replicas.expire(Instant::now(), self.settings.expire_after);
        if n > 0 {
            tracing::info!(clients = n, "expired copies no longer verified by their owners");
            self.metrics.expired.with_label_values(&["unverified"]).inc_by(n as u64);
        }
        self.metrics.copies.set(self.replicas.count() as i64);
    }

    fn count_message(&self, kind: &str, peer: &str, r: std::result::Result<(), String>) {
        let result = if r.is_ok() { "ok" } else { "failed" };
        self.metrics.messages.with_label_values(&[kind, result]).inc();
        if let Err(e) = r {
            tracing::debug!(%peer, error = %e, "Distro {kind} failed");
        }
    }

    /// Applies a peer's changes (server side).
    fn receive_sync(&self, batch: SyncBatch) {
        if batch.origin.owner != self.owned.origin().owner {
            self.replicas.apply_sync(batch);
        }
    }
}
