//! Human-readable tables and the final JSON line.

use std::collections::BTreeMap;

use crate::bench::Results;

/// One reported figure.
pub struct Fig {
    /// Stable key (also used in the JSON ratio map).
    pub key: &'static str,
    /// Description.
    pub name: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// Whether higher is better (`None` = informational).
    pub higher_better: Option<bool>,
    /// Value.
    pub value: Option<f64>,
}

/// The figures of one run, in display order.
pub fn figures(r: &Results) -> Vec<Fig> {
    let mut v = Vec::new();
    let mut f =
        |key, name, unit, higher_better, value: Option<f64>| v.push(Fig { key, name, unit, higher_better, value });
    let c = r.connect.as_ref();
    f("connect_per_sec", "connection setup rate", "conn/s", Some(true), c.map(|c| c.per_sec));
    let g = r.register.as_ref();
    f("register_per_sec", "register throughput", "inst/s", Some(true), g.map(|g| g.instances_per_sec));
    f("register_p50_ms", "register latency p50", "ms", Some(false), g.map(|g| g.latency.p50_ms));
    f("register_p99_ms", "register latency p99", "ms", Some(false), g.map(|g| g.latency.p99_ms));
    f("register_errors", "register errors", "req", Some(false), g.map(|g| g.errors as f64));
    f("register_server_cpu_s", "server CPU during register", "s", Some(false), g.and_then(|g| g.server_cpu_secs));
    let q = r.query.as_ref();
    f("query_per_sec", "query throughput", "q/s", Some(true), q.map(|q| q.per_sec));
    f("query_p50_ms", "query latency p50", "ms", Some(false), q.map(|q| q.latency.p50_ms));
    f("query_p99_ms", "query latency p99", "ms", Some(false), q.map(|q| q.latency.p99_ms));
    f("query_errors", "query errors", "req", Some(false), q.map(|q| q.errors as f64));
    f("query_hosts", "hosts per answer (sampled)", "hosts", None, q.map(|q| q.hosts_per_answer));
    f("query_kib", "mean answer size", "KiB", None, q.map(|q| q.mean_response_bytes / 1024.0));
    f("query_server_cpu_s", "server CPU during query", "s", Some(false), q.and_then(|q| q.server_cpu_secs));
    f("query_client_cpu_s", "loadgen CPU during query", "s", None, q.and_then(|q| q.client_cpu_secs));
    let p = r.push.as_ref();
    f("push_p50_ms", "push latency p50", "ms", Some(false), p.map(|p| p.latency.p50_ms));
    f("push_p99_ms", "push latency p99", "ms", Some(false), p.map(|p| p.latency.p99_ms));
    f("push_max_ms", "push latency max", "ms", Some(false), p.map(|p| p.latency.max_ms));
    f("push_visible_p50_ms", "change visible p50 (coalesced)", "ms", Some(false), p.map(|p| p.visibility.p50_ms));
    f("push_visible_p99_ms", "change visible p99 (coalesced)", "ms", Some(false), p.map(|p| p.visibility.p99_ms));
    f("push_received", "pushes received", "push", Some(true), p.map(|p| p.received as f64));
    f("push_missed", "pushes missed", "push", Some(false), p.map(|p| p.missed as f64));
    f("push_missed_coalesced", "  of which coalesced", "push", None, p.map(|p| p.missed_superseded as f64));
    let cp = r.config_publish.as_ref();
    f("config_publish_per_sec", "config publish throughput", "pub/s", Some(true), cp.map(|c| c.per_sec));
    f("config_publish_p50_ms", "config publish latency p50", "ms", Some(false), cp.map(|c| c.latency.p50_ms));
    f("config_publish_p99_ms", "config publish latency p99", "ms", Some(false), cp.map(|c| c.latency.p99_ms));
    f("config_publish_errors", "config publish errors", "req", Some(false), cp.map(|c| c.errors as f64));
    f("config_publish_server_cpu_s", "server CPU during publish", "s", Some(false), cp.and_then(|c| c.server_cpu_secs));
    let cg = r.config_get.as_ref();
    f("config_get_per_sec", "config get throughput", "get/s", Some(true), cg.map(|c| c.per_sec));
    f("config_get_p50_ms", "config get latency p50", "ms", Some(false), cg.map(|c| c.latency.p50_ms));
    f("config_get_p99_ms", "config get latency p99", "ms", Some(false), cg.map(|c| c.latency.p99_ms));
    f("config_get_errors", "config get errors", "req", Some(false), cg.map(|c| c.errors as f64));
    let cn = r.config_push.as_ref();
    f("config_push_p50_ms", "config notify latency p50", "ms", Some(false), cn.map(|c| c.latency.p50_ms));
    f("config_push_p99_ms", "config notify latency p99", "ms", Some(false), cn.map(|c| c.latency.p99_ms));
    f("config_push_max_ms", "config notify latency max", "ms", Some(false), cn.map(|c| c.latency.max_ms));
    f("config_push_visible_p99_ms", "config change visible p99", "ms", Some(false), cn.map(|c| c.visibility.p99_ms));
    f("config_push_received", "config notifications received", "push", Some(true), cn.map(|c| c.received as f64));
    f("config_push_missed", "config notifications missed", "push", Some(false), cn.map(|c| c.missed as f64));
    let d = r.distro.as_ref();
    f("distro_p50_ms", "cross-member push latency p50", "ms", Some(false), d.map(|c| c.latency.p50_ms));
    f("distro_p99_ms", "cross-member push latency p99", "ms", Some(false), d.map(|c| c.latency.p99_ms));
    f("distro_visible_p99_ms", "cross-member change visible p99", "ms", Some(false), d.map(|c| c.visibility.p99_ms));
    f("distro_missed", "cross-member pushes missed", "push", Some(false), d.map(|c| c.missed as f64));
    let j = r.join.as_ref();
    f("join_ready_ms", "new member start → ready", "ms", Some(false), j.map(|j| j.ready_ms));
    f(
        "join_instances",
        "instances held by the new member when ready",
        "inst",
        Some(true),
        j.map(|j| j.instances_when_ready as f64),
    );
    let m = r.memory.as_ref();
    f("rss_idle_mib", "server RSS idle", "MiB", Some(false), m.map(|m| m.rss_idle_mib));
    f(
        "rss_after_register_mib",
        "server RSS after register",
        "MiB",
        Some(false),
        m.and_then(|m| m.rss_after_register_mib),
    );
    f("rss_peak_mib", "server peak RSS", "MiB", Some(false), m.map(|m| m.peak_mib));
    v
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

/// Prints one run.
pub fn print_run(r: &Results) {
    println!();
    println!("== {} ({}) ==", r.label, r.target);
    if let Some(c) = &r.connect {
        println!(
            "connections: {} opened, {} failed, connection id sample {:?}",
            c.opened, c.failed, c.connection_id_sample
        );
    }
    if let Some(g) = &r.register {
        println!(
            "register: {} requests / {} instances in {:.2} s; server CPU {} s, loadgen CPU {} s",
            g.requests,
            g.instances,
            g.secs,
            fmt(g.server_cpu_secs),
            fmt(g.client_cpu_secs)
        );
    }
    if let Some(q) = &r.query {
        println!("query: {} answered in {:.2} s", q.ok, q.secs);
    }
    if let Some(p) = &r.push {
        println!(
            "push: {} subscribers × {} changes = {} expected, {} received, {} push messages; change errors {}, subscribe errors {}",
            p.subscribers, p.changes, p.expected, p.received, p.push_messages, p.change_errors, p.subscribe_errors
        );
    }
    for (name, c) in [("config-publish", &r.config_publish), ("config-get", &r.config_get)] {
        if let Some(c) = c {
            println!(
                "{name}: {} ok, {} errors in {:.2} s over {} connections to {} server(s), {} keys; server CPU {} s, loadgen CPU {} s",
                c.ok,
                c.errors,
                c.secs,
                c.connections,
                c.servers,
                c.keys,
                fmt(c.server_cpu_secs),
                fmt(c.client_cpu_secs)
            );
        }
    }
    if let Some(p) = &r.config_push {
        println!(
            "config-push: {} listeners × {} changes = {} expected, {} received, {} notifications ({} unmatched); \
             change errors {}, listen errors {}, listen answers with changedConfigs {}",
            p.listeners,
            p.changes,
            p.expected,
            p.received,
            p.notifications,
            p.unmatched,
            p.change_errors,
            p.listen_errors,
            p.listen_changed
        );
    }
    println!("{:<30} {:>12}  unit", "figure", "value");
    // Phases that were not run are left out here (the comparison table keeps every row).
    for f in figures(r).into_iter().filter(|f| f.value.is_some()) {
        println!("{:<30} {:>12}  {}", f.name, fmt(f.value), f.unit);
    }
    print_extras(r);
}

fn print_extras(r: &Results) {
    if !r.server_requests.is_empty() {
        println!("server→client requests answered on the stream: {:?}", r.server_requests);
    }
    if r.setup_retries > 0 {
        println!("HealthCheck probes answered 301 during connection setup: {}", r.setup_retries);
    }
    if r.streams_lost > 0 {
        println!("bi-streams closed by the server while in use: {} (last: {:?})", r.streams_lost, r.last_stream_error);
    }
    if !r.errors.is_empty() {
        println!("errors:");
        for (k, n) in &r.errors {
            println!("  {n:>7} × {k}");
        }
    }
}

/// Prints the side-by-side table of a comparison.
pub fn print_compare(a: &Results, b: &Results) -> BTreeMap<&'static str, f64> {
    let fa = figures(a);
    let fb = figures(b);
    let mut ratios = BTreeMap::new();
    println!();
    println!("== comparison: {} vs {} (ratio = {}/{}) ==", a.label, b.label, a.label, b.label);
    println!("{:<30} {:>12} {:>12} {:>8}  unit   better", "figure", a.label, b.label, "ratio");
    for (x, y) in fa.iter().zip(fb.iter()) {
        let ratio = match (x.value, y.value) {
            (Some(p), Some(q)) if q != 0.0 => Some(p / q),
            _ => None,
        };
        if let Some(r) = ratio {
            ratios.insert(x.key, r);
        }
        let better = match x.higher_better {
            Some(true) => "higher",
            Some(false) => "lower",
            None => "",
        };
        let rs = ratio.map_or("-".to_owned(), |r| format!("{r:.2}"));
        println!("{:<30} {:>12} {:>12} {:>8}  {:<6} {}", x.name, fmt(x.value), fmt(y.value), rs, x.unit, better);
    }
    for r in [a, b] {
        println!("-- {} details --", r.label);
        if let Some(c) = &r.connect {
            println!("connection id sample: {:?}", c.connection_id_sample);
        }
        print_extras(r);
    }
    ratios
}
