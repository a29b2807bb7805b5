//! Config-center phases: publish throughput, get throughput, change-notification latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::conn::Endpoint;
use futures::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::bench::{Errors, Lat, Phase, Results, Rng, Target, Workload, open_many};
use crate::conn::{self, Conn, PushSink, Shared};
use crate::procfs::CpuSample;

/// Group of every config the load generator writes.
const GROUP: &str = "LG";
/// The dataId the config-push listeners watch.
const WATCH: &str = "lg-watch";

/// Throughput of one config operation (publish or get).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ConfigOpFig {
    /// Connections used (over all servers).
    pub connections: usize,
    /// Servers the connections were spread over.
    pub servers: usize,
    /// Distinct dataIds.
    pub keys: usize,
    /// Successful requests.
    pub ok: usize,
    /// Failed requests (resultCode ≠ 200, ErrorResponse, gRPC error, timeout).
    pub errors: usize,
    /// Wall time.
    pub secs: f64,
    /// Successful requests per second.
    pub per_sec: f64,
    /// Latency (all requests).
    pub latency: Lat,
    /// Server CPU seconds during the phase (--server only).
    pub server_cpu_secs: Option<f64>,
    /// Load generator CPU seconds during the phase.
    pub client_cpu_secs: Option<f64>,
}

/// Config change notification latency.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ConfigPushFig {
    /// Listener connections.
    pub listeners: usize,
    /// Publishes of the watched config.
    pub changes: usize,
    /// listeners × successful changes.
    pub expected: usize,
    /// (listener, change) pairs matched to a notification.
    pub received: usize,
    /// expected − received.
    pub missed: usize,
    /// Notifications that matched no change (arrived before any unmatched change was sent).
    pub unmatched: usize,
    /// `ConfigChangeNotifyRequest`s for the watched key in total (after the listen settle time).
    pub notifications: usize,
    /// Publish sent → its notification arrived (per listener, notifications matched in order).
    pub latency: Lat,
    /// Publish sent → first notification after it (the client then re-reads the config).
    pub visibility: Lat,
    /// Publishes of the watched config that failed.
    pub change_errors: usize,
    /// ConfigBatchListenRequests that failed.
    pub listen_errors: usize,
    /// Listen answers that reported the key as already changed (md5 mismatch).
    pub listen_changed: usize,
}

