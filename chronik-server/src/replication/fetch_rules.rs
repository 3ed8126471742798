//! The replica fetcher's decisions, apart from its I/O (`fetcher.rs`): which partitions must be
//! truncated before they are fetched, how many bytes a throttled partition may ask for, what a
//! partition error in a fetch answer leads to, and what a failed replicated write leads to.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;

use super::fetcher::FETCH_PARTITION_BYTES_MAX;
use crate::ids::{LeaderEpoch, TopicPartition};
use crate::partition::PartitionError;

/// The leader epoch each partition was last truncated for. A partition must be truncated again
/// (OffsetForLeaderEpoch, then cut where the logs stop agreeing) before its first fetch at a new
/// leader epoch, after it left and re-entered the assignment, and after any answer that says its log
/// and the leader's may have diverged.
#[derive(Debug, Default)]
pub struct TruncationMarks {
    truncated_at: HashMap<TopicPartition, LeaderEpoch>,
}

impl TruncationMarks {
    /// Forgets partitions that left `assignment` or whose leader epoch changed in it.
    pub fn keep_assigned(&mut self, assignment: &BTreeMap<TopicPartition, LeaderEpoch>) {
        self.truncated_at.retain(|k, e| assignment.get(k) == Some(e));
    }
    /// Whether the partition must be truncated before it is fetched at `epoch`.
    pub fn needed(&self, key: &TopicPartition, epoch: LeaderEpoch) -> bool {
        self.truncated_at.get(key) != Some(&epoch)
    }
    /// The partition's log agrees with the leader's at `epoch`.
    pub fn done(&mut self, key: TopicPartition, epoch: LeaderEpoch) {
        self.truncated_at.insert(key, epoch);
    }
    /// The partition must be truncated again before its next fetch.
    pub fn redo(&mut self, key: &TopicPartition) {
        self.truncated_at.remove(key);
    }
}

/// The most bytes one partition asks for: a replica this broker is catching up on (`throttled`)
/// asks for at most what the inbound throttle allows now, and at least one byte (the leader then
/// still sends a whole first batch, so a large batch cannot stall the move).
pub fn partition_max_bytes(throttled: bool, allowance: Option<usize>) -> i32 {
    match allowance {
        Some(a) if throttled => i32::try_from(a).unwrap_or(i32::MAX).clamp(1, FETCH_PARTITION_BYTES_MAX),
        _ => FETCH_PARTITION_BYTES_MAX,
    }
}

/// What a partition's answer in a replica fetch leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnAnswer {
    /// No error: append what the leader sent and learn its high watermark.
    Append,
    /// Everything this replica holds is below the leader's log start: start the log over at that
    /// offset (Kafka's truncate-fully-and-start-at).
    RestartAt(i64),
    /// The fetch offset is out of range above the leader's log start: the logs diverged (an unclean
    /// history, or a leader that lost data); truncate again before fetching.
    Truncate,
    /// Refused for now (FENCED_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER, UNKNOWN_LEADER_EPOCH…): one side
    /// has not applied the latest leadership yet. Ask again; a new epoch in the assignment forces a
    /// truncation first.
    Wait,
}

/// Decides on one partition's answer: its error code, this replica's log end, the leader's log start.
pub fn on_answer(error_code: i16, log_end: i64, leader_log_start: i64) -> OnAnswer {
    match ResponseError::try_from_code(error_code) {
        None => OnAnswer::Append,
        Some(ResponseError::OffsetOutOfRange) if log_end < leader_log_start => OnAnswer::RestartAt(leader_log_start),
        Some(ResponseError::OffsetOutOfRange) => OnAnswer::Truncate,
        Some(_) => OnAnswer::Wait,
    }
}

/// Why a partition's replicated write did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaWriteError {
    /// The append was refused (stale role, gap) or failed on storage.
    #[error(transparent)]
    Append(PartitionError),
    /// The data is in the log but not known durable; the next fetch asks from the durable end again.
    #[error(transparent)]
    Sync(PartitionError),
}

