//! The replication side of a partition replica: its role (leader with follower progress, or follower
//! of a given leader and epoch), the leader's answer to a follower fetch, the follower's append of
//! batches fetched from the leader (offsets and epochs kept as the leader stamped them), truncation by
//! leader epoch. The role itself is in `role.rs`, the high-watermark rules in `high_watermark.rs`.
//!
//! The role is set from the applied metadata by `replication::roles`; a stale fetcher (one that still
//! fetches from an old leader) is refused here under the role lock, so it can never append after the
//! new leader's truncation.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use chronik_wal::{split_batches, ReadResult};

use super::epoch_cache::EpochCache;
use super::error::PartitionError;
use super::partition::{Inner, Partition};
use super::replica_state::{IsrChange, ReplicaState};
use super::role::Role;
use crate::config::FsyncMode;
use crate::ids::{BrokerId, LeaderEpoch};

impl Partition {
    /// The metadata makes this broker leader at `leader_epoch`. A new epoch starts at the current log
    /// end (recorded in the epoch cache, so OffsetForLeaderEpoch answers for it at once); the same
    /// epoch only updates replicas and ISR, keeping follower progress.
    pub fn become_leader(&self, leader_epoch: i32, replicas: Vec<i32>, isr: Vec<i32>, now_ms: i64) {
        {
            let mut role = self.role.lock();
            match &mut *role {
                Role::Leader(state) if state.leader_epoch == leader_epoch => {
                    state.update_membership(replicas, isr, now_ms);
                }
                _ => {
                    let mut inner = self.inner.lock();
                    let end = inner.log.as_ref().map_or(self.log_end_offset(), |l| l.log_end_offset());
                    inner.epochs.assign(leader_epoch, end);
                    drop(inner);
                    tracing::info!(topic = %self.topic, partition = self.index, leader_epoch, log_end = end, "became leader");
                    *role = Role::Leader(ReplicaState::new(self.node_id, leader_epoch, end, replicas, isr, now_ms));
                }
            }
        }
        // Waiting acks=all writes look again: the ISR may have shrunk below their min.insync.replicas.
        self.leader_changed.send_modify(|()| ());
        self.update_high_watermark();
    }

    /// The metadata makes this broker a follower of `leader` (or leaderless, `-1`) at `leader_epoch`.
    /// Returns true when this is a change (the fetcher must truncate before fetching again).
    pub fn become_follower(&self, leader: BrokerId, leader_epoch: LeaderEpoch) -> bool {
        let mut role = self.role.lock();
        let changed = !matches!(&*role, Role::Follower { leader: l, leader_epoch: e } if *l == leader && *e == leader_epoch);
        if changed {
            tracing::info!(topic = %self.topic, partition = self.index, leader = leader.0, leader_epoch = leader_epoch.0, "became follower");
            *role = Role::Follower { leader, leader_epoch };
            drop(role);
            // Waiting acks=all writes fail at once instead of at their deadline.
            self.leader_changed.send_modify(|()| ());
        }
        changed
    }

    /// Leader epoch this replica leads at, if it leads.
    pub fn leading_epoch(&self) -> Option<i32> {
        self.role.lock().leader_epoch()
    }

    /// The ISR as this leader knows it (`None` on a follower).
    pub fn isr(&self) -> Option<Vec<i32>> {
        match &*self.role.lock() {
            Role::Leader(s) => Some(s.isr.clone()),
            Role::Follower { .. } => None,
        }
    }

    /// How far follower `id` has stored this partition, as this leader knows it (`None` on a follower,
    /// for a broker that is not a replica, or before its first fetch in this epoch).
    pub fn follower_log_end(&self, id: i32) -> Option<i64> {
        match &*self.role.lock() {
            Role::Leader(s) => s.follower(id).and_then(|f| f.log_end),
            Role::Follower { .. } => None,
        }
    }

    /// Checks a request's `current_leader_epoch` (-1: not given) against the epoch this replica leads.
    fn check_leader_epoch(&self, role: &Role, requested: i32) -> Result<i32, PartitionError> {
        let Role::Leader(s) = role else {
            return Err(PartitionError::NotLeader);
        };
        if requested >= 0 && requested < s.leader_epoch {
            return Err(PartitionError::FencedLeaderEpoch { requested, current: s.leader_epoch });
        }
        if requested > s.leader_epoch {
            return Err(PartitionError::UnknownLeaderEpoch { requested, current: s.leader_epoch });
        }
        Ok(s.leader_epoch)
    }

