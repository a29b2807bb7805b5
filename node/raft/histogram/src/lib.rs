//! A compact log-bucket histogram for openraft's runtime statistics.
//!
//! openraft 0.10 records batch sizes and log-stage latencies in histograms from the crates.io
//! crate `base2histogram`. That crate builds lookup tables for all sixteen of its bucket widths
//! the first time any histogram is created: about 26 MiB, resident in every Cairn node for its
//! whole life, while openraft only uses the default width. No openraft feature turns the
//! statistics off. So the workspace's `[patch.crates-io]` replaces the crate with this one.
//!
//! This is Cairn's own code, written against the API that openraft calls: [`Histogram`] with
//! `new`, `record`, `record_n` and `percentile_stats`; [`PercentileStats`]; and [`AsciiChart`]
//! with `new`, `add` and `detailed`. Buckets are powers of two split into eight sub-buckets
//! (values within 12.5 %), computed arithmetically; a histogram allocates its 496 counters only
//! when it records its first value. Percentiles report the lower bound of the bucket that holds
//! them.

use std::fmt;
use std::marker::PhantomData;

/// Sub-buckets per power of two, as a bit count.
const SUB_BITS: u32 = 3;
/// Sub-buckets per power of two.
const SUB: u64 = 1 << SUB_BITS;
/// Buckets covering all of `u64`: values below [`SUB`] exactly, then [`SUB`] per power of two.
const BUCKETS: usize = (SUB as usize) * (64 - SUB_BITS as usize + 1);

/// The bucket that counts `v`.
fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let shift = exp - SUB_BITS;
    let mantissa = (v >> shift) & (SUB - 1);
    (shift as usize + 1) * SUB as usize + mantissa as usize
}

/// The smallest value counted by bucket `i`.
fn lower_bound(i: usize) -> u64 {
    if i < SUB as usize {
        return i as u64;
    }
    let shift = (i / SUB as usize - 1) as u32;
    let mantissa = (i % SUB as usize) as u64;
    (SUB + mantissa) << shift
}

/// Counts of `u64` values in logarithmic buckets. `T` is accepted for API compatibility (the
/// original attaches data to time slots); it is not stored.
pub struct Histogram<T = ()> {
    counts: Vec<u64>,
    samples: u64,
    _slot_data: PhantomData<fn() -> T>,
}

impl<T> Histogram<T> {
    /// An empty histogram; nothing is allocated until the first value is recorded.
    pub fn new() -> Self {
        Histogram { counts: Vec::new(), samples: 0, _slot_data: PhantomData }
    }

    /// Records `value` once.
    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    /// Records `value` `count` times.
    pub fn record_n(&mut self, value: u64, count: u64) {
        if count == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        let b = &mut self.counts[bucket_of(value)];
        *b = b.saturating_add(count);
        self.samples = self.samples.saturating_add(count);
    }

    /// Number of values recorded.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The value at `per_10k` / 10,000 of the distribution (the lower bound of its bucket);
    /// 0 when empty.
    pub fn percentile_per_10k(&self, per_10k: u64) -> u64 {
        if self.samples == 0 {
            return 0;
        }
        let rank = (u128::from(self.samples) * u128::from(per_10k.min(10_000))).div_ceil(10_000).max(1);
        let mut seen: u128 = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += u128::from(*c);
            if seen >= rank {
                return lower_bound(i);
            }
        }
        self.counts.iter().rposition(|c| *c > 0).map_or(0, lower_bound)
    }

    /// The standard percentiles.
    pub fn percentile_stats(&self) -> PercentileStats {
        let p = |per_10k| self.percentile_per_10k(per_10k);
        PercentileStats {
            samples: self.samples,
            p0_1: p(10),
            p1: p(100),
            p5: p(500),
            p10: p(1_000),
            p50: p(5_000),
            p90: p(9_000),
            p99: p(9_900),
            p99_9: p(9_990),
        }
    }

    /// Non-empty buckets as (lower bound, count), in value order.
    fn non_empty(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| (lower_bound(i), *c))
    }
}

impl<T> Default for Histogram<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Histogram<T> {
    fn clone(&self) -> Self {
        Histogram { counts: self.counts.clone(), samples: self.samples, _slot_data: PhantomData }
    }
}

