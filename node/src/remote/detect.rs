//! Server-side liveness: expires unanswered server→client requests and probes idle connections
//! with `ClientDetectionRequest`; a connection that does not answer is unregistered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::remote::conn::Connections;

/// Detection settings.
#[derive(Clone, Debug)]
pub struct DetectSettings {
    /// Probe connections idle this long.
    pub idle: Duration,
    /// Answer deadline for a probe.
    pub timeout: Duration,
}

/// Runs until `cancel` fires.
pub async fn run(conns: Arc<Connections>, metrics: Metrics, settings: DetectSettings, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_probe = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        conns.expire_pending(Instant::now());
        if last_probe.elapsed() < Duration::from_secs(3).min(settings.idle) {
            continue;
        }
        last_probe = Instant::now();
        for num in conns.idle_for_detection(settings.idle) {
            let c = conns.clone();
            let m = metrics.clone();
            let on_done = Box::new(move |acked: bool, _elapsed: Duration| {
                if !acked {
                    tracing::info!(conn = num, "client detection failed; closing connection");
                    m.detection_evictions.inc();
                    c.unregister(num);
                }
            });
            let sent =
                conns.send_request(num, "ClientDetectionRequest", "internal", "", settings.timeout, Some(on_done));
            if !sent {
                conns.unregister(num);
            }
        }
    }
}

/// Asks every registered client to reconnect elsewhere (graceful shutdown).
pub fn reset_all(conns: &Connections, timeout: Duration) -> usize {
    conns
        .registered()
        .into_iter()
        .filter(|num| conns.send_request(*num, "ConnectResetRequest", "internal", "", timeout, None))
        .count()
}
