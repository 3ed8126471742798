//! Group commit: makes appended data durable with as few `fdatasync` calls as possible.
//!
//! `append` never syncs; it tells the flusher how far the log reaches. A caller of
//! [`Flusher::sync_through`] either finds its offsets already durable, waits for a sync in flight
//! (then re-checks), or becomes the syncer: it syncs the active file once for everything appended so
//! far, outside every lock, while later callers queue on the condvar. Sealed segments were fsynced when
//! they rolled, so syncing the current active file always completes the durable prefix.
//!
//! A failed `fdatasync` is final for the log: after it, the kernel may have dropped the dirty pages
//! and marked them clean, so a later sync that succeeds would prove nothing about them. The flusher
//! remembers the failure and refuses every later sync of offsets beyond what was durable before it;
//! nothing appended since is ever reported durable, so nothing is acknowledged that a crash could
//! take back. The broker halts on such an error (`chronik-server`, `partition/halt.rs`): a restart's
//! recovery re-reads the log from the disk, whatever the page cache claimed. A failed *write*
//! (ENOSPC) is different and is not a flusher matter: the append is rolled back and nothing of it
//! was ever handed to the flusher.

use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::error::WalError;
use crate::histogram::SYNC_STATS;

/// Shared durability state of one partition log; obtained from `PartitionLog::flusher`.
pub struct Flusher {
    state: Mutex<FlushState>,
    synced: Condvar,
    /// For error messages: the partition directory.
    dir: std::path::PathBuf,
}

struct FlushState {
    /// The active segment's file; swapped by roll and truncation.
    file: Arc<File>,
    /// Log end offset as of the last append.
    appended_end: i64,
    /// Every offset below this is on stable storage.
    durable_end: i64,
    /// A sync is in flight; others wait instead of issuing their own.
    syncing: bool,
    /// Bumped by truncation, so a sync that started before it cannot claim pre-truncation offsets.
    generation: u64,
    /// Number of `sync_data` calls made by `sync_through` (observability and tests).
    sync_count: u64,
    /// The error of a failed `fdatasync`; once set, nothing beyond `durable_end` becomes durable.
    failed: Option<String>,
}

impl Flusher {
    pub(crate) fn new(dir: std::path::PathBuf, file: Arc<File>, durable_end: i64) -> Flusher {
        Flusher {
            state: Mutex::new(FlushState {
                file,
                appended_end: durable_end,
                durable_end,
                syncing: false,
                generation: 0,
                sync_count: 0,
                failed: None,
            }),
            synced: Condvar::new(),
            dir,
        }
    }

    /// Block until every offset < `end_offset` is durable (fdatasync). Concurrent callers share one
    /// sync. Asking for offsets that were never appended (or were truncated away) is an error rather
    /// than a wait that could last forever.
    pub fn sync_through(&self, end_offset: i64) -> Result<(), WalError> {
        let mut st = self.state.lock();
        loop {
            if st.durable_end >= end_offset {
                return Ok(());
            }
            if let Some(reason) = &st.failed {
                return Err(WalError::SyncFailed { path: self.dir.clone(), reason: reason.clone() });
            }
            if end_offset > st.appended_end {
                return Err(WalError::SyncBeyondEnd {
                    requested: end_offset,
                    log_end: st.appended_end,
                });
            }
            if st.syncing {
                self.synced.wait(&mut st);
                continue;
            }
            st.syncing = true;
            let file = Arc::clone(&st.file);
            let target = st.appended_end;
            let generation = st.generation;
            drop(st);
            let started = Instant::now();
            let result = file.sync_data();
            SYNC_STATS.record(started.elapsed());
            st = self.state.lock();
            st.syncing = false;
            st.sync_count += 1;
            if result.is_ok() && st.generation == generation {
                st.durable_end = st.durable_end.max(target);
            }
            self.synced.notify_all();
            if let Err(source) = result {
                // Final for this log (see the module docs): the waiters see the failure too.
                tracing::error!(dir = %self.dir.display(), error = %source, "fdatasync failed; nothing more of this partition log becomes durable until a restart");
                st.failed = Some(source.to_string());
                return Err(WalError::SyncFailed { path: self.dir.clone(), reason: source.to_string() });
            }
        }
    }

    /// Every offset below this is durable.
    pub fn durable_end_offset(&self) -> i64 {
        self.state.lock().durable_end
    }

    /// Number of fdatasync calls made by group commit so far.
    pub fn sync_count(&self) -> u64 {
        self.state.lock().sync_count
    }

    /// Records an append that extended the log to `end_offset` (exclusive).
    pub(crate) fn note_append(&self, end_offset: i64) {
        self.state.lock().appended_end = end_offset;
    }

    /// A roll sealed (and fsynced) everything below `durable_end`; later appends go to `file`.
    pub(crate) fn switch_file(&self, file: Arc<File>, durable_end: i64) {
        let mut st = self.state.lock();
        st.file = file;
        st.durable_end = st.durable_end.max(durable_end);
    }

    /// The log was cut (and synced) to `end_offset`; forget everything above it.
    pub(crate) fn reset(&self, file: Arc<File>, end_offset: i64) {
        let mut st = self.state.lock();
        st.file = file;
        st.generation += 1;
        st.appended_end = end_offset;
        st.durable_end = end_offset;
        self.synced.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_failed_fdatasync_nothing_more_becomes_durable() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = Arc::new(File::create(dir.path().join("seg"))?);
        let f = Flusher::new(dir.path().to_path_buf(), file, 0);
        f.note_append(10);
        f.sync_through(10)?;
        assert_eq!(f.durable_end_offset(), 10);
        // What a failing fdatasync leaves behind (the real one cannot be made to fail here).
        f.state.lock().failed = Some("EIO".into());
        f.note_append(20);
        assert!(matches!(f.sync_through(20), Err(WalError::SyncFailed { .. })));
        assert_eq!(f.durable_end_offset(), 10, "nothing beyond the failure is reported durable");
        f.sync_through(10)?;
        Ok(())
    }
}