    /// A client request's `current_leader_epoch` (KIP-320: ListOffsets v4+, Fetch v9+; -1 = not given)
    /// against the epoch this replica leads: FENCED_LEADER_EPOCH when older, UNKNOWN_LEADER_EPOCH when
    /// newer, NOT_LEADER_OR_FOLLOWER when this replica does not lead.
    pub fn check_current_leader_epoch(&self, requested: i32) -> Result<i32, PartitionError> {
        let role = self.role.lock();
        self.check_leader_epoch(&role, requested)
    }

    /// A follower's fetch: records its position, advances the high watermark if the ISR allows, and
    /// reads whole batches up to the log end (not the HW). Returns the data and the high watermark.
    pub fn replica_read(
        &self,
        follower: i32,
        fetch_offset: i64,
        current_leader_epoch: i32,
        max_bytes: usize,
        now_ms: i64,
    ) -> Result<(ReadResult, i64), PartitionError> {
        // Read before the role lock (the flusher has a lock of its own); an older value only holds
        // the high watermark back until the next fetch.
        let leader_end = self.committable_end();
        let (end, hw) = {
            let mut role = self.role.lock();
            self.check_leader_epoch(&role, current_leader_epoch)?;
            let end = self.log_end_offset();
            if fetch_offset > end || fetch_offset < self.log_start_offset() {
                return Err(PartitionError::wal(
                    &self.topic,
                    self.index,
                    chronik_wal::WalError::OffsetOutOfRange { offset: fetch_offset, log_start: self.log_start_offset(), log_end: end },
                ));
            }
            let Role::Leader(state) = &mut *role else { return Err(PartitionError::NotLeader) };
            if !state.on_follower_fetch(follower, fetch_offset, end, now_ms) {
                return Err(PartitionError::UnknownReplica { broker: follower });
            }
            (end, state.high_watermark(leader_end))
        };
        if let Some(hw) = hw {
            self.advance_high_watermark(hw);
        }
        if fetch_offset == end {
            // Caught up: nothing to read (the common case of a session's partitions).
            let nothing = ReadResult { records: Bytes::new(), log_start_offset: self.log_start_offset(), log_end_offset: end };
            return Ok((nothing, self.high_watermark()));
        }
        let inner = self.inner.lock();
        let log = inner.log.as_ref().ok_or(PartitionError::Deleted)?;
        let read = log.read(fetch_offset, max_bytes, log.log_end_offset()).map_err(|e| PartitionError::wal(&self.topic, self.index, e))?;
        Ok((read, self.high_watermark()))
    }

    /// The ISR change this leader should propose now (shrink a lagging member, expand a caught-up one).
    pub fn isr_change(&self, now_ms: i64, lag_max_ms: i64) -> Option<(IsrChange, i32)> {
        match &*self.role.lock() {
            Role::Leader(s) => s.isr_change(self.high_watermark(), now_ms, lag_max_ms).map(|c| (c, s.leader_epoch)),
            Role::Follower { .. } => None,
        }
    }

    /// OffsetForLeaderEpoch: where `requested` epoch ends in this log, checked against the caller's
    /// `current_leader_epoch`.
    pub fn end_offset_for_epoch(&self, current_leader_epoch: i32, requested: i32) -> Result<(i32, i64), PartitionError> {
        let role = self.role.lock();
        self.check_leader_epoch(&role, current_leader_epoch)?;
        let inner = self.inner.lock();
        let log = inner.log.as_ref().ok_or(PartitionError::Deleted)?;
        Ok(inner.epochs.end_offset_for(requested, log.log_end_offset()))
    }

    /// The latest leader epoch in this log and a copy of the cache (follower truncation).
    pub fn epoch_cache(&self) -> EpochCache {
        self.inner.lock().epochs.clone()
    }

    /// Checks that this replica still follows `leader` at `leader_epoch` (stale fetchers are refused).
    fn check_follower(&self, role: &Role, leader: BrokerId, leader_epoch: LeaderEpoch) -> Result<(), PartitionError> {
        match role {
            Role::Follower { leader: l, leader_epoch: e } if *l == leader && *e == leader_epoch => Ok(()),
            _ => Err(PartitionError::StaleFetcher { leader, leader_epoch }),
        }
    }

