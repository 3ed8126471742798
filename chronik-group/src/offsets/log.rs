//! The narrow view of a log the offsets store needs, so the store is tested without disk and the
//! bindings live elsewhere: [`super::wal_log`] (a standalone coordinator's local `chronik-wal` logs)
//! and the server's binding to a replicated partition of the internal offsets topic.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

/// A failure of the underlying log, kept opaque so the store does not depend on one log crate.
pub type LogError = Box<dyn std::error::Error + Send + Sync>;

/// Why an append did not become committed. The variants are what decides the Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum LogFailure {
    /// This broker no longer leads the log (NOT_COORDINATOR: the client looks the coordinator up again).
    #[error("this broker no longer leads the offsets log")]
    NotLeader,
    /// Too few in-sync replicas to commit (COORDINATOR_NOT_AVAILABLE, retriable).
    #[error("not enough in-sync replicas: {0}")]
    NotEnoughReplicas(String),
    /// Appended, but not committed within the commit timeout (REQUEST_TIMED_OUT). The batch stays
    /// in the log and may still become committed.
    #[error("not committed within {timeout_ms} ms")]
    TimedOut { timeout_ms: u64 },
    /// The storage itself failed (COORDINATOR_NOT_AVAILABLE).
    #[error(transparent)]
    Storage(LogError),
}

/// A future resolving when an appended batch is committed.
pub type CommitWait = Pin<Box<dyn Future<Output = Result<(), LogFailure>> + Send>>;

/// The log behind one offsets partition, as long as this broker owns that partition.
pub trait OffsetsLog: Send + Sync {
    /// Appends one v2 record batch (the log stamps its base offset); returns the log end offset after
    /// it, i.e. what to pass to [`OffsetsLog::committed`]. Fast, non-blocking in practice (a write
    /// into the active segment), never waits for a disk flush.
    fn append(&self, batch: &mut [u8]) -> Result<i64, LogFailure>;
    /// Resolves once every batch before `end_offset` is committed: fsynced locally, and for a
    /// replicated log stored by every in-sync replica. Concurrent callers share the fsync.
    fn committed(&self, end_offset: i64) -> CommitWait;
    /// Hands every stored batch, oldest first, to `visit` (in chunks of whole batches). Blocking I/O.
    fn replay(&self, visit: &mut dyn FnMut(Bytes) -> Result<(), crate::GroupError>) -> Result<(), ReplayError>;
}

/// Replay stops on a log failure or on a failure of the visitor.
#[derive(Debug)]
pub enum ReplayError {
    Log(LogError),
    Visit(crate::GroupError),
}

/// Position of lastOffsetDelta in a v2 batch header, and of the batch length.
const LAST_OFFSET_DELTA_AT: usize = 23;
const BATCH_LENGTH_AT: usize = 8;
/// baseOffset + batchLength precede the bytes the batch length counts.
const BATCH_PREFIX_BYTES: usize = 12;

/// Replays `[start, end)` of a log whose `read(offset)` returns whole batches from `offset`: the
/// loop both bindings share.
pub fn replay_chunks(
    start: i64,
    end: i64,
    mut read: impl FnMut(i64) -> Result<Bytes, LogError>,
    visit: &mut dyn FnMut(Bytes) -> Result<(), crate::GroupError>,
) -> Result<(), ReplayError> {
    let mut offset = start;
    while offset < end {
        let chunk = read(offset).map_err(ReplayError::Log)?;
        let Some(next) = offset_after(&chunk) else {
            return Err(ReplayError::Log(format!("no whole batch at offset {offset} below log end {end}").into()));
        };
        visit(chunk).map_err(ReplayError::Visit)?;
        offset = next;
    }
    Ok(())
}

/// The offset after the last whole batch in `records`.
fn offset_after(records: &[u8]) -> Option<i64> {
    let mut position = 0usize;
    let mut next = None;
    while records.len() >= position + LAST_OFFSET_DELTA_AT + 4 {
        let field = |at: usize, n: usize| &records[position + at..position + at + n];
        let base = i64::from_be_bytes(field(0, 8).try_into().ok()?);
        let length = i32::from_be_bytes(field(BATCH_LENGTH_AT, 4).try_into().ok()?);
        let delta = i32::from_be_bytes(field(LAST_OFFSET_DELTA_AT, 4).try_into().ok()?);
        let size = usize::try_from(length).ok()? + BATCH_PREFIX_BYTES;
        if position + size > records.len() {
            break;
        }
        next = Some(base + i64::from(delta) + 1);
        position += size;
    }
    next
}

#[cfg(test)]
pub mod memory {
    //! An in-memory log whose contents survive "reopening" (they live in a shared buffer), with an
    //! fsync counter: for store tests that need no disk.

    use std::sync::Arc;

    use super::*;
    use parking_lot::Mutex;

    /// Batches appended so far; `durable` is how many of them were synced.
    #[derive(Default)]
    pub struct Shared {
        pub batches: Vec<Bytes>,
        pub durable: usize,
        pub syncs: usize,
        /// Set to make appends fail as on a broker that lost leadership.
        pub not_leader: bool,
    }

    pub struct MemoryLog {
        pub shared: Arc<Mutex<Shared>>,
    }

    impl OffsetsLog for MemoryLog {
        fn append(&self, batch: &mut [u8]) -> Result<i64, LogFailure> {
            let mut shared = self.shared.lock();
            if shared.not_leader {
                return Err(LogFailure::NotLeader);
            }
            let base = shared.batches.len() as i64;
            batch[..8].copy_from_slice(&base.to_be_bytes());
            shared.batches.push(Bytes::copy_from_slice(batch));
            Ok(base + 1)
        }

        fn committed(&self, end_offset: i64) -> CommitWait {
            let shared = self.shared.clone();
            Box::pin(async move {
                let mut shared = shared.lock();
                shared.durable = shared.durable.max(end_offset as usize);
                shared.syncs += 1;
                Ok(())
            })
        }

        fn replay(&self, visit: &mut dyn FnMut(Bytes) -> Result<(), crate::GroupError>) -> Result<(), ReplayError> {
            // Only synced batches survive a "crash".
            let batches: Vec<Bytes> = {
                let shared = self.shared.lock();
                shared.batches[..shared.durable].to_vec()
            };
            for batch in batches {
                visit(batch).map_err(ReplayError::Visit)?;
            }
            Ok(())
        }
    }
}
