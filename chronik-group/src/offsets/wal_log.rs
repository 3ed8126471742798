//! A standalone coordinator's offsets logs on `chronik-wal`: one `PartitionLog` per offsets
//! partition, under `<dir>/<index>/`, fsynced through its group-commit `Flusher`. (A broker keeps
//! its offsets in the replicated internal topic instead; this binding serves the crate's own tests
//! and tools that run a coordinator without a cluster.)

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use chronik_wal::{LogConfig, PartitionLog};
use parking_lot::Mutex;

use super::log::{replay_chunks, CommitWait, LogFailure, OffsetsLog, ReplayError};
use crate::GroupError;

/// Offsets logs are the only copy of committed offsets: they must never expire by age or size
/// (there is no compaction yet, see the crate docs).
fn offsets_log_config() -> LogConfig {
    LogConfig { retention_ms: None, retention_bytes: None, ..LogConfig::default() }
}

/// Leader epoch stamped on offsets batches: a single process owns its offsets logs.
const OFFSETS_LEADER_EPOCH: i32 = 0;
/// Bytes read per step while replaying at open.
const REPLAY_CHUNK_BYTES: usize = 4 << 20;

struct WalLog {
    log: Mutex<PartitionLog>,
    flusher: Arc<chronik_wal::Flusher>,
}

/// Opens (creating) the log of offsets partition `index` under `dir`.
pub fn open(dir: &Path, index: u32) -> Result<Arc<dyn OffsetsLog>, GroupError> {
    let log = PartitionLog::open(&dir.join(index.to_string()), offsets_log_config())
        .map_err(|source| GroupError::Log { partition: index, verb: "open", source: LogFailure::Storage(Box::new(source)) })?;
    let flusher = log.flusher();
    Ok(Arc::new(WalLog { log: Mutex::new(log), flusher }))
}

impl OffsetsLog for WalLog {
    fn append(&self, batch: &mut [u8]) -> Result<i64, LogFailure> {
        let info = self.log.lock().append(batch, OFFSETS_LEADER_EPOCH).map_err(|e| LogFailure::Storage(Box::new(e)))?;
        Ok(info.last_offset + 1)
    }

    fn committed(&self, end_offset: i64) -> CommitWait {
        let flusher = self.flusher.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || flusher.sync_through(end_offset))
                .await
                .map_err(|e| LogFailure::Storage(Box::new(e)))?
                .map_err(|e| LogFailure::Storage(Box::new(e)))
        })
    }

    fn replay(&self, visit: &mut dyn FnMut(Bytes) -> Result<(), GroupError>) -> Result<(), ReplayError> {
        let log = self.log.lock();
        let read = |offset| Ok(log.read(offset, REPLAY_CHUNK_BYTES, i64::MAX)?.records);
        replay_chunks(log.log_start_offset(), log.log_end_offset(), read, visit)
    }
}
