//! The leader write path, the one way records enter a partition this broker leads (Produce and the
//! group coordinator's offsets log both use it):
//!
//! 1. [`Partition::append_as_leader`] — under the role lock: this replica must lead at the caller's
//!    leader epoch, and for `acks=all` at least `min.insync.replicas` ISR members must be in sync
//!    (NOT_ENOUGH_REPLICAS, nothing appended); then the batches are appended (producer sequences
//!    checked, offsets and epoch stamped). Fast: no fsync, no waiting.
//! 2. [`Partition::commit`] — waits until the write is as safe as the caller asked: fsynced here
//!    (with `fsync = "always"`), and for `acks=all` below the high watermark, i.e. stored by every ISR
//!    member, with the ISR still at least `min.insync.replicas` (NOT_ENOUGH_REPLICAS_AFTER_APPEND),
//!    all by a deadline (REQUEST_TIMED_OUT). The high-watermark wait sleeps on the partition's
//!    `leader_changed` channel, which moves when the high watermark advances or the role changes.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chronik_wal::BatchView;
use tokio::time::Instant;

use super::epoch_cache::UNDEFINED_EPOCH;
use super::error::PartitionError;
use super::partition::{AppendResult, Partition};
use super::role::Role;
use super::topic_config::TopicConfig;
use crate::config::FsyncMode;

/// A topic's `min.insync.replicas`, read by one rule: the topic's value over the broker default, and
/// never below 1 (the leader itself is always in sync, so 0 or a negative value means "the leader
/// alone").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinInsyncReplicas(usize);

impl MinInsyncReplicas {
    pub fn new(value: i64) -> Self {
        MinInsyncReplicas(usize::try_from(value.max(1)).unwrap_or(usize::MAX))
    }
    /// A topic's, from its typed configs (the broker's `min_insync_replicas` unless it sets one).
    pub fn of_topic(config: &TopicConfig) -> Self {
        Self::new(config.min_insync_replicas)
    }
    pub fn get(self) -> usize {
        self.0
    }
}

/// How far a leader write must get before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks` 0 or 1: stored (fsynced, with `fsync = "always"`) on this leader.
    Leader,
    /// `acks=all`: also stored by every ISR member, with at least this many in the ISR.
    All(MinInsyncReplicas),
}

/// A leader write that was appended and still has to be committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderWrite {
    /// One result per batch, in order.
    pub results: Vec<AppendResult>,
    /// Every offset below this must be committed before the write is answered: the end of what was
    /// appended, or — when every batch was a retried duplicate — the log end, so the originals are
    /// committed too.
    pub end_offset: i64,
    pub leader_epoch: i32,
    pub acks: Acks,
}

/// A committed write: when it became durable on this broker (what came after, for acks=all, was the
/// wait for the followers), for the produce stage metrics.
#[derive(Debug, Clone, Copy)]
pub struct Committed {
    pub durable_at: Instant,
}

impl LeaderWrite {
    /// Base offset to answer with: the first batch's (new or original) base offset.
    pub fn base_offset(&self) -> Option<i64> {
        self.results.first().map(|r| match r {
            AppendResult::Appended { base_offset, .. } | AppendResult::Duplicate { base_offset } => *base_offset,
        })
    }
}

