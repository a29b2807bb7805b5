//! The measured phases: connect, register, query, push latency, memory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::conn::Endpoint;
use clap::{Args, ValueEnum};
use futures::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::conn::{self, CallError, Conn, PushSink, PushState, Shared};
use crate::procfs::{self, CpuSample};

/// A phase that can be selected with `--phases`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Phase {
    /// Connect + register (+ memory); query needs it.
    Register,
    /// ServiceQueryRequest throughput.
    Query,
    /// Push latency.
    Push,
    /// ConfigPublishRequest throughput (spread over --extra-servers too).
    ConfigPublish,
    /// ConfigQueryRequest throughput.
    ConfigGet,
    /// ConfigChangeNotifyRequest latency.
    ConfigPush,
    /// Cluster convergence: changes made on `--server`, pushed to subscribers connected to the
    /// first `--extra-servers` entry (the change travels by Distro).
    Distro,
    /// After register: start a new member (`--join-bin`, `--join-args`) and time until it is
    /// ready, then read how many instances it holds.
    Join,
}

/// The workload (shared by `run` and `compare`).
#[derive(Args, Clone, Debug)]
pub struct Workload {
    /// Registering connections (each is one TCP/HTTP2 connection).
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Distinct services (default: 10,000 services of 10 instances each).
    #[arg(long, default_value_t = 10_000)]
    pub services: usize,
    /// Services each connection registers into (conn i uses services i*k .. i*k+k-1, mod --services).
    #[arg(long, default_value_t = 100)]
    pub services_per_conn: usize,
    /// Instances per (connection, service); above 1 uses BatchInstanceRequest.
    #[arg(long, default_value_t = 1)]
    pub instances_per_service: usize,
    /// Requests in flight over all connections (register and query phases).
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Connections opened in parallel.
    #[arg(long, default_value_t = 64)]
    pub connect_parallelism: usize,
    /// Query phase duration, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub query_secs: f64,
    /// Subscriber connections in the push phase.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Instance changes (alternating register / deregister) in the push phase.
    #[arg(long, default_value_t = 20)]
    pub changes: usize,
    /// Milliseconds between two changes.
    #[arg(long, default_value_t = 200)]
    pub change_interval_ms: u64,
    /// How long to wait for pushes after the last change, ms.
    #[arg(long, default_value_t = 6000)]
    pub push_wait_ms: u64,
    /// Unary request deadline, ms (the Java client uses 3000).
    #[arg(long, default_value_t = 3000)]
    pub request_timeout_ms: u64,
    /// Phases to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Phase::Register, Phase::Query, Phase::Push])]
    pub phases: Vec<Phase>,
    /// Connections of the config-publish / config-get phases (spread over the server and
    /// `--extra-servers`).
    #[arg(long, default_value_t = 64)]
    pub config_connections: usize,
    /// Distinct dataIds (group "LG") written by config-publish and read by config-get.
    #[arg(long, default_value_t = 1000)]
    pub config_keys: usize,
    /// Duration of config-publish and of config-get, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub config_secs: f64,
    /// Listener connections of the config-push phase (one ConfigBatchListenRequest each).
    #[arg(long, default_value_t = 1000)]
    pub listeners: usize,
    /// Tokio worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Join phase: the `cairn-node` binary of the joining member.
    #[arg(long)]
    pub join_bin: Option<std::path::PathBuf>,
    /// Join phase: its arguments, separated by spaces.
    #[arg(long, allow_hyphen_values = true)]
    pub join_args: Option<String>,
    /// Join phase: its HTTP address `host:port` (readiness and instance count are read there).
    #[arg(long)]
    pub join_http: Option<String>,
}

/// Where to send the load.
#[derive(Clone, Debug)]
pub struct Target {
    /// Label in reports.
    pub label: String,
    /// Host.
    pub host: String,
    /// HTTP port (informational).
    pub http_port: u16,
    /// Client gRPC port.
    pub grpc_port: u16,
    /// Server pid, for RSS and CPU.
    pub pid: Option<u32>,
    /// Further servers (`host`, gRPC port) the config-publish phase spreads its connections over.
    pub extra: Vec<(String, u16)>,
}

/// Errors by (request, kind, code, message).
#[derive(Default)]
pub struct Errors {
    map: Mutex<BTreeMap<String, u64>>,
}