    /// Appends batches fetched from the leader, verbatim: each must start at this log's end (a batch
    /// wholly below it is a repeat and skipped), and keeps the leader epoch the leader stamped. Does
    /// not sync: the fetcher makes all the partitions of one fetch durable together
    /// ([`Partition::sync_replicated`]), and its next fetch reports [`Partition::replica_fetch_offset`],
    /// which never claims more than is durable. Blocking I/O.
    pub fn append_replicated(&self, records: &[u8], leader: BrokerId, leader_epoch: LeaderEpoch) -> Result<usize, PartitionError> {
        let role = self.role.lock();
        self.check_follower(&role, leader, leader_epoch)?;
        self.admit(records.len())?;
        let views = split_batches(records)?;
        let mut appended = 0;
        let mut failure = None;
        {
            let mut inner = self.inner.lock();
            let Inner { log, producers, epochs } = &mut *inner;
            let log = log.as_mut().ok_or(PartitionError::Deleted)?;
            for view in &views {
                let v = view.header();
                let (base, epoch) = (v.base_offset, v.partition_leader_epoch);
                let end = log.log_end_offset();
                if v.last_offset < end {
                    continue;
                }
                if base != end {
                    failure = Some(PartitionError::NotContiguous { expected: end, got: base });
                    break;
                }
                // On a full disk the batch is rolled back whole: the log ends where it did, and the
                // next fetch asks for the same offset again.
                let info = match log.append_view(view, epoch) {
                    Ok(info) => info,
                    Err(e) => {
                        failure = Some(self.wal_error(e));
                        break;
                    }
                };
                epochs.assign(epoch, info.base_offset);
                if v.is_idempotent() {
                    producers.record(v.producer_id, v.producer_epoch, v.base_sequence, v.last_sequence(), info.base_offset, info.last_offset);
                }
                appended += 1;
                self.note_append_succeeded();
            }
            // Published even when a later batch failed: the batches before it are in the log.
            self.log_end_offset.store(log.log_end_offset(), Ordering::Release);
        }
        drop(role);
        match failure {
            Some(e) => Err(e),
            None => Ok(appended),
        }
    }

    /// With `fsync = "always"`, makes everything appended so far durable (group commit with any other
    /// waiter). A follower's fetcher calls it for every partition of a fetch at once, so a fetch that
    /// brought data for six partitions costs one round of parallel fsyncs, not six in a row. Blocking
    /// I/O.
    pub fn sync_replicated(&self) -> Result<(), PartitionError> {
        if self.fsync == FsyncMode::Always {
            self.flusher.sync_through(self.log_end_offset()).map_err(|e| self.wal_error(e))?;
        }
        Ok(())
    }

    /// Where this follower fetches from next — which the leader takes as this replica's log end: with
    /// `fsync = "always"` only the durable end, so the leader's high watermark never counts data a
    /// crash of this broker could still lose. (Below the log end, the leader resends batches the
    /// follower then skips as repeats.)
    pub fn replica_fetch_offset(&self) -> i64 {
        self.committable_end()
    }

    /// Cuts the log at `offset` (follower truncation before fetching from a new leader): batches at or
    /// above it go, with their producer state and epochs. Blocking I/O.
    pub fn truncate_to(&self, offset: i64, leader: BrokerId, leader_epoch: LeaderEpoch) -> Result<(), PartitionError> {
        let role = self.role.lock();
        self.check_follower(&role, leader, leader_epoch)?;
        let mut inner = self.inner.lock();
        let Inner { log, producers, epochs } = &mut *inner;
        let log = log.as_mut().ok_or(PartitionError::Deleted)?;
        if offset >= log.log_end_offset() {
            // Nothing to cut, but an epoch this replica started as leader without writing anything
            // (its entry sits at the log end) must go too, or the next round asks about it again.
            epochs.truncate_from_end(offset);
            return Ok(());
        }
        log.truncate_to(offset).map_err(|e| PartitionError::wal(&self.topic, self.index, e))?;
        let end = log.log_end_offset();
        producers.truncate_from(end);
        epochs.truncate_from_end(end);
        if end <= log.log_start_offset() {
            // The log restarted empty: no epoch has anything here any more.
            *epochs = EpochCache::default();
        }
        self.log_end_offset.store(end, Ordering::Release);
        self.log_start_offset.store(log.log_start_offset(), Ordering::Release);
        self.high_watermark.fetch_min(end, Ordering::AcqRel);
        tracing::info!(topic = %self.topic, partition = self.index, offset, log_end = end, leader = leader.0, leader_epoch = leader_epoch.0, "truncated by leader epoch");
        Ok(())
    }

