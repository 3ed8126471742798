//! A latency histogram kept in atomics (recording takes no lock), and the process-wide one of
//! group commit's `fdatasync` durations — the figure that bounds acks=1/all produce latency. The
//! server renders these as Prometheus histograms and keeps its per-API request latencies in the same
//! type.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the fsync histogram's buckets, in microseconds.
pub const SYNC_BUCKETS_US: [u64; 11] = [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 500_000, 1_000_000];

/// Every partition log of this process records its group-commit syncs here.
pub static SYNC_STATS: Histogram<{ SYNC_BUCKETS_US.len() }> = Histogram::new(SYNC_BUCKETS_US);

/// Count, sum and cumulative buckets of durations, `N` bucket bounds plus the implicit +Inf.
pub struct Histogram<const N: usize> {
    bounds_us: [u64; N],
    count: AtomicU64,
    sum_us: AtomicU64,
    /// Cumulative: bucket i counts samples of at most `bounds_us[i]`.
    buckets: [AtomicU64; N],
}

/// A copy for rendering; each field is read once, and counts only grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot<const N: usize> {
    pub bounds_us: [u64; N],
    pub count: u64,
    pub sum_us: u64,
    pub buckets: [u64; N],
}

impl<const N: usize> Histogram<N> {
    /// `bounds_us` must be ascending.
    pub const fn new(bounds_us: [u64; N]) -> Self {
        Histogram { bounds_us, count: AtomicU64::new(0), sum_us: AtomicU64::new(0), buckets: [const { AtomicU64::new(0) }; N] }
    }

    pub fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        for (bucket, bound) in self.buckets.iter().zip(self.bounds_us) {
            if us <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn snapshot(&self) -> HistogramSnapshot<N> {
        HistogramSnapshot {
            bounds_us: self.bounds_us,
            count: self.count.load(Ordering::Relaxed),
            sum_us: self.sum_us.load(Ordering::Relaxed),
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let h = Histogram::new(SYNC_BUCKETS_US);
        h.record(Duration::from_micros(80));
        h.record(Duration::from_micros(700));
        h.record(Duration::from_secs(3));
        let snap = h.snapshot();
        assert_eq!(snap.count, 3);
        assert_eq!(snap.buckets[0], 1); // <= 100 µs
        assert_eq!(snap.buckets[3], 2); // <= 1 ms
        assert_eq!(snap.buckets[SYNC_BUCKETS_US.len() - 1], 2); // the 3 s sample is only in +Inf
        assert_eq!(snap.sum_us, 80 + 700 + 3_000_000);
    }
}