impl Errors {
    pub(crate) fn add(&self, request: &str, e: &CallError) {
        let mut msg = e.message.clone();
        msg.truncate(200);
        *self.map.lock().entry(format!("{request}: {} code={} message={msg:?}", e.kind, e.code)).or_default() += 1;
    }

    pub(crate) fn add_text(&self, what: String) {
        *self.map.lock().entry(what).or_default() += 1;
    }
}

/// Percentiles of a latency sample, ms.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Lat {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Lat {
    pub(crate) fn of_micros(mut v: Vec<u32>) -> Lat {
        if v.is_empty() {
            return Lat::default();
        }
        v.sort_unstable();
        let pick = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1000.0;
        Lat {
            n: v.len(),
            p50_ms: pick(0.50),
            p99_ms: pick(0.99),
            max_ms: *v.last().unwrap_or(&0) as f64 / 1000.0,
            mean_ms: v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64 / 1000.0,
        }
    }
}

/// Connect phase.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ConnectFig {
    /// Connections opened.
    pub opened: usize,
    /// Failures.
    pub failed: usize,
    /// Wall time.
    pub secs: f64,
    /// Connections per second (setup + ServerCheck + first HealthCheck).
    pub per_sec: f64,
    /// Whether ServerCheck carried a connectionId (sample).
    pub connection_id_sample: String,
}

/// Register phase.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct RegisterFig {
    /// Requests sent.
    pub requests: usize,
    /// Instances registered (requests × instances per request).
    pub instances: usize,
    /// Failed requests.
    pub errors: usize,
    /// Wall time.
    pub secs: f64,
    /// Successful requests per second.
    pub requests_per_sec: f64,
    /// Successfully registered instances per second.
    pub instances_per_sec: f64,
    /// Request latency.
    pub latency: Lat,
    /// Server CPU seconds during the phase.
    pub server_cpu_secs: Option<f64>,
    /// Load generator CPU seconds during the phase.
    pub client_cpu_secs: Option<f64>,
}

/// Query phase.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct QueryFig {
    /// Queries answered successfully.
    pub ok: usize,
    /// Failed queries.
    pub errors: usize,
    /// Wall time.
    pub secs: f64,
    /// Successful queries per second.
    pub per_sec: f64,
    /// Latency.
    pub latency: Lat,
    /// Mean response body size.
    pub mean_response_bytes: f64,
    /// Hosts in the first answer of each worker (sample mean).
    pub hosts_per_answer: f64,
    /// Server CPU seconds during the phase.
    pub server_cpu_secs: Option<f64>,
    /// Load generator CPU seconds during the phase.
    pub client_cpu_secs: Option<f64>,
}

/// Push phase.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct PushFig {
    /// Subscriber connections.
    pub subscribers: usize,
    /// Changes made.
    pub changes: usize,
    /// subscribers × changes.
    pub expected: usize,
    /// (subscriber, change) pairs whose push arrived.
    pub received: usize,
    /// expected − received.
    pub missed: usize,
    /// Missed, but a push for a later change reached that subscriber (coalesced).
    pub missed_superseded: usize,
    /// Push arrivals in total (including duplicates and initial pushes after subscribe).
    pub push_messages: usize,
    /// Change sent → push reflecting exactly that change arrived.
    pub latency: Lat,
    /// Change sent → first push reflecting that change or a later one arrived (what a
    /// subscriber experiences when the server coalesces changes).
    pub visibility: Lat,
    /// Change requests that failed.
    pub change_errors: usize,
    /// Subscribe requests that failed.
    pub subscribe_errors: usize,
}

/// Server memory.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct MemFig {
    /// RSS before the load generator connected, MiB.
    pub rss_idle_mib: f64,
    /// RSS after the register phase with all connections open, MiB.
    pub rss_after_register_mib: Option<f64>,
    /// RSS at the end, MiB.
    pub rss_end_mib: f64,
    /// Peak RSS (VmHWM) at the end, MiB.
    pub peak_mib: f64,
}