    /// The leader's log starts above this follower's whole log (retention removed what the follower
    /// never fetched): nothing here can be kept, so the log restarts empty at `leader_log_start`,
    /// with no producer state or epochs, and fetching continues from there. Blocking I/O.
    pub fn restart_at(&self, leader_log_start: i64, leader: BrokerId, leader_epoch: LeaderEpoch) -> Result<(), PartitionError> {
        let role = self.role.lock();
        self.check_follower(&role, leader, leader_epoch)?;
        let mut inner = self.inner.lock();
        let Inner { log, producers, epochs } = &mut *inner;
        let log = log.as_mut().ok_or(PartitionError::Deleted)?;
        if log.log_end_offset() >= leader_log_start {
            return Ok(());
        }
        log.restart_at(leader_log_start).map_err(|e| PartitionError::wal(&self.topic, self.index, e))?;
        *producers = Default::default();
        *epochs = EpochCache::default();
        self.log_end_offset.store(log.log_end_offset(), Ordering::Release);
        self.log_start_offset.store(log.log_start_offset(), Ordering::Release);
        self.high_watermark.store(log.log_start_offset(), Ordering::Release);
        tracing::warn!(topic = %self.topic, partition = self.index, leader_log_start, leader = leader.0, leader_epoch = leader_epoch.0, "log lay below the leader's log start; restarted empty there");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chronik_wal::{split_batches, LogConfig};
    use tokio::sync::watch;

    use super::*;
    use crate::partition::test_batch::{batch, stored};

    fn open(dir: &Path, node: i32, fsync: FsyncMode) -> Partition {
        let (data_changed, _) = watch::channel(0);
        let (appended, _) = watch::channel(0);
        Partition::open(dir, "t", 0, [0; 16], node, LogConfig::default(), fsync, data_changed, appended, std::sync::Arc::new(crate::partition::disk_floor::DiskFloor::none())).expect("open")
    }

    fn append_as(p: &Partition, count: i32, epoch: i32) {
        p.append(&split_batches(&batch(count, -1, 0, -1)).expect("split"), epoch).expect("append");
    }

    #[test]
    fn leader_high_watermark_is_the_lowest_isr_end_and_waits_for_every_member() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = open(dir.path(), 1, FsyncMode::Never);
        p.become_leader(1, vec![1, 2, 3], vec![1, 2, 3], 0);
        append_as(&p, 5, 1);
        assert_eq!(p.high_watermark(), 0, "a member whose position is unknown holds the HW");
        p.replica_read(2, 5, 1, 1 << 20, 1).expect("fetch 2");
        assert_eq!(p.high_watermark(), 0);
        p.replica_read(3, 3, 1, 1 << 20, 1).expect("fetch 3");
        assert_eq!(p.high_watermark(), 3);
        // Shrinking the ISR to the caught-up members (same epoch) keeps their progress.
        p.become_leader(1, vec![1, 2, 3], vec![1, 2], 2);
        assert_eq!(p.high_watermark(), 5);
        assert!(matches!(p.replica_read(9, 0, 1, 1 << 20, 3), Err(PartitionError::UnknownReplica { broker: 9 })));
        assert!(matches!(p.replica_read(2, 5, 0, 1 << 20, 3), Err(PartitionError::FencedLeaderEpoch { .. })));
        assert!(matches!(p.replica_read(2, 5, 2, 1 << 20, 3), Err(PartitionError::UnknownLeaderEpoch { .. })));
    }