impl Partition {
    /// Step 1 of the leader write path (see the module docs): checks leadership at `leader_epoch` and,
    /// for `acks=all`, the in-sync count, then appends `batches`. Does not wait for durability.
    ///
    /// The in-sync count is the ISR less the members this leader is about to shrink (not caught up
    /// within `lag_max_ms` at `now_ms`; the leader counts itself): a leader cut off from its followers
    /// (and from the metadata quorum, so the shrink cannot commit) still answers NOT_ENOUGH_REPLICAS
    /// rather than letting every request time out.
    pub fn append_as_leader(
        &self,
        batches: &[BatchView<'_>],
        leader_epoch: i32,
        acks: Acks,
        now_ms: i64,
        lag_max_ms: i64,
    ) -> Result<LeaderWrite, PartitionError> {
        {
            let role = self.role.lock();
            let Role::Leader(state) = &*role else { return Err(PartitionError::NotLeader) };
            if state.leader_epoch != leader_epoch {
                return Err(PartitionError::NotLeader);
            }
            if let Acks::All(min_isr) = acks {
                let in_sync = state.isr.len().saturating_sub(state.shrink_candidates(now_ms, lag_max_ms).len());
                if in_sync < min_isr.get() {
                    return Err(PartitionError::NotEnoughReplicas { in_sync, isr: state.isr.clone(), min_isr: min_isr.get() });
                }
            }
        }
        let results = self.append(batches, leader_epoch)?;
        let appended_end = results
            .iter()
            .filter_map(|r| match r {
                AppendResult::Appended { last_offset, .. } => Some(last_offset + 1),
                AppendResult::Duplicate { .. } => None,
            })
            .max();
        let end_offset = appended_end.unwrap_or_else(|| self.log_end_offset());
        Ok(LeaderWrite { results, end_offset, leader_epoch, acks })
    }

    /// Step 2 of the leader write path: resolves once `write` is committed as its `acks` asks, or fails
    /// with [`PartitionError::TimedOut`] at `deadline`.
    pub async fn commit(self: &Arc<Self>, write: &LeaderWrite, deadline: Instant) -> Result<Committed, PartitionError> {
        let committed = async {
            self.make_durable(write.end_offset).await?;
            let durable_at = Instant::now();
            if let Acks::All(min_isr) = write.acks {
                self.wait_replicated(write.end_offset, write.leader_epoch, min_isr).await?;
            }
            Ok(Committed { durable_at })
        };
        let started = Instant::now();
        match tokio::time::timeout_at(deadline, committed).await {
            Ok(result) => result,
            Err(_elapsed) => Err(PartitionError::TimedOut { waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX) }),
        }
    }

    /// Resolves once every offset below `end_offset` is durable on this broker; the high watermark
    /// advances as far as the ISR allows. Immediate unless `fsync = "always"`. Step 2 for `acks=0`,
    /// which has nobody to answer and so no deadline.
    pub async fn make_durable(self: &Arc<Self>, end_offset: i64) -> Result<(), PartitionError> {
        if self.fsync != FsyncMode::Always || self.flusher.durable_end_offset() >= end_offset {
            return Ok(());
        }
        let flusher = self.flusher.clone();
        tokio::task::spawn_blocking(move || flusher.sync_through(end_offset))
            .await
            .map_err(|e| PartitionError::SyncTask(e.to_string()))?
            .map_err(|e| self.wal_error(e))?;
        self.update_high_watermark();
        Ok(())
    }