/// What a partition's replicated write (append, then fsync) leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterWrite {
    /// Stored (or nothing to store): learn the leader's high watermark.
    Stored,
    /// Storage failed (a full disk); nothing of the batch was stored. Learn the high watermark, pause
    /// before the next fetch (it asks for the same offset; the truncation point still holds).
    PauseAndRetry,
    /// The append was refused (a stale fetcher whose role changed, or a gap): truncate again before
    /// the next fetch; the high watermark is not learned.
    Truncate,
    /// Appended, not known durable: learn the high watermark (capped at the durable end anyway); the
    /// next fetch offset follows the durable end.
    NotDurable,
}

impl AfterWrite {
    pub fn learns_high_watermark(self) -> bool {
        self != AfterWrite::Truncate
    }
}

/// Decides on the outcome of one partition's replicated write.
pub fn after_write(result: &Result<(), ReplicaWriteError>) -> AfterWrite {
    match result {
        Ok(()) => AfterWrite::Stored,
        Err(ReplicaWriteError::Append(e)) if e.kafka_error() == ResponseError::KafkaStorageError => AfterWrite::PauseAndRetry,
        Err(ReplicaWriteError::Append(_)) => AfterWrite::Truncate,
        Err(ReplicaWriteError::Sync(_)) => AfterWrite::NotDurable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::epoch_cache::{truncation_offset, EpochCache};
    use crate::replication::fetcher::TRUNCATION_ROUNDS_MAX;

    fn key(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    const fn epoch(e: i32) -> LeaderEpoch {
        LeaderEpoch(e)
    }

    #[test]
    fn a_partition_is_truncated_once_per_leader_epoch_and_again_when_told() {
        let mut marks = TruncationMarks::default();
        let mut assignment = BTreeMap::from([(key("a", 0), epoch(3)), (key("a", 1), epoch(3))]);
        assert!(marks.needed(&key("a", 0), epoch(3)), "never truncated");
        marks.done(key("a", 0), epoch(3));
        marks.done(key("a", 1), epoch(3));
        marks.keep_assigned(&assignment);
        assert!(!marks.needed(&key("a", 0), epoch(3)));
        // A new leader epoch: truncate first.
        assignment.insert(key("a", 0), epoch(4));
        marks.keep_assigned(&assignment);
        assert!(marks.needed(&key("a", 0), epoch(4)));
        assert!(!marks.needed(&key("a", 1), epoch(3)));
        // Leaving the assignment and coming back at the same epoch: truncate first too.
        assignment.remove(&key("a", 1));
        marks.keep_assigned(&assignment);
        assignment.insert(key("a", 1), epoch(3));
        assert!(marks.needed(&key("a", 1), epoch(3)));
        // A divergence found while fetching.
        marks.done(key("a", 0), epoch(4));
        marks.redo(&key("a", 0));
        assert!(marks.needed(&key("a", 0), epoch(4)));
    }

    #[test]
    fn only_throttled_partitions_are_capped_and_never_below_one_byte() {
        assert_eq!(partition_max_bytes(false, Some(10)), FETCH_PARTITION_BYTES_MAX);
        assert_eq!(partition_max_bytes(true, None), FETCH_PARTITION_BYTES_MAX);
        assert_eq!(partition_max_bytes(true, Some(10)), 10);
        assert_eq!(partition_max_bytes(true, Some(0)), 1);
        assert_eq!(partition_max_bytes(true, Some(usize::MAX)), FETCH_PARTITION_BYTES_MAX);
    }

    #[test]
    fn answers_lead_to_append_restart_truncate_or_wait() {
        let code = |e: ResponseError| e.code();
        assert_eq!(on_answer(0, 50, 0), OnAnswer::Append);
        // Out of range with everything here below the leader's log start: start over there.
        assert_eq!(on_answer(code(ResponseError::OffsetOutOfRange), 50, 80), OnAnswer::RestartAt(80));
        // Out of range otherwise: the logs diverged above the leader's log start.
        assert_eq!(on_answer(code(ResponseError::OffsetOutOfRange), 80, 80), OnAnswer::Truncate);
        assert_eq!(on_answer(code(ResponseError::OffsetOutOfRange), 120, 80), OnAnswer::Truncate);
        for refused in [
            ResponseError::FencedLeaderEpoch,
            ResponseError::UnknownLeaderEpoch,
            ResponseError::NotLeaderOrFollower,
            ResponseError::UnknownTopicOrPartition,
        ] {
            assert_eq!(on_answer(code(refused), 50, 80), OnAnswer::Wait, "{refused:?}");
        }
    }

    #[test]
    fn failed_writes_pause_truncate_or_go_on() {
        assert_eq!(after_write(&Ok(())), AfterWrite::Stored);
        let storage = ReplicaWriteError::Append(PartitionError::SyncTask("disk full".into()));
        assert_eq!(after_write(&Err(storage)), AfterWrite::PauseAndRetry);
        let stale = ReplicaWriteError::Append(PartitionError::StaleFetcher { leader: crate::ids::BrokerId(2), leader_epoch: LeaderEpoch(3) });
        assert_eq!(after_write(&Err(stale)), AfterWrite::Truncate);
        let gap = ReplicaWriteError::Append(PartitionError::NotContiguous { expected: 10, got: 12 });
        assert_eq!(after_write(&Err(gap)), AfterWrite::Truncate);
        let sync = ReplicaWriteError::Sync(PartitionError::SyncTask("eio".into()));
        assert_eq!(after_write(&Err(sync)), AfterWrite::NotDurable);
        let learns: Vec<bool> = [AfterWrite::Stored, AfterWrite::PauseAndRetry, AfterWrite::Truncate, AfterWrite::NotDurable]
            .into_iter()
            .map(AfterWrite::learns_high_watermark)
            .collect();
        assert_eq!(learns, vec![true, true, false, true]);
    }

    /// A log as the epoch of each offset.
    fn cache_of(log: &[i32]) -> EpochCache {
        let mut c = EpochCache::default();
        for (offset, epoch) in log.iter().enumerate() {
            c.assign(*epoch, offset as i64);
        }
        c
    }

    /// Runs the fetcher's truncation rounds (ask the leader where our latest epoch ends, cut, repeat
    /// until an answer agrees) against a leader log; returns the follower's end and the rounds taken.
    fn truncate_against(follower: &[i32], leader: &[i32], leader_epoch: i32, high_watermark: i64) -> (i64, usize) {
        let mut leader_cache = cache_of(leader);
        // A leader records its epoch when it takes over, writes or not.
        leader_cache.assign(leader_epoch, leader.len() as i64);
        let (mut cache, mut end) = (cache_of(follower), follower.len() as i64);
        for round in 1..=TRUNCATION_ROUNDS_MAX {
            let Some(latest) = cache.latest_epoch() else { return (end, round) };
            let (epoch, leader_end) = leader_cache.end_offset_for(latest, leader.len() as i64);
            let t = truncation_offset(&cache, end, high_watermark, epoch, leader_end);
            end = end.min(t.offset);
            cache.truncate_from_end(end);
            if t.done {
                return (end, round);
            }
        }
        panic!("no agreement within {TRUNCATION_ROUNDS_MAX} rounds");
    }

    #[test]
    fn a_diverged_follower_is_cut_exactly_where_the_logs_part() {
        // Random histories: a shared prefix, then each side wrote its own later epochs (an epoch has
        // one leader, so the two sides never share an epoch after the prefix), the leader took over
        // at a newer epoch still. The follower must end exactly at the end of the shared prefix.
        let mut rounds_max = 0;
        for seed in 0..2_000u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut prefix = Vec::new();
            let mut epoch = 0;
            for _ in 0..rng.usize(0..4) {
                epoch += rng.i32(1..3);
                prefix.extend(std::iter::repeat_n(epoch, rng.usize(1..5)));
            }
            let (mut follower, mut leader) = (prefix.clone(), prefix.clone());
            for _ in 0..rng.usize(0..6) {
                epoch += rng.i32(1..3);
                let side = if rng.bool() { &mut follower } else { &mut leader };
                side.extend(std::iter::repeat_n(epoch, rng.usize(0..5)));
            }
            let high_watermark = rng.i64(0..=prefix.len() as i64);
            let (end, rounds) = truncate_against(&follower, &leader, epoch + 1, high_watermark);
            let cut = end as usize;
            assert_eq!(cut, prefix.len(), "seed {seed}: follower {follower:?} leader {leader:?} ({rounds} rounds)");
            rounds_max = rounds_max.max(rounds);
        }
        assert!(rounds_max >= 3, "the histories should include ones that take several rounds: {rounds_max}");
    }
}