fn key_name(i: usize) -> String {
    format!("lg-cfg-{i:05}")
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// `ConfigPublishRequest` with ~100 B content.
fn publish_body(data_id: &str, seq: usize) -> Vec<u8> {
    let mut content = format!("lg config {data_id} version {seq} ");
    while content.len() < 100 {
        content.push('x');
    }
    format!(
        "{{\"headers\":{{}},\"dataId\":{},\"group\":\"{GROUP}\",\"tenant\":\"\",\"content\":{},\"casMd5\":null,\
         \"additionMap\":{{}},\"module\":\"config\"}}",
        json_str(data_id),
        json_str(&content)
    )
    .into_bytes()
}

fn query_body(data_id: &str) -> Vec<u8> {
    format!(
        "{{\"headers\":{{}},\"dataId\":{},\"group\":\"{GROUP}\",\"tenant\":\"\",\"module\":\"config\"}}",
        json_str(data_id)
    )
    .into_bytes()
}

fn listen_body(data_id: &str, md5: &str) -> Vec<u8> {
    format!(
        "{{\"headers\":{{}},\"listen\":true,\"configListenContexts\":[{{\"dataId\":{},\"group\":\"{GROUP}\",\
         \"tenant\":\"\",\"md5\":{}}}],\"module\":\"config\"}}",
        json_str(data_id),
        json_str(md5)
    )
    .into_bytes()
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

/// Runs the selected config phases; fills `res`.
pub async fn run_phases(
    t: &Target,
    ep: &Endpoint,
    w: &Workload,
    timeout: Duration,
    shared: &Arc<Shared>,
    errors: &Arc<Errors>,
    res: &mut Results,
) {
    let want_publish = w.phases.contains(&Phase::ConfigPublish);
    let want_get = w.phases.contains(&Phase::ConfigGet);
    let mut conns: Arc<Vec<Arc<Conn>>> = Arc::default();
    let mut servers = 1;
    if want_publish || want_get {
        let mut eps = vec![ep.clone()];
        for (h, p) in &t.extra {
            match conn::endpoint(h, *p) {
                Ok(e) => eps.push(e),
                Err(e) => errors.add_text(format!("extra server {h}:{p}: {e:#}")),
            }
        }
        // The extra servers only take part in config-publish.
        if !want_publish {
            eps.truncate(1);
        }
        servers = eps.len();
        let total = w.config_connections.max(1);
        eprintln!("[{}] config: opening {total} connections over {servers} server(s) ...", t.label);
        let mut all = Vec::with_capacity(total);
        for (i, e) in eps.iter().enumerate() {
            let n = total / servers + usize::from(i < total % servers);
            let (c, fig) = open_many(e, n, w.connect_parallelism, shared, None, errors).await;
            if fig.failed > 0 {
                eprintln!("[{}]   server #{i}: {} of {n} connections failed", t.label, fig.failed);
            }
            all.extend(c);
        }
        conns = Arc::new(all);
    }
    let keys = w.config_keys.max(1);
    if want_publish && !conns.is_empty() {
        eprintln!("[{}] config-publish for {} s over {} keys ...", t.label, w.config_secs, keys);
        let fig = throughput(&conns, servers, w, timeout, errors, t.pid, true).await;
        eprintln!(
            "[{}]   {:.0} publishes/s, p50 {:.2} ms p99 {:.2} ms ({} errors)",
            t.label, fig.per_sec, fig.latency.p50_ms, fig.latency.p99_ms, fig.errors
        );
        res.config_publish = Some(fig);
    }
    if want_get && !conns.is_empty() {
        // Keys must exist: publish them once unless config-publish already covered all of them.
        if res.config_publish.as_ref().is_none_or(|p| p.ok < keys) {
            eprintln!("[{}] config-get: publishing {keys} keys first ...", t.label);
            prefill(&conns, keys, w, timeout, errors).await;
        }
        eprintln!("[{}] config-get for {} s ...", t.label, w.config_secs);
        let fig = throughput(&conns, servers, w, timeout, errors, t.pid, false).await;
        eprintln!(
            "[{}]   {:.0} gets/s, p50 {:.2} ms p99 {:.2} ms ({} errors)",
            t.label, fig.per_sec, fig.latency.p50_ms, fig.latency.p99_ms, fig.errors
        );
        res.config_get = Some(fig);
    }
    drop(conns);
    if w.phases.contains(&Phase::ConfigPush) {
        eprintln!("[{}] config-push: {} listeners, {} changes ...", t.label, w.listeners, w.changes);
        let fig = push(ep, w, timeout, shared, errors).await;
        eprintln!(
            "[{}]   p50 {:.1} ms p99 {:.1} ms max {:.1} ms, {} of {} notifications missed",
            t.label, fig.latency.p50_ms, fig.latency.p99_ms, fig.latency.max_ms, fig.missed, fig.expected
        );
        res.config_push = Some(fig);
    }
}

async fn prefill(conns: &Arc<Vec<Arc<Conn>>>, keys: usize, w: &Workload, timeout: Duration, errors: &Errors) {
    let c = conns.len();
    futures::stream::iter(0..keys)
        .map(|k| async move {
            let conn = &conns[k % c];
            if let Err(e) = conn
                .call("ConfigPublishRequest", publish_body(&key_name(k), 0), timeout)
                .await
                .and_then(|p| conn::check_small(&p))
            {
                errors.add("ConfigPublishRequest (config-get prefill)", &e);
            }
        })
        .buffer_unordered(w.concurrency.max(1))
        .collect::<Vec<()>>()
        .await;
}

/// What one worker of a timed phase measured.
type WorkerOut = (Vec<u32>, usize, usize);

async fn timed(
    conns: &Arc<Vec<Arc<Conn>>>,
    w: &Workload,
    timeout: Duration,
    errors: &Arc<Errors>,
    publish: bool,
) -> (Vec<u32>, usize, usize, f64) {
    let c = conns.len();
    let keys = w.config_keys.max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(w.config_secs.max(0.1));
    let workers: Vec<_> = (0..w.concurrency.max(1))
        .map(|wi| {
            let (conns, errors, next) = (conns.clone(), errors.clone(), next.clone());
            tokio::spawn(async move {
                let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ ((wi as u64 + 1) * 0x1000_0001));
                let mut lat = Vec::with_capacity(4096);
                let (mut ok, mut failed) = (0usize, 0usize);
                while Instant::now() < end {
                    let r = rng.next();
                    let conn = &conns[(r as usize) % c];
                    let (ty, body) = if publish {
                        // Sequential keys: the first `keys` publishes create every key.
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        ("ConfigPublishRequest", publish_body(&key_name(seq % keys), seq / keys))
                    } else {
                        ("ConfigQueryRequest", query_body(&key_name(((r >> 32) as usize) % keys)))
                    };
                    let t0 = Instant::now();
                    let resp = conn.call(ty, body, timeout).await;
                    lat.push(micros(t0.elapsed()));
                    match resp.and_then(|p| conn::check_small(&p)) {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            failed += 1;
                            errors.add(ty, &e);
                        }
                    }
                }
                (lat, ok, failed) as WorkerOut
            })
        })
        .collect();
    let mut lat = Vec::new();
    let (mut ok, mut failed) = (0, 0);
    for r in futures::future::join_all(workers).await {
        let Ok((l, o, f)) = r else { continue };
        lat.extend(l);
        ok += o;
        failed += f;
    }
    (lat, ok, failed, start.elapsed().as_secs_f64())
}

