//! Pushes `ConfigChangeNotifyRequest` to every gRPC connection listening to a changed config.
//! Unacknowledged notifications are re-sent (2 s × attempt, up to 5 attempts); the client then
//! re-queries the config itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::configs::listeners::Spelled;
use crate::configs::model::ConfigKey;
use crate::configs::service::ConfigService;
use crate::metrics::Metrics;
use crate::remote::Connections;

const MAX_ATTEMPTS: u32 = 5;

struct Retry {
    due: Instant,
    conn: u64,
    spelled: Spelled,
    attempt: u32,
}

/// The config push task.
pub struct ConfigPusher {
    /// Config service (listener registry).
    pub service: Arc<ConfigService>,
    /// gRPC connections.
    pub conns: Arc<Connections>,
    /// Metrics.
    pub metrics: Metrics,
    /// Ack deadline.
    pub timeout: Duration,
}

fn fields(s: &Spelled) -> String {
    let q = |v: &str| serde_json::to_string(v).unwrap_or_else(|_| "\"\"".into());
    format!("\"dataId\":{},\"group\":{},\"tenant\":{}", q(&s.data_id), q(&s.group), q(&s.tenant))
}

impl ConfigPusher {
    fn send(&self, conn: u64, spelled: Spelled, attempt: u32, retries: &Arc<Mutex<Vec<Retry>>>) {
        let r = retries.clone();
        let m = self.metrics.clone();
        let s = spelled.clone();
        let on_done = Box::new(move |acked: bool, _: Duration| {
            if acked {
                m.config_pushes.with_label_values(&["ok"]).inc();
            } else {
                m.config_pushes.with_label_values(&["timeout"]).inc();
                if attempt < MAX_ATTEMPTS {
                    let due = Instant::now() + Duration::from_secs(2 * u64::from(attempt));
                    r.lock().push(Retry { due, conn, spelled: s, attempt: attempt + 1 });
                }
            }
        });
        if !self.conns.send_request(
            conn,
            "ConfigChangeNotifyRequest",
            "config",
            &fields(&spelled),
            self.timeout,
            Some(on_done),
        ) {
            self.metrics.config_pushes.with_label_values(&["failed"]).inc();
        }
    }

    /// Runs until `cancel` fires.
    pub async fn run(self, mut changes: mpsc::UnboundedReceiver<ConfigKey>, cancel: CancellationToken) {
        let retries: Arc<Mutex<Vec<Retry>>> = Arc::default();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut keys = Vec::new();
        loop {
            tokio::select! {
                n = changes.recv_many(&mut keys, 1024) => {
                    if n == 0 {
                        return;
                    }
                    for key in keys.drain(..) {
                        for (conn, spelled) in self.service.listeners().grpc_listeners(&key) {
                            self.send(conn, spelled, 1, &retries);
                        }
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let due: Vec<Retry> = {
                        let mut r = retries.lock();
                        let (due, later): (Vec<_>, Vec<_>) = r.drain(..).partition(|x| x.due <= now);
                        *r = later;
                        due
                    };
                    for r in due {
                        self.send(r.conn, r.spelled, r.attempt, &retries);
                    }
                }
                _ = cancel.cancelled() => return,
            }
        }
    }
}
