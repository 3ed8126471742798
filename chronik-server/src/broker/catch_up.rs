//! Replicas being added by a move (`adding_replicas`, not yet in the ISR) catch up at no more than
//! `reassignment_throttle_bytes_per_s`, so a catch-up of a large log does not take the disk and
//! network from producers and in-sync followers — on both sides, as Kafka's replication throttle:
//! a leader sends at most that to each follower broker, and a follower takes in at most that from all
//! its leaders together. The leader measures what it sends, so `/admin/status` can show the rate and
//! an estimate of the time left.
//!
//! In-sync followers are never throttled (a follower that fell behind after a restart must catch up
//! at full speed to protect durability), and neither is anything when the limit is 0.
//!
//! The throttle is a token bucket per follower broker holding at most one second of bytes. A fetch
//! is answered only while the bucket is not empty, with at most what it holds — except that the first
//! batch of a partition is always whole (KIP-74), so the bucket may go negative and the follower then
//! waits until it has refilled. Over any second the bytes sent stay within the rate plus one batch.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::ids::{BrokerId, TopicPartition};

/// Window over which a catch-up's rate is measured before it is folded into the running estimate.
const RATE_WINDOW_MS: u64 = 1_000;
/// A rate entry not updated for this long belongs to a move that ended; it is dropped.
const RATE_IDLE_MS: u64 = 60_000;
/// Most catch-ups whose rate is remembered (a bound; far above the moves ever in flight).
const RATES_MAX: usize = 4_096;

/// Catch-up traffic of replicas being added, as the leader sees it.
#[derive(Debug)]
pub struct CatchUp {
    limit_bytes_per_s: u64,
    /// Leader side: per follower broker.
    buckets: Mutex<HashMap<i32, Bucket>>,
    /// Follower side: everything this broker takes in for replicas it is catching up on.
    inbound: Mutex<Option<Bucket>>,
    /// Leader side: per replica being added (partition, follower broker).
    rates: Mutex<HashMap<(TopicPartition, BrokerId), Rate>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Bytes that may be sent now; negative after a batch larger than the balance.
    balance: f64,
    at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    window_start: Instant,
    window_bytes: u64,
    bytes_per_s: Option<f64>,
    total_bytes: u64,
    last: Instant,
}

/// What `/admin/status` shows of one catch-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatchUpRate {
    pub bytes_per_s: Option<f64>,
    pub bytes_sent: u64,
}

impl CatchUp {
    /// `limit_bytes_per_s` per follower broker; 0 for no limit.
    pub fn new(limit_bytes_per_s: u64) -> CatchUp {
        CatchUp { limit_bytes_per_s, buckets: Mutex::new(HashMap::new()), inbound: Mutex::new(None), rates: Mutex::new(HashMap::new()) }
    }

    pub fn limit_bytes_per_s(&self) -> u64 {
        self.limit_bytes_per_s
    }

    /// How many bytes a fetch by `follower` for a partition it is catching up may return now:
    /// `None` when there is no limit, `Some(0)` when the follower must wait.
    pub fn allowance(&self, follower: i32, now: Instant) -> Option<usize> {
        let mut buckets = self.buckets.lock();
        self.refill(buckets.entry(follower).or_insert(Bucket { balance: self.limit_bytes_per_s as f64, at: now }), now)
    }

    /// How many bytes this broker, as a follower, may take in now for the replicas it is catching
    /// up on (from all leaders together): `None` without a limit, `Some(0)` to leave them out of
    /// its next fetches.
    pub fn inbound_allowance(&self, now: Instant) -> Option<usize> {
        let mut inbound = self.inbound.lock();
        self.refill(inbound.get_or_insert(Bucket { balance: self.limit_bytes_per_s as f64, at: now }), now)
    }