/// Everything one run measured.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Results {
    /// Label.
    pub label: String,
    /// `host:grpcPort`.
    pub target: String,
    /// Connect.
    pub connect: Option<ConnectFig>,
    /// Register.
    pub register: Option<RegisterFig>,
    /// Query.
    pub query: Option<QueryFig>,
    /// Push.
    pub push: Option<PushFig>,
    /// Config publish.
    pub config_publish: Option<crate::config::ConfigOpFig>,
    /// Config get.
    pub config_get: Option<crate::config::ConfigOpFig>,
    /// Config change notification latency.
    pub config_push: Option<crate::config::ConfigPushFig>,
    /// Cross-member push latency (Distro).
    pub distro: Option<PushFig>,
    /// A new member loading the data set.
    pub join: Option<crate::join::JoinFig>,
    /// Memory (needs the server pid).
    pub memory: Option<MemFig>,
    /// Server→client requests answered on the streams, by type.
    pub server_requests: BTreeMap<String, u64>,
    /// Bi-streams the server closed while in use.
    pub streams_lost: u64,
    /// HealthCheck probes answered 301 while connections were being set up.
    pub setup_retries: u64,
    /// Last stream error.
    pub last_stream_error: Option<String>,
    /// Error tally.
    pub errors: BTreeMap<String, u64>,
}

fn service_name(i: usize) -> String {
    format!("lg-svc-{i:05}")
}

const PUSH_SERVICE: &str = "lg-push-svc";
const PUSH_BASE_PORT: usize = 20000;

fn ip_of(conn: usize) -> String {
    let n = conn + 1;
    format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
}

/// Appends one instance JSON (the shape the Java client sends).
fn push_instance(s: &mut String, ip: &str, port: usize) {
    s.push_str("{\"ip\":\"");
    s.push_str(ip);
    s.push_str("\",\"port\":");
    s.push_str(&port.to_string());
    s.push_str(
        ",\"weight\":1.0,\"healthy\":true,\"enabled\":true,\"ephemeral\":true,\"clusterName\":\"DEFAULT\",\
         \"metadata\":{\"preserved.register.source\":\"SPRING_CLOUD\"},\"instanceHeartBeatInterval\":5000,\
         \"instanceHeartBeatTimeOut\":15000,\"ipDeleteTimeout\":30000,\"instanceIdGenerator\":\"simple\"}",
    );
}

/// `InstanceRequest` (one instance) or `BatchInstanceRequest` (several) body.
fn register_body(service: &str, ip: &str, n: usize) -> (&'static str, Vec<u8>) {
    let mut s = String::with_capacity(200 + 330 * n);
    s.push_str("{\"headers\":{},\"namespace\":\"public\",\"serviceName\":\"");
    s.push_str(service);
    s.push_str("\",\"groupName\":\"DEFAULT_GROUP\",\"type\":\"");
    let ty = if n == 1 {
        s.push_str("registerInstance\",\"instance\":");
        push_instance(&mut s, ip, 8080);
        "InstanceRequest"
    } else {
        s.push_str("batchRegisterInstance\",\"instances\":[");
        for j in 0..n {
            if j > 0 {
                s.push(',');
            }
            push_instance(&mut s, ip, 8080 + j);
        }
        s.push(']');
        "BatchInstanceRequest"
    };
    s.push_str(",\"module\":\"naming\"}");
    (ty, s.into_bytes())
}

fn query_body(service: &str) -> Vec<u8> {
    let mut s = String::with_capacity(200);
    s.push_str("{\"headers\":{},\"namespace\":\"public\",\"serviceName\":\"");
    s.push_str(service);
    s.push_str("\",\"groupName\":\"DEFAULT_GROUP\",\"cluster\":\"\",\"healthyOnly\":false,\"udpPort\":0,\"module\":\"naming\"}");
    s.into_bytes()
}

fn subscribe_body(service: &str) -> Vec<u8> {
    format!(
        "{{\"headers\":{{}},\"namespace\":\"public\",\"serviceName\":\"{service}\",\"groupName\":\"DEFAULT_GROUP\",\
         \"subscribe\":true,\"clusters\":\"\",\"module\":\"naming\"}}"
    )
    .into_bytes()
}

