//! The narrow view of a log the offsets store needs, so the store is tested without disk and the
//! `chronik-wal` binding lives in one place ([`super::wal_log`]).

use std::sync::Arc;

use bytes::Bytes;

/// A failure of the underlying log, kept opaque so the store does not depend on one log crate.
pub type LogError = Box<dyn std::error::Error + Send + Sync>;

/// Makes every batch before `end_offset` durable; callable without holding the log, so
/// concurrent commits share one fsync (group commit).
pub type Syncer = Arc<dyn Fn(i64) -> Result<(), LogError> + Send + Sync>;

/// One internal offsets log.
pub trait OffsetsLog: Send {
    /// Appends one v2 record batch (the log stamps its base offset); returns the log end offset
    /// after it, i.e. what to pass to the [`Syncer`].
    fn append(&mut self, batch: &mut [u8]) -> Result<i64, LogError>;
    /// The handle that fsyncs this log.
    fn syncer(&self) -> Syncer;
    /// Hands every stored batch, oldest first, to `visit` (in chunks of whole batches).
    fn replay(&self, visit: &mut dyn FnMut(Bytes) -> Result<(), crate::GroupError>) -> Result<(), ReplayError>;
}

/// Replay stops on a log failure or on a failure of the visitor.
#[derive(Debug)]
pub enum ReplayError {
    Log(LogError),
    Visit(crate::GroupError),
}

#[cfg(test)]
pub mod memory {
    //! An in-memory log whose contents survive "reopening" (they live in a shared buffer), with an
    //! fsync counter: for store tests that need no disk.

    use super::*;
    use parking_lot::Mutex;

    /// Batches appended so far; `durable` is how many of them were synced.
    #[derive(Default)]
    pub struct Shared {
        pub batches: Vec<Bytes>,
        pub durable: usize,
        pub syncs: usize,
    }

    pub struct MemoryLog {
        pub shared: Arc<Mutex<Shared>>,
    }

    impl OffsetsLog for MemoryLog {
        fn append(&mut self, batch: &mut [u8]) -> Result<i64, LogError> {
            let mut shared = self.shared.lock();
            let base = shared.batches.len() as i64;
            batch[..8].copy_from_slice(&base.to_be_bytes());
            shared.batches.push(Bytes::copy_from_slice(batch));
            Ok(base + 1)
        }

        fn syncer(&self) -> Syncer {
            let shared = self.shared.clone();
            Arc::new(move |end| {
                let mut shared = shared.lock();
                shared.durable = shared.durable.max(end as usize);
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
