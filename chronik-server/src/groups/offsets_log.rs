//! The group coordinator's log for one offsets partition this broker leads: appends go into the
//! local partition at the leader epoch the partition was loaded at (an append after leadership
//! moved is refused, so a deposed coordinator can never commit), and a commit is answered once
//! it is fsynced here and below the high watermark, i.e. stored by every in-sync replica — the
//! same rule as a produce with acks=all, bounded by `offsets_commit_timeout_ms`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chronik_group::offsets::log::{replay_chunks, ReplayError};
use chronik_group::{CommitWait, GroupError, LogFailure, OffsetsLog};
use chronik_wal::split_batches;

use crate::partition::{AppendResult, Partition, PartitionError};

/// Bytes read per step while a new leader replays an offsets partition.
const REPLAY_CHUNK_BYTES: usize = 4 << 20;

pub struct PartitionOffsetsLog {
    pub partition: Arc<Partition>,
    /// The epoch this broker leads the partition at; appends at any other epoch are refused.
    pub leader_epoch: i32,
    /// `min.insync.replicas` of the offsets topic: fewer in-sync replicas refuse the commit.
    pub min_isr: usize,
    pub replica_lag_time_max_ms: i64,
    pub commit_timeout: Duration,
}

fn failure(e: PartitionError) -> LogFailure {
    match e {
        PartitionError::NotLeader | PartitionError::FencedLeaderEpoch { .. } | PartitionError::Deleted => LogFailure::NotLeader,
        PartitionError::NotEnoughReplicasAfterAppend { .. } => LogFailure::NotEnoughReplicas(e.to_string()),
        other => LogFailure::Storage(Box::new(other)),
    }
}

impl OffsetsLog for PartitionOffsetsLog {
    fn append(&self, batch: &mut [u8]) -> Result<i64, LogFailure> {
        let p = &self.partition;
        if p.leading_epoch() != Some(self.leader_epoch) {
            return Err(LogFailure::NotLeader);
        }
        let in_sync = p.in_sync_count(crate::server::now_ms(), self.replica_lag_time_max_ms).unwrap_or(0);
        if in_sync < self.min_isr {
            return Err(LogFailure::NotEnoughReplicas(format!("{in_sync} in sync, min.insync.replicas {}", self.min_isr)));
        }
        let views = split_batches(batch).map_err(|e| LogFailure::Storage(Box::new(e)))?;
        let appended = p.append(&views, self.leader_epoch).map_err(failure)?;
        match appended.last() {
            Some(AppendResult::Appended { last_offset, .. }) => Ok(last_offset + 1),
            // Offsets batches carry no producer id, so they are never duplicates.
            _ => Err(LogFailure::Storage("offsets batch was not appended".into())),
        }
    }

    fn committed(&self, end_offset: i64) -> CommitWait {
        let partition = self.partition.clone();
        let (epoch, min_isr, timeout) = (self.leader_epoch, self.min_isr, self.commit_timeout);
        Box::pin(async move {
            let committed = async {
                partition.make_durable(end_offset).await?;
                partition.wait_replicated(end_offset, epoch, min_isr).await
            };
            match tokio::time::timeout(timeout, committed).await {
                Ok(result) => result.map_err(failure),
                Err(_) => Err(LogFailure::TimedOut { timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX) }),
            }
        })
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