/// Runs one timed throughput phase (publish when `publish`, otherwise get) and measures it,
/// with the CPU the server and this client used meanwhile.
async fn throughput(
    conns: &Arc<Vec<Arc<Conn>>>,
    servers: usize,
    w: &Workload,
    timeout: Duration,
    errors: &Arc<Errors>,
    pid: Option<u32>,
    publish: bool,
) -> ConfigOpFig {
    let cpu = CpuSample::now(pid);
    let (lat, ok, failed, secs) = timed(conns, w, timeout, errors, publish).await;
    let (server_cpu_secs, client_cpu_secs) = cpu.since(pid);
    ConfigOpFig {
        connections: conns.len(),
        servers,
        keys: w.config_keys.max(1),
        ok,
        errors: failed,
        secs,
        per_sec: ok as f64 / secs,
        latency: Lat::of_micros(lat),
        server_cpu_secs,
        client_cpu_secs,
    }
}

/// Matches notifications to changes per listener, in order: each arrival is the notification
/// of the earliest change that was sent before it and is not matched yet for that listener.
/// Returns (`[listener][change]` latency, unmatched arrivals).
fn attribute(events: &[conn::PushEvent], sent: &[Option<Instant>], n: usize) -> (Vec<Vec<Option<Duration>>>, usize) {
    let mut got = vec![vec![None; sent.len()]; n];
    let mut per: Vec<Vec<Instant>> = vec![Vec::new(); n];
    for e in events {
        if e.sub < n {
            per[e.sub].push(e.at);
        }
    }
    let mut unmatched = 0;
    for (sub, arrivals) in per.iter_mut().enumerate() {
        arrivals.sort_unstable();
        let mut k = 0;
        for at in arrivals.iter() {
            while k < sent.len() && sent[k].is_none() {
                k += 1;
            }
            match sent.get(k).copied().flatten() {
                Some(t) if t <= *at => {
                    got[sub][k] = Some(*at - t);
                    k += 1;
                }
                _ => unmatched += 1,
            }
        }
    }
    (got, unmatched)
}