/// A tiny xorshift generator (no per-query locking or allocation).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Opens `n` connections with bounded parallelism.
pub(crate) async fn open_many(
    ep: &Endpoint,
    n: usize,
    parallel: usize,
    shared: &Arc<Shared>,
    sink: Option<Arc<PushSink>>,
    errors: &Errors,
) -> (Vec<Arc<Conn>>, ConnectFig) {
    let start = Instant::now();
    let results: Vec<anyhow::Result<Conn>> = futures::stream::iter(0..n)
        .map(|i| Conn::open(ep, i, shared.clone(), sink.clone()))
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let secs = start.elapsed().as_secs_f64();
    let mut conns = Vec::with_capacity(n);
    let mut failed = 0;
    for r in results {
        match r {
            Ok(c) => conns.push(Arc::new(c)),
            Err(e) => {
                failed += 1;
                errors.add_text(format!("connect: {e:#}"));
            }
        }
    }
    conns.sort_by_key(|c| c.idx);
    let sample = conns.first().map(|c| c.conn_id.clone()).unwrap_or_default();
    let fig = ConnectFig {
        opened: conns.len(),
        failed,
        secs,
        per_sec: conns.len() as f64 / secs,
        connection_id_sample: sample,
    };
    (conns, fig)
}

/// Runs the selected phases against `t`.
pub async fn run(t: &Target, w: &Workload) -> anyhow::Result<Results> {
    let ep = conn::endpoint(&t.host, t.grpc_port)?;
    let shared = Arc::new(Shared::default());
    let errors = Arc::new(Errors::default());
    let timeout = Duration::from_millis(w.request_timeout_ms);
    let mut res =
        Results { label: t.label.clone(), target: format!("{}:{}", t.host, t.grpc_port), ..Default::default() };
    let mut mem = t.pid.and_then(procfs::rss_mib).map(|(rss, _)| MemFig { rss_idle_mib: rss, ..Default::default() });

    let mut conns: Arc<Vec<Arc<Conn>>> = Arc::default();
    if w.phases.contains(&Phase::Register) {
        eprintln!("[{}] connecting {} connections ...", t.label, w.connections);
        let (c, fig) = open_many(&ep, w.connections, w.connect_parallelism, &shared, None, &errors).await;
        eprintln!("[{}]   {} open ({} failed) in {:.2} s", t.label, fig.opened, fig.failed, fig.secs);
        conns = Arc::new(c);
        res.connect = Some(fig);
        if conns.is_empty() {
            anyhow::bail!("no connection could be opened; errors: {:?}", errors.map.lock());
        }
        eprintln!("[{}] registering ...", t.label);
        let fig = register(&conns, w, timeout, &errors, t.pid).await;
        eprintln!(
            "[{}]   {} instances in {:.2} s = {:.0}/s ({} errors)",
            t.label, fig.instances, fig.secs, fig.instances_per_sec, fig.errors
        );
        res.register = Some(fig);
        // Let the server settle (deferred work, allocator) before reading RSS.
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let (Some(m), Some((rss, _))) = (mem.as_mut(), t.pid.and_then(procfs::rss_mib)) {
            m.rss_after_register_mib = Some(rss);
        }
    }
    if w.phases.contains(&Phase::Query) {
        if conns.is_empty() {
            eprintln!("[{}] query phase needs the register phase; skipped", t.label);
        } else {
            eprintln!("[{}] querying for {} s ...", t.label, w.query_secs);
            let fig = query(&conns, w, timeout, &errors, t.pid).await;
            eprintln!("[{}]   {:.0} queries/s ({} errors)", t.label, fig.per_sec, fig.errors);
            res.query = Some(fig);
        }
    }
    if w.phases.contains(&Phase::Join) {
        eprintln!("[{}] join: starting a new member ...", t.label);
        match crate::join::run(w).await {
            Ok(fig) => {
                eprintln!(
                    "[{}]   ready after {:.0} ms holding {} instances",
                    t.label, fig.ready_ms, fig.instances_when_ready
                );
                res.join = Some(fig);
            }
            Err(e) => errors.add_text(format!("join: {e:#}")),
        }
    }
    if w.phases.contains(&Phase::Distro) {
        match t.extra.first() {
            Some((host, port)) => {
                let sub_ep = conn::endpoint(host, *port)?;
                eprintln!(
                    "[{}] distro: {} subscribers on {host}:{port}, {} changes on the server ...",
                    t.label, w.subscribers, w.changes
                );
                let fig = push(&sub_ep, &ep, w, timeout, &shared, &errors).await;
                eprintln!(
                    "[{}]   p50 {:.1} ms p99 {:.1} ms, visible p99 {:.1} ms, {} of {} pushes missed",
                    t.label, fig.latency.p50_ms, fig.latency.p99_ms, fig.visibility.p99_ms, fig.missed, fig.expected
                );
                res.distro = Some(fig);
            }
            None => eprintln!("[{}] distro phase needs --extra-servers (the subscribers' member); skipped", t.label),
        }
    }
    if w.phases.contains(&Phase::Push) {
        eprintln!("[{}] push latency: {} subscribers, {} changes ...", t.label, w.subscribers, w.changes);
        let fig = push(&ep, &ep, w, timeout, &shared, &errors).await;
        eprintln!(
            "[{}]   p50 {:.1} ms p99 {:.1} ms, {} of {} pushes missed",
            t.label, fig.latency.p50_ms, fig.latency.p99_ms, fig.missed, fig.expected
        );
        res.push = Some(fig);
    }
    crate::config::run_phases(t, &ep, w, timeout, &shared, &errors, &mut res).await;
    if let (Some(m), Some((rss, hwm))) = (mem.as_mut(), t.pid.and_then(procfs::rss_mib)) {
        m.rss_end_mib = rss;
        m.peak_mib = hwm;
    }
    res.memory = mem;
    drop(conns);
    res.server_requests = shared.server_requests.lock().clone();
    res.streams_lost = shared.streams_lost.load(Ordering::Relaxed);
    res.setup_retries = shared.setup_retries.load(Ordering::Relaxed);
    res.last_stream_error = shared.last_stream_error.lock().clone();
    res.errors = errors.map.lock().clone();
    Ok(res)
}

