//! Prometheus metrics. One [`prometheus::Registry`] is built in `main` and handed down;
//! each subsystem gets its typed handles from [`Metrics`].
//!
//! Native metrics are named `cairn_*`; the `nacos_monitor{module,name}` gauge family mirrors the
//! names Nacos exposes on `/nacos/actuator/prometheus` so existing dashboards keep working.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::error::Result;

/// All metric handles of a node.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Open client gRPC transports (TCP connections).
    pub grpc_transports: IntGauge,
    /// Registered client gRPC connections (after ConnectionSetup).
    pub grpc_connections: IntGauge,
    /// Requests by transport, type and result.
    pub requests: IntCounterVec,
    /// Request latency by transport and type.
    pub request_seconds: HistogramVec,
    /// Services held.
    pub services: IntGauge,
    /// Instances held.
    pub instances: IntGauge,
    /// Subscriptions held (gRPC and v1 UDP).
    pub subscribers: IntGauge,
    /// Pushes by channel and result (`ok`, `failed`, `timeout`).
    pub pushes: IntCounterVec,
    /// Time from sending a gRPC push to its acknowledgement.
    pub push_ack_seconds: Histogram,
    /// Time from a naming change to the push leaving the node.
    pub push_dispatch_seconds: Histogram,
    /// Connections closed by client detection.
    pub detection_evictions: IntCounter,
    /// Config change notifications by result.
    pub config_pushes: IntCounterVec,
    /// Configs held.
    pub configs: IntGauge,
    /// Parked HTTP long polls.
    pub long_polls: IntGauge,
    /// gRPC config listen registrations.
    pub config_listeners: IntGauge,
    refreshers: Arc<RwLock<Vec<ScrapeHook>>>,
    nacos_monitor: GaugeVec,
    /// Resolved per-label handles, so the hot path does not hash label values per request.
    resolved: Arc<RwLock<HashMap<String, HashMap<String, RequestHandles>>>>,
}

/// A hook run before every scrape.
type ScrapeHook = Box<dyn Fn() + Send + Sync>;

#[derive(Clone)]
struct RequestHandles {
    ok: IntCounter,
    error: IntCounter,
    seconds: Histogram,
}