async fn push(ep: &Endpoint, w: &Workload, timeout: Duration, shared: &Arc<Shared>, errors: &Errors) -> ConfigPushFig {
    let publisher = match Conn::open(ep, usize::MAX, shared.clone(), None).await {
        Ok(c) => c,
        Err(e) => {
            errors.add_text(format!("config-push publisher connect: {e:#}"));
            return ConfigPushFig::default();
        }
    };
    let publish_watch = |seq: usize| {
        let publisher = &publisher;
        async move {
            publisher
                .call("ConfigPublishRequest", publish_body(WATCH, seq), timeout)
                .await
                .and_then(|p| conn::check_small(&p))
        }
    };
    if let Err(e) = publish_watch(1_000_000).await {
        errors.add("ConfigPublishRequest (config-push initial)", &e);
    }
    // The listeners announce the current md5, as a client that has read the config does.
    let md5 = match publisher.call("ConfigQueryRequest", query_body(WATCH), timeout).await {
        Ok(p) => {
            #[derive(Deserialize)]
            struct Q {
                md5: Option<String>,
            }
            if let Err(e) = conn::check_small(&p) {
                errors.add("ConfigQueryRequest (config-push md5)", &e);
            }
            serde_json::from_slice::<Q>(conn::body_of(&p)).ok().and_then(|q| q.md5).unwrap_or_default()
        }
        Err(e) => {
            errors.add("ConfigQueryRequest (config-push md5)", &e);
            String::new()
        }
    };
    let sink = Arc::new(PushSink { service: WATCH.to_owned(), config: true, events: Mutex::new(Vec::new()) });
    let (subs, _) = open_many(ep, w.listeners, w.connect_parallelism, shared, Some(sink.clone()), errors).await;
    let n = subs.len();
    let md5 = &md5;
    let outcomes: Vec<(usize, usize)> = futures::stream::iter(subs.iter())
        .map(|c| async move {
            match c.call("ConfigBatchListenRequest", listen_body(WATCH, md5), timeout).await {
                Ok(p) => {
                    if let Err(e) = conn::check_small(&p) {
                        errors.add("ConfigBatchListenRequest", &e);
                        return (1, 0);
                    }
                    #[derive(Deserialize)]
                    #[serde(rename_all = "camelCase")]
                    struct L {
                        changed_configs: Option<Vec<serde::de::IgnoredAny>>,
                    }
                    let changed = serde_json::from_slice::<L>(conn::body_of(&p))
                        .ok()
                        .and_then(|l| l.changed_configs)
                        .map_or(0, |v| v.len());
                    (0, usize::from(changed > 0))
                }
                Err(e) => {
                    errors.add("ConfigBatchListenRequest", &e);
                    (1, 0)
                }
            }
        })
        .buffer_unordered(w.concurrency.max(1))
        .collect()
        .await;
    let listen_errors = outcomes.iter().map(|o| o.0).sum();
    let listen_changed = outcomes.iter().map(|o| o.1).sum();
    tokio::time::sleep(Duration::from_millis(500)).await;
    sink.events.lock().clear();
    let mut sent: Vec<Option<Instant>> = vec![None; w.changes];
    let mut change_errors = 0;
    let start = tokio::time::Instant::now();
    for (k, slot) in sent.iter_mut().enumerate() {
        tokio::time::sleep_until(start + Duration::from_millis(w.change_interval_ms) * k as u32).await;
        *slot = Some(Instant::now());
        if let Err(e) = publish_watch(k).await {
            change_errors += 1;
            errors.add("ConfigPublishRequest (config-push change)", &e);
            *slot = None;
        }
    }
    let expected = n * sent.iter().filter(|s| s.is_some()).count();
    let deadline = Instant::now() + Duration::from_millis(w.push_wait_ms);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if sink.events.lock().len() >= expected || Instant::now() >= deadline {
            break;
        }
    }
    let events = sink.events.lock().clone();
    let (got, unmatched) = attribute(&events, &sent, n);
    let mut lat = Vec::new();
    let mut visible = Vec::new();
    let mut firsts: Vec<Vec<Instant>> = vec![Vec::new(); n];
    for e in &events {
        if e.sub < n {
            firsts[e.sub].push(e.at);
        }
    }
    for (sub, row) in got.iter().enumerate() {
        lat.extend(row.iter().flatten().map(|d| micros(*d)));
        let arrivals = &mut firsts[sub];
        arrivals.sort_unstable();
        for t in sent.iter().flatten() {
            if let Some(at) = arrivals.iter().find(|a| **a >= *t) {
                visible.push(micros(*at - *t));
            }
        }
    }
    drop(publisher);
    drop(subs);
    let received = lat.len();
    ConfigPushFig {
        listeners: n,
        changes: w.changes,
        expected,
        received,
        missed: expected.saturating_sub(received),
        unmatched,
        notifications: events.len(),
        latency: Lat::of_micros(lat),
        visibility: Lat::of_micros(visible),
        change_errors,
        listen_errors,
        listen_changed,
    }
}
