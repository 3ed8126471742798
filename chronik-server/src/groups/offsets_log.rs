//! The group coordinator's log for one offsets partition this broker leads, on the leader write path
//! of `partition::leader_write` with acks=all: appends go into the local partition at the leader
//! epoch the partition was loaded at (an append after leadership moved is refused, so a deposed
//! coordinator can never commit), and a commit is answered once it is fsynced here and below the
//! high watermark, i.e. stored by every in-sync replica — exactly as a produce with acks=all,
//! bounded by `offsets_commit_timeout_ms`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chronik_group::offsets::log::{replay_chunks, ReplayError};
use chronik_group::{CommitWait, GroupError, LogFailure, OffsetsLog};
use chronik_wal::split_batches;

use crate::partition::{Acks, AppendResult, LeaderWrite, MinInsyncReplicas, Partition, PartitionError};

/// Bytes read per step while a new leader replays an offsets partition.
const REPLAY_CHUNK_BYTES: usize = 4 << 20;

pub struct PartitionOffsetsLog {
    pub partition: Arc<Partition>,
    /// The epoch this broker leads the partition at; appends at any other epoch are refused.
    pub leader_epoch: i32,
    /// `min.insync.replicas` of the offsets topic: fewer in-sync replicas refuse the commit.
    pub min_isr: MinInsyncReplicas,
    pub replica_lag_time_max_ms: i64,
    pub commit_timeout: Duration,
}

fn failure(e: PartitionError) -> LogFailure {
    match e {
        PartitionError::NotLeader | PartitionError::FencedLeaderEpoch { .. } | PartitionError::Deleted => LogFailure::NotLeader,
        PartitionError::NotEnoughReplicas { .. } | PartitionError::NotEnoughReplicasAfterAppend { .. } => {
            LogFailure::NotEnoughReplicas(e.to_string())
        }
        PartitionError::TimedOut { waited_ms } => LogFailure::TimedOut { timeout_ms: waited_ms },
        other => LogFailure::Storage(Box::new(other)),
    }
}

impl OffsetsLog for PartitionOffsetsLog {
    fn append(&self, batch: &mut [u8]) -> Result<i64, LogFailure> {
        let batches = split_batches(batch).map_err(|e| LogFailure::Storage(Box::new(e)))?;
        let write = self
            .partition
            .append_as_leader(&batches, self.leader_epoch, Acks::All(self.min_isr), chronik_wal::now_ms(), self.replica_lag_time_max_ms)
            .map_err(failure)?;
        match write.results.last() {
            Some(AppendResult::Appended { .. }) => Ok(write.end_offset),
            // Offsets batches carry no producer id, so they are never duplicates.
            _ => Err(LogFailure::Storage("offsets batch was not appended".into())),
        }
    }

    fn committed(&self, end_offset: i64) -> CommitWait {
        let partition = self.partition.clone();
        let write = LeaderWrite { results: Vec::new(), end_offset, leader_epoch: self.leader_epoch, acks: Acks::All(self.min_isr) };
        let timeout = self.commit_timeout;
        Box::pin(async move { partition.commit(&write, tokio::time::Instant::now() + timeout).await.map(|_| ()).map_err(failure) })
    }

    fn replay(&self, visit: &mut dyn FnMut(Bytes) -> Result<(), GroupError>) -> Result<(), ReplayError> {
        let p = &self.partition;
        // The whole log, past the high watermark too: as leader, this log is the one the followers
        // will converge to, so its tail is what the group's offsets will be.
        let read = |offset| {
            p.read_to_log_end(offset, REPLAY_CHUNK_BYTES).map(|r| r.records).map_err(|e| Box::new(e) as chronik_group::offsets::log::LogError)
        };
        replay_chunks(p.log_start_offset(), p.log_end_offset(), read, visit)
    }
}
