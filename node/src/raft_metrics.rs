//! Raft metrics for Prometheus, read from the Raft node at scrape time: term, leader, role,
//! log/commit/apply/snapshot indexes, log size, apply and flush latency, snapshot counts.

use std::sync::Arc;

use cairn_raft::{HistogramSnapshot, NodeRole, RaftNode};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Gauge, Histogram, Metric, MetricFamily, MetricType};

/// A collector over a running Raft node.
pub struct RaftCollector {
    raft: Arc<RaftNode>,
    descs: Vec<Desc>,
}

const GAUGES: [(&str, &str); 10] = [
    ("cairn_raft_term", "Current Raft term"),
    ("cairn_raft_leader_id", "Id of the leader this node knows (0: none)"),
    ("cairn_raft_is_leader", "1 when this node is the leader"),
    ("cairn_raft_last_log_index", "Index of the last log entry"),
    ("cairn_raft_commit_index", "Index of the last committed entry"),
    ("cairn_raft_applied_index", "Index of the last applied entry"),
    ("cairn_raft_snapshot_index", "Index of the last entry in the current snapshot"),
    ("cairn_raft_log_entries", "Entries held in the log (last index minus purged index)"),
    ("cairn_raft_snapshots_built", "Snapshots built by this node"),
    ("cairn_raft_snapshots_installed", "Snapshots received and installed"),
];

const HISTOGRAMS: [(&str, &str); 2] = [
    ("cairn_raft_apply_batch_seconds", "Latency of applying one batch of entries (one redb transaction)"),
    ("cairn_raft_log_flush_seconds", "Latency of one log flush (redb commit with fsync)"),
];

impl RaftCollector {
    /// Creates the collector.
    pub fn new(raft: Arc<RaftNode>) -> prometheus::Result<Self> {
        let mut descs = Vec::new();
        for (name, help) in GAUGES.iter().chain(HISTOGRAMS.iter()) {
            descs.push(Desc::new(name.to_string(), help.to_string(), vec![], Default::default())?);
        }
        Ok(RaftCollector { raft, descs })
    }
}

fn family(name: &str, help: &str, kind: MetricType, metric: Metric) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_owned());
    f.set_help(help.to_owned());
    f.set_field_type(kind);
    f.mut_metric().push(metric);
    f
}

fn gauge(name: &str, help: &str, v: f64) -> MetricFamily {
    let mut g = Gauge::default();
    g.set_value(v);
    let mut m = Metric::default();
    m.set_gauge(g);
    family(name, help, MetricType::GAUGE, m)
}

fn histogram(name: &str, help: &str, h: &HistogramSnapshot) -> MetricFamily {
    let mut p = Histogram::default();
    p.set_sample_count(h.count);
    p.set_sample_sum(h.sum_seconds);
    let buckets = h
        .bounds
        .iter()
        .zip(&h.cumulative_counts)
        .map(|(bound, count)| {
            let mut b = Bucket::default();
            b.set_upper_bound(*bound);
            b.set_cumulative_count(*count);
            b
        })
        .collect();
    p.set_bucket(buckets);
    let mut m = Metric::default();
    m.set_histogram(p);
    family(name, help, MetricType::HISTOGRAM, m)
}

impl Collector for RaftCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let m = self.raft.metrics();
        let values = [
            m.term as f64,
            m.leader.unwrap_or(0) as f64,
            f64::from(u8::from(matches!(m.role, NodeRole::Leader))),
            m.last_log_index as f64,
            m.committed_index as f64,
            m.applied_index as f64,
            m.snapshot_index as f64,
            m.last_log_index.saturating_sub(m.purged_index) as f64,
            m.snapshots_built as f64,
            m.snapshots_installed as f64,
        ];
        let mut out: Vec<MetricFamily> = GAUGES.iter().zip(values).map(|((n, h), v)| gauge(n, h, v)).collect();
        out.push(histogram(HISTOGRAMS[0].0, HISTOGRAMS[0].1, &m.apply_batch));
        out.push(histogram(HISTOGRAMS[1].0, HISTOGRAMS[1].1, &m.log_flush));
        out
    }
}
