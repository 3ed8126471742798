//! How long the `fdatasync` calls of group commit take, process-wide: the figure that bounds
//! acks=1/all produce latency. Kept in atomics so recording costs no lock; the server renders it as
//! a Prometheus histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the histogram buckets, in microseconds.
pub const SYNC_BUCKETS_US: [u64; 11] = [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 500_000, 1_000_000];

/// Counts and bucketed durations of the data syncs made so far.
pub struct SyncStats {
    count: AtomicU64,
    sum_us: AtomicU64,
    /// Cumulative: bucket i counts syncs that took at most `SYNC_BUCKETS_US[i]`.
    buckets: [AtomicU64; SYNC_BUCKETS_US.len()],
}

/// A consistent-enough copy for rendering (each field is read once; counts only grow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatsSnapshot {
    pub count: u64,
    pub sum_us: u64,
    pub buckets: [u64; SYNC_BUCKETS_US.len()],
}

/// Every partition log of this process records into this one.
pub static SYNC_STATS: SyncStats = SyncStats::new();

impl SyncStats {
    const fn new() -> SyncStats {
        const ZERO: AtomicU64 = AtomicU64::new(0);
        SyncStats { count: AtomicU64::new(0), sum_us: AtomicU64::new(0), buckets: [ZERO; SYNC_BUCKETS_US.len()] }
    }

    pub(crate) fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        for (bucket, bound) in self.buckets.iter().zip(SYNC_BUCKETS_US) {
            if us <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn snapshot(&self) -> SyncStatsSnapshot {
        SyncStatsSnapshot {
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
        let s = SyncStats::new();
        s.record(Duration::from_micros(80));
        s.record(Duration::from_micros(700));
        s.record(Duration::from_secs(3));
        let snap = s.snapshot();
        assert_eq!(snap.count, 3);
        assert_eq!(snap.buckets[0], 1); // <= 100 µs
        assert_eq!(snap.buckets[3], 2); // <= 1 ms
        assert_eq!(snap.buckets[SYNC_BUCKETS_US.len() - 1], 2); // the 3 s sync is only in +Inf
        assert_eq!(snap.sum_us, 80 + 700 + 3_000_000);
    }
}
