//! The offsets logs on `chronik-wal`: one `PartitionLog` per offsets partition, under
//! `<dir>/<index>/`, fsynced through its group-commit `Flusher`.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use chronik_wal::{LogConfig, PartitionLog};

use super::log::{LogError, OffsetsLog, ReplayError, Syncer};
use crate::GroupError;

/// Offsets logs are the only copy of committed offsets: they must never expire by age or size
/// (there is no compaction yet, see the crate docs).
fn offsets_log_config() -> LogConfig {
    LogConfig { retention_ms: None, retention_bytes: None, ..LogConfig::default() }
}

/// Leader epoch stamped on offsets batches: a single broker owns its offsets logs.
const OFFSETS_LEADER_EPOCH: i32 = 0;
/// Bytes read per step while replaying at open.
const REPLAY_CHUNK_BYTES: usize = 4 << 20;
/// Position of lastOffsetDelta in a v2 batch header, and of the batch length.
const LAST_OFFSET_DELTA_AT: usize = 23;
const BATCH_LENGTH_AT: usize = 8;
/// baseOffset + batchLength precede the bytes the batch length counts.
const BATCH_PREFIX_BYTES: usize = 12;

struct WalLog {
    log: PartitionLog,
}

/// Opens (creating) the log of offsets partition `index` under `dir`.
pub fn open(dir: &Path, index: u32) -> Result<Box<dyn OffsetsLog>, GroupError> {
    let log = PartitionLog::open(&dir.join(index.to_string()), offsets_log_config())
        .map_err(|source| GroupError::Log { partition: index, verb: "open", source: Box::new(source) })?;
    Ok(Box::new(WalLog { log }))
}

impl OffsetsLog for WalLog {
    fn append(&mut self, batch: &mut [u8]) -> Result<i64, LogError> {
        let info = self.log.append(batch, OFFSETS_LEADER_EPOCH)?;
        Ok(info.last_offset + 1)
    }

    fn syncer(&self) -> Syncer {
        let flusher = self.log.flusher();
        Arc::new(move |end_offset| Ok(flusher.sync_through(end_offset)?))
    }

    fn replay(&self, visit: &mut dyn FnMut(Bytes) -> Result<(), GroupError>) -> Result<(), ReplayError> {
        let mut offset = self.log.log_start_offset();
        let end = self.log.log_end_offset();
        while offset < end {
            let chunk = self.log.read(offset, REPLAY_CHUNK_BYTES, i64::MAX).map_err(|e| ReplayError::Log(Box::new(e)))?;
            let Some(next) = offset_after(&chunk.records) else {
                return Err(ReplayError::Log(format!("no whole batch at offset {offset} below log end {end}").into()));
            };
            visit(chunk.records).map_err(ReplayError::Visit)?;
            offset = next;
        }
        Ok(())
    }
}

/// The offset after the last whole batch in `records` (read returns whole batches only).
fn offset_after(records: &[u8]) -> Option<i64> {
    let mut position = 0usize;
    let mut next = None;
    while records.len() >= position + LAST_OFFSET_DELTA_AT + 4 {
        let at = |i: usize| records[position + i];
        let base = i64::from_be_bytes([at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7)]);
        let length = i32::from_be_bytes([
            at(BATCH_LENGTH_AT),
            at(BATCH_LENGTH_AT + 1),
            at(BATCH_LENGTH_AT + 2),
            at(BATCH_LENGTH_AT + 3),
        ]);
        let delta = i32::from_be_bytes([
            at(LAST_OFFSET_DELTA_AT),
            at(LAST_OFFSET_DELTA_AT + 1),
            at(LAST_OFFSET_DELTA_AT + 2),
            at(LAST_OFFSET_DELTA_AT + 3),
        ]);
        let size = usize::try_from(length).ok()? + BATCH_PREFIX_BYTES;
        if position + size > records.len() {
            break;
        }
        next = Some(base + i64::from(delta) + 1);
        position += size;
    }
    next
}