async fn register(
    conns: &Arc<Vec<Arc<Conn>>>,
    w: &Workload,
    timeout: Duration,
    errors: &Arc<Errors>,
    pid: Option<u32>,
) -> RegisterFig {
    let c = conns.len();
    let services = w.services.max(1);
    let spc = w.services_per_conn.clamp(1, services);
    let per_req = w.instances_per_service.max(1);
    let total = c * spc;
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = CpuSample::now(pid);
    let start = Instant::now();
    let workers: Vec<_> = (0..w.concurrency.max(1))
        .map(|_| {
            let (conns, next, errors) = (conns.clone(), next.clone(), errors.clone());
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(1024);
                let mut failed = 0usize;
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= total {
                        break;
                    }
                    let conn = &conns[k % c];
                    let slot = k / c;
                    let svc = service_name((conn.idx * spc + slot) % services);
                    let (ty, body) = register_body(&svc, &ip_of(conn.idx), per_req);
                    let t0 = Instant::now();
                    let r = conn.call(ty, body, timeout).await;
                    lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    if let Err(e) = r.and_then(|p| conn::check_small(&p)) {
                        failed += 1;
                        errors.add(ty, &e);
                    }
                }
                (lat, failed)
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(total);
    let mut failed = 0;
    for h in futures::future::join_all(workers).await {
        let (l, f) = h.unwrap_or_default();
        lat.extend(l);
        failed += f;
    }
    let secs = start.elapsed().as_secs_f64();
    let (server_cpu_secs, client_cpu_secs) = cpu.since(pid);
    let ok = total - failed;
    RegisterFig {
        requests: total,
        instances: total * per_req,
        errors: failed,
        secs,
        requests_per_sec: ok as f64 / secs,
        instances_per_sec: (ok * per_req) as f64 / secs,
        latency: Lat::of_micros(lat),
        server_cpu_secs,
        client_cpu_secs,
    }
}

async fn query(
    conns: &Arc<Vec<Arc<Conn>>>,
    w: &Workload,
    timeout: Duration,
    errors: &Arc<Errors>,
    pid: Option<u32>,
) -> QueryFig {
    let c = conns.len();
    let services = w.services.max(1).min(c * w.services_per_conn.max(1));
    let dur = Duration::from_secs_f64(w.query_secs.max(0.1));
    let cpu = CpuSample::now(pid);
    let start = Instant::now();
    let end = start + dur;
    let workers: Vec<_> = (0..w.concurrency.max(1))
        .map(|wi| {
            let (conns, errors) = (conns.clone(), errors.clone());
            tokio::spawn(async move {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((wi as u64 + 1) * 0x1000_0001));
                let mut lat = Vec::with_capacity(4096);
                let (mut ok, mut failed, mut bytes) = (0usize, 0usize, 0usize);
                let mut hosts_sample: Option<usize> = None;
                while Instant::now() < end {
                    let r = rng.next();
                    let conn = &conns[(r as usize) % c];
                    let svc = service_name(((r >> 32) as usize) % services);
                    let t0 = Instant::now();
                    let resp = conn.call("ServiceQueryRequest", query_body(&svc), timeout).await;
                    lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    match resp.and_then(|p| conn::check_large(&p).map(|_| p)) {
                        Ok(p) => {
                            ok += 1;
                            bytes += conn::body_of(&p).len();
                            if hosts_sample.is_none() {
                                #[derive(Deserialize)]
                                #[serde(rename_all = "camelCase")]
                                struct Q {
                                    service_info: Option<H>,
                                }
                                #[derive(Deserialize)]
                                struct H {
                                    hosts: Option<Vec<serde::de::IgnoredAny>>,
                                }
                                let q: Option<Q> = serde_json::from_slice(conn::body_of(&p)).ok();
                                hosts_sample =
                                    Some(q.and_then(|q| q.service_info).and_then(|h| h.hosts).map_or(0, |h| h.len()));
                            }
                        }
                        Err(e) => {
                            failed += 1;
                            errors.add("ServiceQueryRequest", &e);
                        }
                    }
                }
                (lat, ok, failed, bytes, hosts_sample)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let (mut ok, mut failed, mut bytes) = (0, 0, 0);
    let mut hosts = Vec::new();
    for r in futures::future::join_all(workers).await {
        let Ok((l, o, f, b, h)) = r else { continue };
        lat.extend(l);
        ok += o;
        failed += f;
        bytes += b;
        hosts.extend(h);
    }
    let secs = start.elapsed().as_secs_f64();
    let (server_cpu_secs, client_cpu_secs) = cpu.since(pid);
    QueryFig {
        ok,
        errors: failed,
        secs,
        per_sec: ok as f64 / secs,
        latency: Lat::of_micros(lat),
        mean_response_bytes: if ok > 0 { bytes as f64 / ok as f64 } else { 0.0 },
        hosts_per_answer: if hosts.is_empty() { 0.0 } else { hosts.iter().sum::<usize>() as f64 / hosts.len() as f64 },
        server_cpu_secs,
        client_cpu_secs,
    }
}

/// Matches push arrivals to changes: `[subscriber][change]` = first arrival latency.
fn attribute(events: &[conn::PushEvent], sent: &[Option<Instant>], subs: usize) -> Vec<Vec<Option<Duration>>> {
    let changes = sent.len();
    let mut got = vec![vec![None; changes]; subs];
    for e in events {
        let k = match e.state {
            PushState::Port(p) => {
                let k = p - PUSH_BASE_PORT as i64;
                if k < 0 || k as usize >= changes || k % 2 == 1 {
                    continue;
                }
                k as usize
            }
            // The latest deregistration sent before the push arrived.
            PushState::Empty => match (0..changes).rev().find(|k| k % 2 == 1 && sent[*k].is_some_and(|t| t <= e.at)) {
                Some(k) => k,
                None => continue,
            },
        };
        let Some(t) = sent[k] else { continue };
        if e.at < t || e.sub >= subs {
            continue;
        }
        let d = e.at - t;
        let slot = &mut got[e.sub][k];
        if slot.is_none_or(|x| d < x) {
            *slot = Some(d);
        }
    }
    got
}

/// Subscribers connect to `sub_ep`, the changes go to `pub_ep` (the same server, or another
/// member of a cluster).
async fn push(
    sub_ep: &Endpoint,
    pub_ep: &Endpoint,
    w: &Workload,
    timeout: Duration,
    shared: &Arc<Shared>,
    errors: &Errors,
) -> PushFig {
    let sink = Arc::new(PushSink { service: PUSH_SERVICE.to_owned(), config: false, events: Mutex::new(Vec::new()) });
    let (subs, _) = open_many(sub_ep, w.subscribers, w.connect_parallelism, shared, Some(sink.clone()), errors).await;
    let n = subs.len();
    let subscribe_errors: usize = futures::stream::iter(subs.iter())
        .map(|c| async move {
            match c
                .call("SubscribeServiceRequest", subscribe_body(PUSH_SERVICE), timeout)
                .await
                .and_then(|p| conn::check_small(&p))
            {
                Ok(()) => 0,
                Err(e) => {
                    errors.add("SubscribeServiceRequest", &e);
                    1
                }
            }
        })
        .buffer_unordered(w.concurrency.max(1))
        .collect::<Vec<usize>>()
        .await
        .into_iter()
        .sum();
    let publisher = match Conn::open(pub_ep, usize::MAX, shared.clone(), None).await {
        Ok(c) => c,
        Err(e) => {
            errors.add_text(format!("push publisher connect: {e:#}"));
            return PushFig { subscribers: n, subscribe_errors, ..Default::default() };
        }
    };
    // Initial pushes after subscribe (Nacos schedules one 500 ms later) must not count.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let initial = {
        let mut ev = sink.events.lock();
        let k = ev.len();
        ev.clear();
        k
    };
    let ip = "10.255.255.1";
    let mut sent: Vec<Option<Instant>> = vec![None; w.changes];
    let mut change_errors = 0;
    let start = tokio::time::Instant::now();
    for (k, slot) in sent.iter_mut().enumerate() {
        tokio::time::sleep_until(start + Duration::from_millis(w.change_interval_ms) * k as u32).await;
        // Deregistration names the instance registered by the previous change, as the Java
        // client does (servers that key instances by ip:port need it).
        let (kind, port) = if k % 2 == 0 { ("registerInstance", k) } else { ("deregisterInstance", k - 1) };
        let mut s = String::with_capacity(400);
        s.push_str("{\"headers\":{},\"namespace\":\"public\",\"serviceName\":\"");
        s.push_str(PUSH_SERVICE);
        s.push_str("\",\"groupName\":\"DEFAULT_GROUP\",\"type\":\"");
        s.push_str(kind);
        s.push_str("\",\"instance\":");
        push_instance(&mut s, ip, PUSH_BASE_PORT + port);
        s.push_str(",\"module\":\"naming\"}");
        let body = s.into_bytes();
        *slot = Some(Instant::now());
        if std::env::var_os("CAIRN_LOADGEN_TRACE_PUSH").is_some() {
            eprintln!(
                "change {k} {kind} port {} sent at {:?}",
                PUSH_BASE_PORT + port,
                slot.unwrap_or_else(Instant::now)
            );
        }
        if let Err(e) = publisher.call("InstanceRequest", body, timeout).await.and_then(|p| conn::check_small(&p)) {
            change_errors += 1;
            errors.add("InstanceRequest (push phase)", &e);
            *slot = None;
        }
    }
    let expected = n * sent.iter().filter(|s| s.is_some()).count();
    let deadline = Instant::now() + Duration::from_millis(w.push_wait_ms);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got: usize = {
            let ev = sink.events.lock();
            attribute(&ev, &sent, n).iter().map(|r| r.iter().filter(|x| x.is_some()).count()).sum()
        };
        if got >= expected || Instant::now() >= deadline {
            break;
        }
    }
    let events = sink.events.lock().clone();
    let got = attribute(&events, &sent, n);
    let micros = |d: Duration| d.as_micros().min(u32::MAX as u128) as u32;
    let mut lat = Vec::new();
    let mut visible = Vec::new();
    let mut missed_superseded = 0;
    for row in &got {
        for (k, x) in row.iter().enumerate() {
            match x {
                Some(d) => lat.push(micros(*d)),
                None if sent[k].is_some() && row[k + 1..].iter().any(|y| y.is_some()) => missed_superseded += 1,
                None => {}
            }
            let Some(tk) = sent[k] else { continue };
            let first = (k..row.len()).filter_map(|j| Some(sent[j]? + row[j]?)).min();
            if let Some(at) = first {
                visible.push(micros(at - tk));
            }
        }
    }
    drop(publisher);
    drop(subs);
    let received = lat.len();
    PushFig {
        subscribers: n,
        changes: w.changes,
        expected,
        received,
        missed: expected.saturating_sub(received),
        missed_superseded,
        push_messages: events.len() + initial,
        latency: Lat::of_micros(lat),
        visibility: Lat::of_micros(visible),
        change_errors,
        subscribe_errors,
    }
}
