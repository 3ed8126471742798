//! One partition replica on this broker: its log, the high watermark consumers read below, and the
//! idempotent-producer state. Appends and the producer-state check happen under one lock so a retried
//! batch can never be appended twice; the fsync that makes an append durable happens outside the lock and
//! is shared by concurrent appends (group commit in `chronik_wal::Flusher`).
//!
//! The high-watermark rules are in `high_watermark.rs`, the role in `role.rs`, the replication side
//! (role changes, follower fetches served, follower appends, truncation) in `replica.rs` and the
//! leader write path in `leader_write.rs`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use chronik_wal::{BatchView, Flusher, LogConfig, PartitionLog, ReadResult, WalError};
use parking_lot::Mutex;
use tokio::sync::watch;
use tracing::warn;

use super::disk_floor::DiskFloor;
use super::epoch_cache::EpochCache;
use super::error::PartitionError;
use super::role::Role;
use super::producer_state::{ProducerStates, SequenceCheck};
use super::storage_fault::halt_on_sync_failure;
use crate::config::FsyncMode;

/// The outcome of appending one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendResult {
    Appended { base_offset: i64, last_offset: i64 },
    /// A retry of a batch already in the log; nothing was appended.
    Duplicate { base_offset: i64 },
}

pub(super) struct Inner {
    /// `None` once the partition was deleted; later calls answer UNKNOWN_TOPIC_OR_PARTITION.
    pub(super) log: Option<PartitionLog>,
    pub(super) producers: ProducerStates,
    /// Leader epoch → first offset, for OffsetForLeaderEpoch and follower truncation.
    pub(super) epochs: EpochCache,
}

pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub topic_id: [u8; 16],
    /// This broker: the leader's own entry in the ISR.
    pub(super) node_id: i32,
    /// Leader or follower, and (as leader) what is known of the followers. Lock order: `role`, then
    /// `inner`.
    pub(super) role: Mutex<Role>,
    pub(super) inner: Mutex<Inner>,
    pub(super) flusher: Arc<Flusher>,
    pub(super) fsync: FsyncMode,
    pub(super) high_watermark: AtomicI64,
    pub(super) log_start_offset: AtomicI64,
    pub(super) log_end_offset: AtomicI64,
    /// Bumped whenever a high watermark advances, waking long-polling fetches and acks=all producers.
    pub(super) data_changed: watch::Sender<u64>,
    /// Bumped on every append, waking followers' long-polling fetches (they read past the HW).
    pub(super) appended: watch::Sender<u64>,
    /// This partition's own signal, sent when its high watermark advances or its role changes: what
    /// an acks=all write waits on ([`Partition::commit`]).
    pub(super) leader_changed: watch::Sender<()>,
    /// The last append failed for want of space: logged once when it starts and once when an
    /// append succeeds again, not per refused request.
    pub(super) out_of_space: AtomicBool,
    /// The data directory's free-space floor, shared by every partition of this broker.
    pub(super) floor: Arc<DiskFloor>,
}

