//! The push dispatcher: drains the registry's dirty set and sends `NotifySubscriberRequest` to
//! every gRPC subscriber (and UDP packets to v1 subscribers). One ServiceInfo is rendered per
//! distinct cluster filter, not per subscriber. A push that is not acknowledged in time is
//! counted as failed and retried with the then-current data.
//!
//! A change that happens within [`SUBSCRIBE_SETTLE`] of a connection's subscribe is pushed to
//! that connection only when the window ends. Clients handle the subscribe reply and pushes on
//! different threads, and the Java client stores whatever it handles last, even data older than
//! what it holds (it only skips the change event). A push overtaking the subscribe reply would
//! leave the client holding the reply's older instance list, and the next real change could then
//! look like no change at all. Nacos delays every push by 500 ms (`pushTaskDelay`); Cairn delays
//! only pushes to fresh subscriptions, by the same amount.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::api::dto::{NameStyle, ServiceInfoOut};
use crate::api::udp::UdpPush;
use crate::metrics::Metrics;
use crate::naming::model::{parse_clusters, select};
use crate::naming::{PushTask, Registry, ServiceKey};
use crate::remote::Connections;

/// How long after a (re)subscribe changes are held back from that subscriber.
pub const SUBSCRIBE_SETTLE: Duration = Duration::from_millis(500);

/// Everything the dispatcher needs.
pub struct Pusher {
    /// The registry whose dirty set is drained.
    pub registry: Arc<Registry>,
    /// gRPC connections.
    pub conns: Arc<Connections>,
    /// v1 UDP subscribers.
    pub udp: Arc<UdpPush>,
    /// Metrics.
    pub metrics: Metrics,
    /// Ack deadline.
    pub timeout: Duration,
}

impl Pusher {
    /// Runs until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        let dirty = self.registry.dirty().clone();
        loop {
            tokio::select! {
                _ = dirty.wait() => {}
                _ = cancel.cancelled() => return,
            }
            let tasks = dirty.drain();
            // A full push of a service covers any targeted push of the same service.
            let full: std::collections::HashSet<ServiceKey> =
                tasks.iter().filter(|(t, _)| t.only.is_none()).map(|(t, _)| t.key.clone()).collect();
            for (task, since) in tasks {
                if task.only.is_some() && full.contains(&task.key) {
                    continue;
                }
                self.push(&task, &cancel);
                if task.only.is_none() {
                    self.udp.push(&task.key);
                }
                self.metrics.push_dispatch_seconds.observe(since.elapsed().as_secs_f64());
            }
        }
    }

    fn push(&self, task: &PushTask, cancel: &CancellationToken) {
        let Some(view) = self.registry.push_view(&task.key) else {
            return;
        };
        let mut rendered: HashMap<&str, String> = HashMap::new();
        let mut settling: Vec<u64> = Vec::new();
        let now = Instant::now();
        let mut settle_at = now;
        for (conn, clusters, since) in &view.subscribers {
            if task.only.is_some_and(|only| only != *conn) {
                continue;
            }
            let ready_at = *since + SUBSCRIBE_SETTLE;
            if ready_at > now {
                settling.push(*conn);
                settle_at = settle_at.max(ready_at);
                continue;
            }
            let fields = rendered.entry(clusters).or_insert_with(|| {
                let sel = select(&view.instances, &parse_clusters(clusters), false, view.protect);
                let info = ServiceInfoOut::new(&task.key, NameStyle::Bare, clusters, &sel, self.registry.ref_time());
                format!("\"serviceInfo\":{}", serde_json::to_string(&info).unwrap_or_else(|_| "{}".into()))
            });
            let metrics = self.metrics.clone();
            let dirty = self.registry.dirty().clone();
            let key = task.key.clone();
            let conn_num = *conn;
            let on_done = Box::new(move |acked: bool, elapsed: Duration| {
                if acked {
                    metrics.pushes.with_label_values(&["grpc", "ok"]).inc();
                    metrics.push_ack_seconds.observe(elapsed.as_secs_f64());
                } else {
                    metrics.pushes.with_label_values(&["grpc", "timeout"]).inc();
                    dirty.mark(PushTask { key, only: Some(conn_num) });
                }
            });
            let sent = self.conns.send_request(
                *conn,
                "NotifySubscriberRequest",
                "naming",
                fields,
                self.timeout,
                Some(on_done),
            );
            if !sent {
                self.metrics.pushes.with_label_values(&["grpc", "failed"]).inc();
            }
        }
        if !settling.is_empty() {
            self.push_later(&task.key, settling, settle_at, cancel);
        }
    }

    /// Queues a targeted push of `key` to each of `conns` at `at` (the end of their settle window).
    fn push_later(&self, key: &ServiceKey, conns: Vec<u64>, at: Instant, cancel: &CancellationToken) {
        let dirty = self.registry.dirty().clone();
        let key = key.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until((at + Duration::from_millis(1)).into()) => {}
                _ = cancel.cancelled() => return,
            }
            for conn in conns {
                dirty.mark(PushTask { key: key.clone(), only: Some(conn) });
            }
        });
    }
}