    /// This broker took in `bytes` for replicas it is catching up on.
    pub fn received(&self, bytes: usize) {
        if let Some(b) = self.inbound.lock().as_mut() {
            b.balance -= bytes as f64;
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) -> Option<usize> {
        if self.limit_bytes_per_s == 0 {
            return None;
        }
        let rate = self.limit_bytes_per_s as f64;
        b.balance = (b.balance + rate * now.saturating_duration_since(b.at).as_secs_f64()).min(rate);
        b.at = now;
        Some(if b.balance <= 0.0 { 0 } else { b.balance as usize })
    }

    /// `bytes` of `topic`-`partition` were sent to `follower`, which is catching up.
    pub fn sent(&self, topic: &str, partition: i32, follower: i32, bytes: usize, now: Instant) {
        if self.limit_bytes_per_s > 0 {
            if let Some(b) = self.buckets.lock().get_mut(&follower) {
                b.balance -= bytes as f64;
            }
        }
        let mut rates = self.rates.lock();
        if rates.len() >= RATES_MAX {
            rates.retain(|_, r| now.saturating_duration_since(r.last) < Duration::from_millis(RATE_IDLE_MS));
        }
        if rates.len() >= RATES_MAX {
            return;
        }
        let r = rates.entry((TopicPartition::new(topic, partition), BrokerId(follower))).or_insert(Rate {
            window_start: now,
            window_bytes: 0,
            bytes_per_s: None,
            total_bytes: 0,
            last: now,
        });
        r.window_bytes += bytes as u64;
        r.total_bytes += bytes as u64;
        r.last = now;
        let elapsed = now.saturating_duration_since(r.window_start);
        if elapsed >= Duration::from_millis(RATE_WINDOW_MS) {
            let measured = r.window_bytes as f64 / elapsed.as_secs_f64();
            // Half the weight on the newest window: follows a changed limit within a few seconds.
            r.bytes_per_s = Some(r.bytes_per_s.map_or(measured, |old| (old + measured) / 2.0));
            r.window_start = now;
            r.window_bytes = 0;
        }
    }

    /// The measured rate of `follower` catching up on `topic`-`partition`, if it has sent anything.
    pub fn rate(&self, topic: &str, partition: i32, follower: i32) -> Option<CatchUpRate> {
        let rates = self.rates.lock();
        let r = rates.get(&(TopicPartition::new(topic, partition), BrokerId(follower)))?;
        Some(CatchUpRate { bytes_per_s: r.bytes_per_s, bytes_sent: r.total_bytes })
    }
}

/// Whether `replica` is catching up on `topic`-`partition`: a move is adding it and it is not in the
/// ISR yet. Only such fetches are throttled.
pub fn catching_up(state: &chronik_raft::MetadataState, topic: &str, partition: i32, replica: i32) -> bool {
    let record = state.topics.get(topic).and_then(|t| t.partitions.get(usize::try_from(partition).ok()?));
    record.is_some_and(|r| r.adding_replicas.contains(&replica) && !r.isr.contains(&replica))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limit_means_no_allowance_check() {
        let c = CatchUp::new(0);
        assert_eq!(c.allowance(2, Instant::now()), None);
    }

    #[test]
    fn the_bucket_holds_one_second_and_refills_at_the_rate() {
        let c = CatchUp::new(1_000);
        let t0 = Instant::now();
        assert_eq!(c.allowance(2, t0), Some(1_000));
        c.sent("t", 0, 2, 1_500, t0); // a whole first batch larger than the balance
        assert_eq!(c.allowance(2, t0), Some(0), "in debt: wait");
        assert_eq!(c.allowance(2, t0 + Duration::from_millis(400)), Some(0), "still 100 bytes short");
        assert_eq!(c.allowance(2, t0 + Duration::from_millis(1_000)), Some(500));
        assert_eq!(c.allowance(2, t0 + Duration::from_secs(60)), Some(1_000), "never more than one second's worth");
        assert_eq!(c.allowance(3, t0), Some(1_000), "each follower has its own bucket");
    }

    #[test]
    fn a_follower_takes_in_at_most_the_rate_from_all_leaders() {
        let c = CatchUp::new(1_000);
        let t0 = Instant::now();
        assert_eq!(c.inbound_allowance(t0), Some(1_000));
        c.received(700);
        c.received(700);
        assert_eq!(c.inbound_allowance(t0), Some(0));
        assert_eq!(c.inbound_allowance(t0 + Duration::from_millis(900)), Some(500));
        assert_eq!(CatchUp::new(0).inbound_allowance(t0), None);
    }

    #[test]
    fn the_rate_is_measured_per_catch_up() {
        let c = CatchUp::new(0);
        let t0 = Instant::now();
        assert_eq!(c.rate("t", 0, 2), None);
        c.sent("t", 0, 2, 500, t0);
        c.sent("t", 0, 2, 500, t0 + Duration::from_millis(500));
        assert_eq!(c.rate("t", 0, 2), Some(CatchUpRate { bytes_per_s: None, bytes_sent: 1_000 }));
        c.sent("t", 0, 2, 1_000, t0 + Duration::from_millis(1_000));
        let r = c.rate("t", 0, 2).map(|r| r.bytes_per_s);
        assert_eq!(r, Some(Some(2_000.0)));
        assert_eq!(c.rate("t", 1, 2), None);
    }
}