    #[test]
    fn leader_to_follower_and_back_records_each_epoch_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = open(dir.path(), 1, FsyncMode::Never);
        p.become_leader(1, vec![1, 2], vec![1], 0);
        append_as(&p, 3, 1);
        assert_eq!(p.leading_epoch(), Some(1));
        assert!(p.become_follower(BrokerId(2), LeaderEpoch(2)));
        assert!(!p.become_follower(BrokerId(2), LeaderEpoch(2)), "the same leader and epoch is no change");
        assert_eq!((p.leading_epoch(), p.isr()), (None, None));
        assert!(matches!(p.replica_read(2, 0, -1, 1 << 20, 0), Err(PartitionError::NotLeader)));
        p.append_replicated(&stored(2, 3, 2), BrokerId(2), LeaderEpoch(2)).expect("replicate");
        p.become_leader(3, vec![1, 2], vec![1, 2], 0);
        assert_eq!(p.end_offset_for_epoch(-1, 1).expect("epoch 1"), (1, 3));
        assert_eq!(p.end_offset_for_epoch(-1, 2).expect("epoch 2"), (2, 5));
        assert_eq!(p.end_offset_for_epoch(3, 3).expect("epoch 3"), (3, 5));
    }

    #[test]
    fn follower_appends_contiguously_skips_repeats_and_refuses_stale_fetchers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = open(dir.path(), 2, FsyncMode::Never);
        p.become_follower(BrokerId(1), LeaderEpoch(4));
        assert_eq!(p.append_replicated(&stored(3, 0, 4), BrokerId(1), LeaderEpoch(4)).expect("first"), 1);
        assert_eq!(p.append_replicated(&stored(3, 0, 4), BrokerId(1), LeaderEpoch(4)).expect("repeat"), 0, "a repeat is skipped");
        assert!(matches!(p.append_replicated(&stored(1, 7, 4), BrokerId(1), LeaderEpoch(4)), Err(PartitionError::NotContiguous { expected: 3, got: 7 })));
        assert!(matches!(p.append_replicated(&stored(1, 3, 4), BrokerId(1), LeaderEpoch(3)), Err(PartitionError::StaleFetcher { .. })));
        assert!(matches!(p.append_replicated(&stored(1, 3, 4), BrokerId(5), LeaderEpoch(4)), Err(PartitionError::StaleFetcher { .. })));
        assert_eq!(p.log_end_offset(), 3);
        // The follower's HW is the leader's, capped at what it holds.
        p.set_follower_high_watermark(10);
        assert_eq!(p.high_watermark(), 3);
        p.set_follower_high_watermark(2);
        assert_eq!(p.high_watermark(), 2);
    }

    #[test]
    fn truncation_cuts_the_log_its_epochs_and_the_high_watermark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = open(dir.path(), 2, FsyncMode::Never);
        p.become_follower(BrokerId(1), LeaderEpoch(5));
        p.append_replicated(&stored(3, 0, 4), BrokerId(1), LeaderEpoch(5)).expect("epoch 4");
        p.append_replicated(&stored(3, 3, 5), BrokerId(1), LeaderEpoch(5)).expect("epoch 5");
        p.set_follower_high_watermark(6);
        assert!(matches!(p.truncate_to(3, BrokerId(1), LeaderEpoch(4)), Err(PartitionError::StaleFetcher { .. })));
        p.truncate_to(3, BrokerId(1), LeaderEpoch(5)).expect("truncate");
        assert_eq!((p.log_end_offset(), p.high_watermark()), (3, 3));
        assert_eq!(p.epoch_cache().latest_epoch(), Some(4), "epoch 5 is gone with its batches");
        p.truncate_to(0, BrokerId(1), LeaderEpoch(5)).expect("truncate to empty");
        assert_eq!((p.log_end_offset(), p.epoch_cache().latest_epoch()), (0, None));
    }

    #[test]
    fn with_fsync_always_only_the_durable_end_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = open(dir.path(), 2, FsyncMode::Always);
        p.become_follower(BrokerId(1), LeaderEpoch(1));
        p.append_replicated(&stored(4, 0, 1), BrokerId(1), LeaderEpoch(1)).expect("replicate");
        assert_eq!((p.log_end_offset(), p.replica_fetch_offset()), (4, 0));
        p.set_follower_high_watermark(4);
        assert_eq!(p.high_watermark(), 0, "a follower HW passed data not yet fsynced");
        p.sync_replicated().expect("sync");
        assert_eq!(p.replica_fetch_offset(), 4);
        p.set_follower_high_watermark(4);
        assert_eq!(p.high_watermark(), 4);
    }
}