impl Partition {
    /// Opens (or creates) the log under `dir`, rebuilds producer state and the leader-epoch cache from
    /// its batch headers and makes whatever recovery found durable. The high watermark starts at the log
    /// start: the role the metadata gives the replica decides how far is committed.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        dir: &Path,
        topic: &str,
        index: i32,
        topic_id: [u8; 16],
        node_id: i32,
        log_config: LogConfig,
        fsync: FsyncMode,
        data_changed: watch::Sender<u64>,
        appended: watch::Sender<u64>,
        floor: Arc<DiskFloor>,
    ) -> Result<Partition, PartitionError> {
        let wal = |e| PartitionError::wal(topic, index, e);
        let log = PartitionLog::open(dir, log_config).map_err(wal)?;
        let mut producers = ProducerStates::default();
        let mut epochs = EpochCache::default();
        for h in log.batch_headers_from(log.log_start_offset()).map_err(wal)? {
            epochs.assign(h.partition_leader_epoch, h.base_offset);
            if h.is_idempotent() && h.base_sequence >= 0 {
                producers.record(h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence(), h.base_offset, h.last_offset);
            }
        }
        let flusher = log.flusher();
        let end = log.log_end_offset();
        flusher.sync_through(end).map_err(wal)?;
        Ok(Partition {
            topic: topic.to_string(),
            index,
            topic_id,
            node_id,
            role: Mutex::new(Role::initial(node_id)),
            // Nothing is known to be committed until the metadata makes this replica leader (the HW
            // is then computed from the ISR) or a leader reports its HW: a replica restarted with an
            // uncommitted tail must not serve it as committed.
            high_watermark: AtomicI64::new(log.log_start_offset()),
            log_start_offset: AtomicI64::new(log.log_start_offset()),
            log_end_offset: AtomicI64::new(end),
            inner: Mutex::new(Inner { log: Some(log), producers, epochs }),
            flusher,
            fsync,
            data_changed,
            appended,
            leader_changed: watch::channel(()).0,
            out_of_space: AtomicBool::new(false),
            floor,
        })
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }


    /// Appends the batches of one produce record set, in order. The views point into the request's
    /// buffer, left as it is: the log writes each batch with its base offset and leader epoch stamped.
    /// Does not wait for durability.
    ///
    /// A batch the log cannot take (a full disk) fails the call with nothing of that batch stored
    /// (`chronik_wal` rolls it back); batches before it in the same record set stay appended, as
    /// unacknowledged data a retry may repeat (an idempotent producer's retry is answered as a
    /// duplicate), and the published log end covers exactly them.
    pub fn append(&self, batches: &[BatchView<'_>], leader_epoch: i32) -> Result<Vec<AppendResult>, PartitionError> {
        self.admit(batches.iter().map(BatchView::len).sum())?;
        let mut inner = self.inner.lock();
        let Inner { log, producers, epochs } = &mut *inner;
        let log = log.as_mut().ok_or(PartitionError::Deleted)?;
        let mut out = Vec::with_capacity(batches.len());
        let mut failure = None;
        for view in batches {
            let v = view.header();
            if v.is_transactional() || v.is_control() {
                failure = Some(PartitionError::Transactional);
                break;
            }
            if v.is_idempotent() {
                match producers.check(v.producer_id, v.producer_epoch, v.base_sequence, v.last_sequence()) {
                    SequenceCheck::Accept => {}
                    SequenceCheck::Duplicate { base_offset } => {
                        out.push(AppendResult::Duplicate { base_offset });
                        continue;
                    }
                    SequenceCheck::OutOfOrder { expected } => {
                        failure = Some(PartitionError::OutOfOrderSequence { expected });
                        break;
                    }
                    SequenceCheck::StaleEpoch { current } => {
                        failure = Some(PartitionError::InvalidProducerEpoch { got: v.producer_epoch, current });
                        break;
                    }
                }
            }
            let info = match log.append_view(view, leader_epoch) {
                Ok(info) => info,
                Err(e) => {
                    failure = Some(self.wal_error(e));
                    break;
                }
            };
            epochs.assign(leader_epoch, info.base_offset);
            if v.is_idempotent() {
                producers.record(v.producer_id, v.producer_epoch, v.base_sequence, v.last_sequence(), info.base_offset, info.last_offset);
            }
            out.push(AppendResult::Appended { base_offset: info.base_offset, last_offset: info.last_offset });
            self.note_append_succeeded();
        }
        // Published even when a batch failed: the batches before it are in the log.
        self.log_end_offset.store(log.log_end_offset(), Ordering::Release);
        drop(inner);
        self.appended.send_modify(|v| *v = v.wrapping_add(1));
        if self.fsync != FsyncMode::Always {
            self.update_high_watermark();
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Admits an append of `bytes` against the data directory's free-space floor (see `disk_floor`);
    /// a refusal starts a spell without space like a failed write does.
    pub(super) fn admit(&self, bytes: usize) -> Result<(), PartitionError> {
        let refused = self.floor.admit(u64::try_from(bytes).unwrap_or(u64::MAX)).err();
        let Some(below) = refused else { return Ok(()) };
        if !self.out_of_space.swap(true, Ordering::AcqRel) {
            warn!(topic = %self.topic, partition = self.index, free = below.free, floor = below.floor,
                "partition log is out of space: the data directory is below its free-space floor; appends are refused (KAFKA_STORAGE_ERROR) until space returns; stored data stays readable");
        }
        Err(PartitionError::BelowDiskFloor { free: below.free, floor: below.floor })
    }

    /// The partition error for a log error; halts the broker first when it is a failed fdatasync
    /// (`storage_fault`), and logs the start of a spell without space.
    pub(super) fn wal_error(&self, e: WalError) -> PartitionError {
        halt_on_sync_failure(&self.topic, self.index, &e);
        if e.is_out_of_space() && !self.out_of_space.swap(true, Ordering::AcqRel) {
            warn!(topic = %self.topic, partition = self.index, error = %e,
                "partition log is out of space: appends are refused (KAFKA_STORAGE_ERROR) until space returns; stored data stays readable");
        }
        PartitionError::wal(&self.topic, self.index, e)
    }

    /// An append went through: ends a spell without space, if one was logged.
    pub(super) fn note_append_succeeded(&self) {
        if self.out_of_space.swap(false, Ordering::AcqRel) {
            tracing::info!(topic = %self.topic, partition = self.index, "partition log has space again: appends resumed");
        }
    }

    /// fsync whatever was appended (the `interval` fsync task).
    pub fn sync_now(&self) -> Result<(), PartitionError> {
        self.flusher.sync_through(self.log_end_offset()).map_err(|e| self.wal_error(e))
    }

    /// Records how far the log is durable as its recovery point (clean shutdown, after `sync_now`), so
    /// the next start reads none of it again.
    pub fn write_recovery_point(&self) -> Result<(), PartitionError> {
        self.flusher.write_recovery_point().map_err(|e| PartitionError::wal(&self.topic, self.index, e))
    }

    /// Whole batches from `offset`, below the high watermark (zero-copy slices of the mapped log).
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, PartitionError> {
        let hw = self.high_watermark();
        let inner = self.inner.lock();
        let log = inner.log.as_ref().ok_or(PartitionError::Deleted)?;
        if offset > hw && offset <= log.log_end_offset() {
            // Past the high watermark but inside the log: nothing visible yet, not out of range.
            return Ok(ReadResult { records: bytes::Bytes::new(), log_start_offset: log.log_start_offset(), log_end_offset: log.log_end_offset() });
        }
        log.read(offset, max_bytes, hw).map_err(|e| PartitionError::wal(&self.topic, self.index, e))
    }

    /// Whole batches from `offset` up to the log end, past the high watermark (a new leader of an
    /// offsets partition replays its whole log).
    pub fn read_to_log_end(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, PartitionError> {
        let inner = self.inner.lock();
        let log = inner.log.as_ref().ok_or(PartitionError::Deleted)?;
        log.read(offset, max_bytes, log.log_end_offset()).map_err(|e| PartitionError::wal(&self.topic, self.index, e))
    }

    /// ListOffsets by timestamp: the first record (below the high watermark) whose timestamp is at least
    /// `ts`, with its timestamp. The time index finds the batch; the batch is decoded to find the record.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, PartitionError> {
        let hw = self.high_watermark();
        let inner = self.inner.lock();
        let log = inner.log.as_ref().ok_or(PartitionError::Deleted)?;
        let wal = |e| PartitionError::wal(&self.topic, self.index, e);
        let Some((batch_offset, batch_ts)) = log.offset_for_timestamp(ts).map_err(wal)? else { return Ok(None) };
        if batch_offset >= hw {
            return Ok(None);
        }
        let batch = log.read(batch_offset, 1, hw).map_err(wal)?.records;
        Ok(Some(record_where(&batch, |t| t >= ts).unwrap_or((batch_offset, batch_ts))))
    }

    /// ListOffsets MAX_TIMESTAMP: the first record holding the largest timestamp below the high watermark.
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, PartitionError> {
        let hw = self.high_watermark();
        let inner = self.inner.lock();
        let log = inner.log.as_ref().ok_or(PartitionError::Deleted)?;
        let wal = |e| PartitionError::wal(&self.topic, self.index, e);
        let headers = log.batch_headers_from(log.log_start_offset()).map_err(wal)?;
        let Some(best) = headers
            .iter()
            .filter(|h| h.last_offset < hw)
            .max_by_key(|h| (h.max_timestamp, std::cmp::Reverse(h.base_offset)))
        else {
            return Ok(None);
        };
        let batch = log.read(best.base_offset, 1, hw).map_err(wal)?.records;
        let max_ts = best.max_timestamp;
        Ok(Some(record_where(&batch, |t| t == max_ts).unwrap_or((best.last_offset, max_ts))))
    }

    pub fn size_bytes(&self) -> u64 {
        self.inner.lock().log.as_ref().map(|l| l.size_bytes()).unwrap_or(0)
    }

    /// Bytes of the log below `offset` (see `PartitionLog::bytes_below`); 0 when the log is gone.
    pub fn bytes_below(&self, offset: i64) -> Result<u64, PartitionError> {
        let inner = self.inner.lock();
        let Some(log) = inner.log.as_ref() else { return Ok(0) };
        log.bytes_below(offset).map_err(|e| PartitionError::wal(&self.topic, self.index, e))
    }

    /// Deletes segments past retention.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, PartitionError> {
        let mut inner = self.inner.lock();
        let Some(log) = inner.log.as_mut() else { return Ok(0) };
        let deleted = log.apply_retention(now_ms).map_err(|e| PartitionError::wal(&self.topic, self.index, e))?;
        self.log_start_offset.store(log.log_start_offset(), Ordering::Release);
        Ok(deleted)
    }

    /// Removes the log from disk; the partition answers UNKNOWN_TOPIC_OR_PARTITION from now on.
    pub fn delete(&self) {
        let log = self.inner.lock().log.take();
        if let Some(log) = log {
            let dir = log.dir().to_path_buf();
            if let Err(e) = log.delete() {
                warn!(topic = %self.topic, partition = self.index, dir = %dir.display(), error = %e, "deleting partition log failed");
            }
        }
    }
}

/// Offset and timestamp of the first record of the first batch in `bytes` whose timestamp satisfies
/// `pred`. Decodes (and decompresses) that one batch; `None` if it does not decode.
fn record_where(bytes: &bytes::Bytes, pred: impl Fn(i64) -> bool) -> Option<(i64, i64)> {
    let mut buf = bytes.clone();
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).ok()?;
    set.records.iter().find(|r| pred(r.timestamp)).map(|r| (r.offset, r.timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::test_batch::batch;
    use chronik_wal::split_batches;

    fn leader(dir: &Path, fsync: FsyncMode) -> Arc<Partition> {
        let (data_changed, _) = watch::channel(0);
        let (appended, _) = watch::channel(0);
        let p = Partition::open(dir, "t", 0, [0; 16], 1, LogConfig::default(), fsync, data_changed, appended, Arc::new(DiskFloor::none())).expect("open");
        p.become_leader(0, vec![1], vec![1], 0);
        Arc::new(p)
    }

    /// The durability contract: with `fsync = "always"` a consumer never sees a record a crash could
    /// take back, because the high watermark only passes what the group commit has synced.
    #[tokio::test]
    async fn an_append_is_visible_only_once_fsynced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = leader(dir.path(), FsyncMode::Always);
        let b = batch(3, -1, 0, -1);
        p.append(&split_batches(&b).expect("split"), 0).expect("append");
        assert_eq!(p.log_end_offset(), 3);
        assert_eq!(p.high_watermark(), 0, "the high watermark passed data not yet fsynced");
        assert!(p.read(0, 1 << 20).expect("read").records.is_empty(), "a fetch returned data not yet fsynced");
        p.make_durable(3).await.expect("fsync");
        assert_eq!(p.high_watermark(), 3);
        assert_eq!(p.read(0, 1 << 20).expect("read").records.len(), b.len());
    }
}
