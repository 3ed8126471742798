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

/// The offset after the last whole batch in `records` (the header layout is chronik-wal's).
fn offset_after(records: &[u8]) -> Option<i64> {
    chronik_wal::stored_headers(records).last().map(|h| h.last_offset + 1)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::record::{encode_batch, OffsetRecord};

    /// A batch of `n` records at base offset `base`, as the log stores it.
    fn batch(base: i64, n: usize) -> Vec<u8> {
        let records: Vec<OffsetRecord> = (0..n).map(|i| OffsetRecord::DeleteGroup { group: format!("g{i}") }).collect();
        let mut b = encode_batch(&records, 1_000).expect("encode").to_vec();
        b[..8].copy_from_slice(&base.to_be_bytes());
        b
    }

    #[test]
    fn the_offset_after_is_that_of_the_last_whole_batch() {
        let (first, second) = (batch(10, 3), batch(13, 2));
        let mut chunk = [first.clone(), second.clone()].concat();
        assert_eq!(offset_after(&chunk), Some(15));
        // A read that ends inside a batch: the whole ones before it count.
        chunk.extend_from_slice(&batch(15, 4)[..40]);
        assert_eq!(offset_after(&chunk), Some(15));
        assert_eq!(offset_after(&first[..first.len() - 1]), None);
        assert_eq!(offset_after(&[]), None);
    }

    #[test]
    fn replay_reads_from_one_chunk_end_to_the_next_and_refuses_a_gap() {
        let log = [batch(0, 2), batch(2, 1), batch(3, 5)];
        let read = |offset: i64| -> Result<Bytes, LogError> {
            let at = log.iter().position(|b| i64::from_be_bytes(b[..8].try_into().expect("8 bytes")) == offset).ok_or("no batch there")?;
            Ok(Bytes::from(log[at].clone()))
        };
        let mut seen = 0;
        replay_chunks(0, 8, read, &mut |_| {
            seen += 1;
            Ok(())
        })
        .expect("replay");
        assert_eq!(seen, 3);
        let empty = |_: i64| -> Result<Bytes, LogError> { Ok(Bytes::new()) };
        assert!(matches!(replay_chunks(0, 8, empty, &mut |_| Ok(())), Err(ReplayError::Log(_))));
    }
}
