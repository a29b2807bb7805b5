//! A lock-free latency histogram with fixed, Prometheus-style buckets.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (the last, implicit bucket is `+Inf`).
pub const LATENCY_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Records durations into [`LATENCY_BUCKETS`].
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = LATENCY_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// A consistent-enough copy for export (each field is read atomically).
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = Vec::with_capacity(LATENCY_BUCKETS.len());
        let mut acc = 0;
        for b in &self.buckets[..LATENCY_BUCKETS.len()] {
            acc += b.load(Ordering::Relaxed);
            cumulative.push(acc);
        }
        HistogramSnapshot {
            bounds: LATENCY_BUCKETS.to_vec(),
            cumulative_counts: cumulative,
            count: self.count.load(Ordering::Relaxed),
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// Histogram data in the shape a Prometheus histogram takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Bucket upper bounds in seconds, ascending (`+Inf` is implied).
    pub bounds: Vec<f64>,
    /// Observations `<=` each bound (cumulative, one per bound).
    pub cumulative_counts: Vec<u64>,
    /// All observations (the `+Inf` bucket).
    pub count: u64,
    /// Sum of all observations, in seconds.
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    /// The smallest bucket bound below which at least `q` (0..=1) of the observations fall;
    /// `None` when empty or when the quantile lies in the `+Inf` bucket.
    pub fn quantile_upper_bound(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let want = (q * self.count as f64).ceil() as u64;
        self.bounds.iter().zip(&self.cumulative_counts).find(|(_, c)| **c >= want).map(|(b, _)| *b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(700));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.cumulative_counts[0], 1); // <= 100µs
        assert_eq!(s.cumulative_counts[3], 2); // <= 1ms
        assert_eq!(s.cumulative_counts[5], 3); // <= 5ms
        assert_eq!(*s.cumulative_counts.last().expect("buckets"), 3); // 20 s is only in +Inf
        assert!((s.sum_seconds - 20.00375).abs() < 1e-6);
        assert_eq!(s.quantile_upper_bound(0.5), Some(0.001));
        assert_eq!(s.quantile_upper_bound(1.0), None);
    }
}
