//! Prometheus metrics of the operator, registered in one [`prometheus::Registry`] built by the caller.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The operator's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// `cairn_operator_reconciles_total{result}`: `ok` or `error`.
    pub reconciles: IntCounterVec,
    /// `cairn_operator_reconcile_errors_total{reason}`.
    pub reconcile_errors: IntCounterVec,
    /// `cairn_operator_reconcile_duration_seconds`.
    pub reconcile_duration: Histogram,
    /// `cairn_operator_clusters{condition,status}`: clusters per condition type and status.
    pub clusters: IntGaugeVec,
    /// `cairn_operator_membership_operations_total{kind,result}`: executed membership actions.
    pub membership_operations: IntCounterVec,
    /// `cairn_operator_leader`: 1 while this replica holds the lease (or runs without election).
    pub leader: IntGauge,
    /// Last known conditions per cluster (`namespace/name` → [(type, status)]), behind `clusters`.
    cluster_conditions: Mutex<BTreeMap<String, Vec<(String, String)>>>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            reconciles: IntCounterVec::new(
                Opts::new("cairn_operator_reconciles_total", "Reconciles of RegistryClusters by result"),
                &["result"],
            )?,
            reconcile_errors: IntCounterVec::new(
                Opts::new("cairn_operator_reconcile_errors_total", "Failed reconciles by reason"),
                &["reason"],
            )?,
            reconcile_duration: Histogram::with_opts(
                HistogramOpts::new("cairn_operator_reconcile_duration_seconds", "Duration of one reconcile")
                    .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )?,
            clusters: IntGaugeVec::new(
                Opts::new("cairn_operator_clusters", "RegistryClusters by condition type and status"),
                &["condition", "status"],
            )?,
            membership_operations: IntCounterVec::new(
                Opts::new(
                    "cairn_operator_membership_operations_total",
                    "Membership actions executed by kind and result",
                ),
                &["kind", "result"],
            )?,
            leader: IntGauge::new("cairn_operator_leader", "1 while this replica holds the leader lease")?,
            cluster_conditions: Mutex::new(BTreeMap::new()),
        };
        registry.register(Box::new(m.reconciles.clone()))?;
        registry.register(Box::new(m.reconcile_errors.clone()))?;
        registry.register(Box::new(m.reconcile_duration.clone()))?;
        registry.register(Box::new(m.clusters.clone()))?;
        registry.register(Box::new(m.membership_operations.clone()))?;
        registry.register(Box::new(m.leader.clone()))?;
        Ok(m)
    }

    /// Records the conditions of one cluster (`None`: the cluster is gone) and refreshes `clusters`.
    pub fn set_cluster_conditions(&self, key: &str, conditions: Option<Vec<(String, String)>>) {
        let mut all = self.cluster_conditions.lock().unwrap_or_else(|e| e.into_inner());
        match conditions {
            Some(c) => drop(all.insert(key.to_owned(), c)),
            None => drop(all.remove(key)),
        }
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for conds in all.values() {
            for (t, s) in conds {
                *counts.entry((t.clone(), s.clone())).or_default() += 1;
            }
        }
        self.clusters.reset();
        for ((t, s), n) in counts {
            self.clusters.with_label_values(&[t.as_str(), s.as_str()]).set(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder as _;

    #[test]
    fn cluster_gauge_counts_and_forgets() {
        let r = Registry::new();
        let m = Metrics::new(&r).unwrap();
        let c = |a: &str, d: &str| {
            Some(vec![("Available".to_owned(), a.to_owned()), ("Degraded".to_owned(), d.to_owned())])
        };
        m.set_cluster_conditions("ns/a", c("True", "False"));
        m.set_cluster_conditions("ns/b", c("True", "True"));
        assert_eq!(m.clusters.with_label_values(&["Available", "True"]).get(), 2);
        assert_eq!(m.clusters.with_label_values(&["Degraded", "True"]).get(), 1);
        m.set_cluster_conditions("ns/b", None);
        assert_eq!(m.clusters.with_label_values(&["Available", "True"]).get(), 1);
        m.reconciles.with_label_values(&["ok"]).inc();
        m.leader.set(1);
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&r.gather(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for name in [
            "cairn_operator_reconciles_total{result=\"ok\"} 1",
            "cairn_operator_clusters{condition=\"Available\",status=\"True\"} 1",
            "cairn_operator_leader 1",
        ] {
            assert!(text.contains(name), "{name} in\n{text}");
        }
    }
}