    /// acks=all: resolves once the high watermark reaches `end_offset`; fails when this broker stops
    /// leading at `leader_epoch`, or when the ISR is below `min_isr` at that moment. Sleeps on
    /// `leader_changed` (high watermark or role moved) — the caller bounds the wait.
    async fn wait_replicated(&self, end_offset: i64, leader_epoch: i32, min_isr: MinInsyncReplicas) -> Result<(), PartitionError> {
        let mut changes = self.leader_changed.subscribe();
        loop {
            // Marks the current value seen before looking: a change after this line wakes `changed`.
            changes.borrow_and_update();
            let (epoch, isr_len) = match &*self.role.lock() {
                Role::Leader(s) => (s.leader_epoch, s.isr.len()),
                Role::Follower { .. } => (UNDEFINED_EPOCH, 0),
            };
            if epoch != leader_epoch {
                return Err(PartitionError::NotLeader);
            }
            if self.high_watermark.load(Ordering::Acquire) >= end_offset {
                if isr_len < min_isr.get() {
                    return Err(PartitionError::NotEnoughReplicasAfterAppend { isr: isr_len, min_isr: min_isr.get() });
                }
                return Ok(());
            }
            // The sender lives in `self`, so it cannot be dropped while this borrow lasts.
            if changes.changed().await.is_err() {
                return Err(PartitionError::NotLeader);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use chronik_wal::{split_batches, LogConfig};
    use tokio::sync::watch;

    use super::*;
    use crate::partition::test_batch::batch;

    const LAG_MS: i64 = 1_000;
    const EPOCH: i32 = 4;

    /// Broker 1 leading at `EPOCH` with broker 2 as an ISR follower (fsync never: no disk waits).
    fn leader_of_two(dir: &Path) -> Arc<Partition> {
        let (data_changed, _) = watch::channel(0);
        let (appended, _) = watch::channel(0);
        let p = Partition::open(dir, "t", 0, [0; 16], 1, LogConfig::default(), FsyncMode::Never, data_changed, appended, Arc::new(crate::partition::disk_floor::DiskFloor::none())).expect("open");
        p.become_leader(EPOCH, vec![1, 2], vec![1, 2], 0);
        Arc::new(p)
    }

    fn write(p: &Partition, acks: Acks, now_ms: i64) -> Result<LeaderWrite, PartitionError> {
        let b = batch(3, -1, 0, -1);
        p.append_as_leader(&split_batches(&b).expect("split"), EPOCH, acks, now_ms, LAG_MS)
    }

    fn all(n: i64) -> Acks {
        Acks::All(MinInsyncReplicas::new(n))
    }

    #[test]
    fn min_insync_replicas_is_never_below_the_leader_itself() {
        assert_eq!(MinInsyncReplicas::new(-3).get(), 1);
        assert_eq!(MinInsyncReplicas::new(0).get(), 1);
        assert_eq!(MinInsyncReplicas::new(2).get(), 2);
        let topic = TopicConfig { min_insync_replicas: 3, ..TopicConfig::default() };
        assert_eq!(MinInsyncReplicas::of_topic(&topic).get(), 3);
        assert_eq!(MinInsyncReplicas::of_topic(&TopicConfig { min_insync_replicas: 0, ..topic }).get(), 1);
    }

    #[test]
    fn refusals_append_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = leader_of_two(dir.path());
        let wrong_epoch = p.append_as_leader(&split_batches(&batch(1, -1, 0, -1)).expect("split"), EPOCH + 1, Acks::Leader, 0, LAG_MS);
        assert!(matches!(wrong_epoch, Err(PartitionError::NotLeader)));
        // The follower never fetched: past the lag window it counts as about to leave the ISR.
        let r = write(&p, all(2), LAG_MS + 1);
        assert!(matches!(r, Err(PartitionError::NotEnoughReplicas { in_sync: 1, min_isr: 2, .. })), "{r:?}");
        assert_eq!(p.log_end_offset(), 0);
        // acks=1 does not ask for the ISR.
        assert_eq!(write(&p, Acks::Leader, LAG_MS + 1).expect("acks=1").end_offset, 3);
        p.become_follower(crate::ids::BrokerId(2), crate::ids::LeaderEpoch(EPOCH + 1));
        assert!(matches!(write(&p, Acks::Leader, 0), Err(PartitionError::NotLeader)));
    }

    #[tokio::test]
    async fn acks_all_commits_when_the_follower_moves_the_high_watermark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = leader_of_two(dir.path());
        let w = write(&p, all(2), 0).expect("append");
        assert_eq!((w.base_offset(), w.end_offset), (Some(0), 3));
        let waiter = tokio::spawn({
            let (p, w) = (p.clone(), w.clone());
            async move { p.commit(&w, Instant::now() + Duration::from_secs(30)).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "committed before the follower had the batch");
        p.replica_read(2, 3, EPOCH, 1 << 20, 10).expect("follower fetch");
        assert_eq!(p.high_watermark(), 3);
        waiter.await.expect("join").expect("committed");
    }

    #[tokio::test]
    async fn a_waiting_write_fails_when_leadership_or_the_isr_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = leader_of_two(dir.path());
        let w = write(&p, all(2), 0).expect("append");
        let started = Instant::now();
        let waiter = tokio::spawn({
            let (p, w) = (p.clone(), w.clone());
            async move { p.commit(&w, Instant::now() + Duration::from_secs(30)).await }
        });
        tokio::task::yield_now().await;
        p.become_follower(crate::ids::BrokerId(2), crate::ids::LeaderEpoch(EPOCH + 1));
        assert!(matches!(waiter.await.expect("join"), Err(PartitionError::NotLeader)));
        assert!(started.elapsed() < Duration::from_secs(5), "the role change did not wake the waiter");

        // The ISR shrinks to the leader: the HW passes the batch, but below min.insync.replicas.
        let dir = tempfile::tempdir().expect("tempdir");
        let p = leader_of_two(dir.path());
        let w = write(&p, all(2), 0).expect("append");
        p.become_leader(EPOCH, vec![1, 2], vec![1], 5);
        let r = p.commit(&w, Instant::now() + Duration::from_secs(30)).await;
        assert!(matches!(r, Err(PartitionError::NotEnoughReplicasAfterAppend { isr: 1, min_isr: 2 })), "{r:?}");
    }

    #[tokio::test]
    async fn an_uncommitted_write_times_out_at_its_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = leader_of_two(dir.path());
        let w = write(&p, all(2), 0).expect("append");
        let r = p.commit(&w, Instant::now() + Duration::from_millis(50)).await;
        assert!(matches!(r, Err(PartitionError::TimedOut { waited_ms }) if waited_ms >= 50), "{r:?}");
    }
}