impl<T> PartialEq for Histogram<T> {
    fn eq(&self, other: &Self) -> bool {
        self.samples == other.samples && self.non_empty().eq(other.non_empty())
    }
}

impl<T> Eq for Histogram<T> {}

impl<T> fmt::Debug for Histogram<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram").field("stats", &self.percentile_stats()).finish()
    }
}

/// Percentiles of a [`Histogram`] (each the lower bound of the bucket holding it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PercentileStats {
    /// Number of values recorded.
    pub samples: u64,
    /// 0.1th percentile.
    pub p0_1: u64,
    /// 1st percentile.
    pub p1: u64,
    /// 5th percentile.
    pub p5: u64,
    /// 10th percentile.
    pub p10: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
}

impl fmt::Display for PercentileStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[samples: {}, P0.1: {}, P1: {}, P5: {}, P10: {}, P50: {}, P90: {}, P99: {}, P99.9: {}]",
            self.samples, self.p0_1, self.p1, self.p5, self.p10, self.p50, self.p90, self.p99, self.p99_9
        )
    }
}

/// Named histograms rendered one under the other as text bar charts.
pub struct AsciiChart<T = ()> {
    rows: Vec<(String, Histogram<T>)>,
}

impl<T> AsciiChart<T> {
    /// An empty chart.
    pub fn new() -> Self {
        AsciiChart { rows: Vec::new() }
    }

    /// Adds a histogram under `name`.
    pub fn add(mut self, name: &str, hist: Histogram<T>) -> Self {
        self.rows.push((name.to_string(), hist));
        self
    }

    /// One block per histogram: its percentiles, then a bar (up to 40 `#`) per non-empty bucket.
    pub fn detailed(&self) -> String {
        let mut out = String::new();
        for (name, h) in &self.rows {
            out.push_str(&format!("{name}: {}\n", h.percentile_stats()));
            let max = h.non_empty().map(|(_, c)| c).max().unwrap_or(0);
            for (lower, count) in h.non_empty() {
                let bar = (count.saturating_mul(40)).div_ceil(max.max(1)) as usize;
                out.push_str(&format!("  {lower:>20} | {:<40} {count}\n", "#".repeat(bar)));
            }
        }
        out
    }
}

impl<T> Default for AsciiChart<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Display for AsciiChart<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detailed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_u64() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(7), 7);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        for i in 1..BUCKETS {
            assert!(lower_bound(i) > lower_bound(i - 1), "bucket {i} starts above bucket {}", i - 1);
            assert_eq!(bucket_of(lower_bound(i)), i);
            assert_eq!(bucket_of(lower_bound(i) - 1), i - 1);
        }
        for v in [9u64, 100, 1_000, 123_456, 1 << 40] {
            let lo = lower_bound(bucket_of(v));
            assert!(lo <= v && (v - lo) * 8 <= v, "{v} lands in a bucket starting at {lo}");
        }
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h: Histogram = Histogram::new();
        assert_eq!(h.percentile_stats(), PercentileStats::default());
        assert!(h.counts.is_empty(), "nothing allocated before the first value");
        for v in 1..=1_000u64 {
            h.record(v);
        }
        h.record_n(5_000, 10);
        let s = h.percentile_stats();
        assert_eq!(s.samples, 1_010);
        assert_eq!(s.p0_1, 2, "rank ceil(0.001 × 1,010) = 2");
        assert!((448..=512).contains(&s.p50), "median {}", s.p50);
        assert!((832..=896).contains(&s.p90), "p90 {}", s.p90);
        assert_eq!(s.p99_9, 4_608, "the top values sit in the bucket of 5,000");
        assert!(s.to_string().starts_with("[samples: 1010, P0.1: 2,"));
    }

    #[test]
    fn equality_clone_and_chart() {
        let mut a: Histogram = Histogram::new();
        let b: Histogram = Histogram::new();
        assert_eq!(a, b);
        a.record(3);
        assert_ne!(a, b);
        assert_eq!(a.clone(), a);
        let chart = AsciiChart::new().add("stage", a).add("empty", b);
        let text = chart.detailed();
        assert!(text.contains("stage: [samples: 1"));
        assert!(text.contains("| ########################################"), "{text}");
        assert!(text.contains("empty: [samples: 0"));
    }
}