fn histogram(name: &str, help: &str) -> HistogramOpts {
    HistogramOpts::new(name, help)
        .buckets(vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
}

impl Metrics {
    /// Creates the metric handles and registers them in `registry`.
    pub fn new(registry: Registry) -> Result<Self> {
        let m = Metrics {
            grpc_transports: IntGauge::new("cairn_grpc_transports", "Open client gRPC transports (TCP connections)")?,
            grpc_connections: IntGauge::new(
                "cairn_grpc_connections",
                "Registered client gRPC connections (after ConnectionSetupRequest)",
            )?,
            requests: IntCounterVec::new(
                Opts::new("cairn_requests_total", "Requests by transport, type and result"),
                &["transport", "type", "result"],
            )?,
            request_seconds: HistogramVec::new(
                histogram("cairn_request_duration_seconds", "Request handling latency"),
                &["transport", "type"],
            )?,
            services: IntGauge::new("cairn_naming_services", "Services held by the naming registry")?,
            instances: IntGauge::new("cairn_naming_instances", "Instances held by the naming registry")?,
            subscribers: IntGauge::new("cairn_naming_subscribers", "Service subscriptions (gRPC and v1 UDP)")?,
            pushes: IntCounterVec::new(
                Opts::new("cairn_naming_pushes_total", "Naming pushes by channel and result"),
                &["channel", "result"],
            )?,
            push_ack_seconds: Histogram::with_opts(histogram(
                "cairn_naming_push_ack_seconds",
                "Time from sending a naming push to the client's acknowledgement",
            ))?,
            push_dispatch_seconds: Histogram::with_opts(histogram(
                "cairn_naming_push_dispatch_seconds",
                "Time from a naming change to its pushes being handed to the transports",
            ))?,
            detection_evictions: IntCounter::new(
                "cairn_client_detection_evictions_total",
                "Connections closed because they did not answer ClientDetectionRequest",
            )?,
            config_pushes: IntCounterVec::new(
                Opts::new("cairn_config_pushes_total", "ConfigChangeNotifyRequest pushes by result"),
                &["result"],
            )?,
            configs: IntGauge::new("cairn_configs", "Configs held")?,
            long_polls: IntGauge::new("cairn_config_long_polls", "Parked HTTP long polls")?,
            config_listeners: IntGauge::new("cairn_config_listeners", "gRPC config listen registrations")?,
            refreshers: Arc::default(),
            nacos_monitor: GaugeVec::new(
                Opts::new("nacos_monitor", "Nacos-compatible monitor gauges"),
                &["module", "name"],
            )?,
            resolved: Arc::default(),
            registry,
        };
        m.registry.register(Box::new(m.grpc_transports.clone()))?;
        m.registry.register(Box::new(m.grpc_connections.clone()))?;
        m.registry.register(Box::new(m.requests.clone()))?;
        m.registry.register(Box::new(m.request_seconds.clone()))?;
        m.registry.register(Box::new(m.services.clone()))?;
        m.registry.register(Box::new(m.instances.clone()))?;
        m.registry.register(Box::new(m.subscribers.clone()))?;
        m.registry.register(Box::new(m.pushes.clone()))?;
        m.registry.register(Box::new(m.push_ack_seconds.clone()))?;
        m.registry.register(Box::new(m.push_dispatch_seconds.clone()))?;
        m.registry.register(Box::new(m.detection_evictions.clone()))?;
        m.registry.register(Box::new(m.nacos_monitor.clone()))?;
        m.registry.register(Box::new(m.config_pushes.clone()))?;
        m.registry.register(Box::new(m.configs.clone()))?;
        m.registry.register(Box::new(m.long_polls.clone()))?;
        m.registry.register(Box::new(m.config_listeners.clone()))?;
        Ok(m)
    }

    /// Counts one request and its latency.
    pub fn observe_request(&self, transport: &str, ty: &str, ok: bool, seconds: f64) {
        let cached = {
            let map = self.resolved.read();
            map.get(transport).and_then(|m| m.get(ty)).cloned()
        };
        let h = match cached {
            Some(h) => h,
            None => {
                let h = RequestHandles {
                    ok: self.requests.with_label_values(&[transport, ty, "ok"]),
                    error: self.requests.with_label_values(&[transport, ty, "error"]),
                    seconds: self.request_seconds.with_label_values(&[transport, ty]),
                };
                self.resolved.write().entry(transport.to_owned()).or_default().insert(ty.to_owned(), h.clone());
                h
            }
        };
        if ok {
            h.ok.inc()
        } else {
            h.error.inc()
        }
        h.seconds.observe(seconds);
    }

    /// Registers a collector of extra metric families (e.g. Raft's, read at scrape time).
    pub fn register_collector(&self, c: Box<dyn prometheus::core::Collector>) -> Result<()> {
        Ok(self.registry.register(c)?)
    }

    /// Adds a hook run before every scrape (to refresh gauges computed from state).
    pub fn on_scrape(&self, f: impl Fn() + Send + Sync + 'static) {
        self.refreshers.write().push(Box::new(f));
    }

    /// Refreshes the `nacos_monitor` gauges from the native metrics.
    fn refresh_nacos_monitor(&self) {
        for f in self.refreshers.read().iter() {
            f();
        }
        let set = |module: &str, name: &str, v: f64| self.nacos_monitor.with_label_values(&[module, name]).set(v);
        set("naming", "serviceCount", self.services.get() as f64);
        set("naming", "ipCount", self.instances.get() as f64);
        set("naming", "subscriberCount", self.subscribers.get() as f64);
        let ok: u64 = ["grpc", "udp"].iter().map(|c| self.pushes.with_label_values(&[c, "ok"]).get()).sum();
        let failed: u64 = ["grpc", "udp"]
            .iter()
            .flat_map(|c| ["failed", "timeout"].map(|r| self.pushes.with_label_values(&[c, r]).get()))
            .sum();
        set("naming", "totalPush", (ok + failed) as f64);
        set("naming", "failedPush", failed as f64);
        let h = &self.push_ack_seconds;
        let avg_ms =
            if h.get_sample_count() > 0 { h.get_sample_sum() / h.get_sample_count() as f64 * 1000.0 } else { 0.0 };
        set("naming", "avgPushCost", avg_ms);
        set("naming", "leaderStatus", 1.0);
        set("core", "longConnection", self.grpc_connections.get() as f64);
        set("config", "configCount", self.configs.get() as f64);
        set("config", "longPolling", self.long_polls.get() as f64);
        let notify: u64 =
            ["ok", "timeout", "failed"].iter().map(|r| self.config_pushes.with_label_values(&[r]).get()).sum();
        set("config", "notifyClientTask", notify as f64);
    }

    /// Text exposition of every metric (`/metrics`).
    pub fn render_all(&self) -> String {
        self.refresh_nacos_monitor();
        encode(&self.registry.gather())
    }

    /// Text exposition of the Nacos-compatible families only (`/nacos/actuator/prometheus`).
    pub fn render_nacos(&self) -> String {
        self.refresh_nacos_monitor();
        let families: Vec<_> = self.registry.gather().into_iter().filter(|f| f.name().starts_with("nacos_")).collect();
        encode(&families)
    }
}

fn encode(families: &[prometheus::proto::MetricFamily]) -> String {
    let mut buf = Vec::new();
    // Encoding into a Vec cannot fail for well-formed families.
    if TextEncoder::new().encode(families, &mut buf).is_err() {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}
