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
//! take back. The broker halts on such an error (`chronik-server`, `partition/storage_fault.rs`): a restart's
//! recovery re-reads the log from the disk, whatever the page cache claimed. A failed *write*
//! (ENOSPC) is different and is not a flusher matter: the append is rolled back and nothing of it
//! was ever handed to the flusher.
//!
//! The flusher also keeps the partition's **recovery point** (`recovery_point`): after a sync made a
//! prefix durable, it asks the background writer (`checkpoint_writer`) to write that prefix's mark —
//! at most once per `recovery_point_interval_ms`, or at once when the durable prefix reached a new
//! segment; a roll and an open that recovered a tail ask for it too, and an explicit
//! [`Flusher::write_recovery_point`] (clean shutdown) writes it in the caller's thread. A recovery
//! point only ever names data that was fsynced before it was written, so it never makes anything look
//! durable that is not: what a crash can lose is decided by the syncs alone (see
//! `docs/WAL-FORMAT.md`); the recovery point only decides how much of the log the next open has to
//! scan. Failing to write one is logged and otherwise ignored (the next open scans more).

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::WalError;
use crate::checkpoint_writer;
use crate::histogram::SYNC_STATS;
use crate::on_demand_file::OnDemandFile;
use crate::recovery_point::{self, RecoveryMark};

/// The files of the active segment that durability concerns: the data group commit syncs, and the
/// index files whose entries a recovery point vouches for.
#[derive(Clone)]
pub(crate) struct SegmentFiles {
    pub base_offset: i64,
    pub log: Arc<File>,
    pub offset_index: Arc<OnDemandFile>,
    pub time_index: Arc<OnDemandFile>,
}

/// Shared durability state of one partition log; obtained from `PartitionLog::flusher`.
pub struct Flusher {
    state: Mutex<FlushState>,
    synced: Condvar,
    /// The partition directory (where the recovery point lives; named in errors).
    dir: PathBuf,
    /// Held while a recovery point is written or removed: one writer at a time, and truncation waits
    /// for a write in flight before it cuts anything.
    checkpoint: Mutex<CheckpointState>,
    /// Least time between two recovery point writes after syncs.
    checkpoint_interval: Duration,
    /// The write queued with the background writer: 0 none, else the `Due` as u8 (the strongest asked).
    requested: AtomicU8,
    /// This flusher, for the background writer's queue (which must not keep a dropped log alive).
    me: Weak<Flusher>,
}

struct CheckpointState {
    /// The recovery point on disk as far as this process knows (None: none, or unknown).
    written: Option<RecoveryMark>,
    written_at: Instant,
    /// Recovery points written (observability and tests).
    writes: u64,
}

struct FlushState {
    /// The active segment's files; swapped by roll and truncation.
    files: SegmentFiles,
    /// The log end as of the last append.
    appended: RecoveryMark,
    /// Every offset below `durable.offset` is on stable storage.
    durable: RecoveryMark,
    /// Set from the start of a truncation until its end: no recovery point may be written meanwhile
    /// (the marks describe files being cut). Stays set after `retire`.
    checkpoint_blocked: bool,
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
    /// A flusher for a log whose everything up to `durable` is on stable storage; `on_disk` is the
    /// recovery point found at open (if it was valid).
    pub(crate) fn new(
        dir: PathBuf,
        files: SegmentFiles,
        durable: RecoveryMark,
        on_disk: Option<RecoveryMark>,
        checkpoint_interval: Duration,
    ) -> Arc<Flusher> {
        Arc::new_cyclic(|me| Flusher {
            state: Mutex::new(FlushState {
                files,
                appended: durable,
                durable,
                checkpoint_blocked: false,
                syncing: false,
                generation: 0,
                sync_count: 0,
                failed: None,
            }),
            synced: Condvar::new(),
            dir,
            checkpoint: Mutex::new(CheckpointState { written: on_disk, written_at: Instant::now(), writes: 0 }),
            checkpoint_interval,
            requested: AtomicU8::new(0),
            me: me.clone(),
        })
    }

    /// Block until every offset < `end_offset` is durable (fdatasync). Concurrent callers share one
    /// sync. Asking for offsets that were never appended (or were truncated away) is an error rather
    /// than a wait that could last forever.
    pub fn sync_through(&self, end_offset: i64) -> Result<(), WalError> {
        let mut st = self.state.lock();
        loop {
            if st.durable.offset >= end_offset {
                return Ok(());
            }
            if let Some(reason) = &st.failed {
                return Err(WalError::SyncFailed { path: self.dir.clone(), reason: reason.clone() });
            }
            if end_offset > st.appended.offset {
                return Err(WalError::SyncBeyondEnd {
                    requested: end_offset,
                    log_end: st.appended.offset,
                });
            }
            if st.syncing {
                self.synced.wait(&mut st);
                continue;
            }
            st.syncing = true;
            let file = Arc::clone(&st.files.log);
            let target = st.appended;
            let generation = st.generation;
            drop(st);
            let started = Instant::now();
            let result = file.sync_data();
            SYNC_STATS.record(started.elapsed());
            st = self.state.lock();
            st.syncing = false;
            st.sync_count += 1;
            if result.is_ok() && st.generation == generation && target.is_after(&st.durable) {
                st.durable = target;
            }
            self.synced.notify_all();
            if let Err(source) = result {
                // Final for this log (see the module docs): the waiters see the failure too.
                tracing::error!(dir = %self.dir.display(), error = %source, "fdatasync failed; nothing more of this partition log becomes durable until a restart");
                st.failed = Some(source.to_string());
                return Err(WalError::SyncFailed { path: self.dir.clone(), reason: source.to_string() });
            }
            drop(st);
            self.request_checkpoint(Due::AfterSync);
            st = self.state.lock();
        }
    }

    /// Every offset below this is durable.
    pub fn durable_end_offset(&self) -> i64 {
        self.state.lock().durable.offset
    }

    /// Writes the recovery point now if the durable prefix moved past the one on disk (the broker's
    /// clean shutdown calls this after its final sync, so the next start scans nothing). Waits for a
    /// write in flight.
    pub fn write_recovery_point(&self) -> Result<(), WalError> {
        self.checkpoint(Due::Now)
    }

    /// Recovery points written by this flusher so far.
    pub fn recovery_point_writes(&self) -> u64 {
        self.checkpoint.lock().writes
    }

    /// Asks the background writer for a recovery point write (`AfterSync`: only if one is due). Never
    /// blocks on I/O.
    ///
    /// A sync inside the interval is queued too and the writer defers it to the interval's end, so the
    /// last sync of a burst is recorded (and the index descriptors closed) even if no write follows.
    pub(crate) fn request_checkpoint(&self, due: Due) {
        if due == Due::AfterSync && self.after_sync_deferral() == Deferral::Nothing {
            return;
        }
        let previous = self.requested.fetch_max(due as u8, Ordering::AcqRel);
        // Queued when nothing was; a `Now` is queued again past a deferred `AfterSync`, and the
        // deferred entry then finds nothing left to do.
        let queue = previous == 0 || (due == Due::Now && previous == Due::AfterSync as u8);
        if queue && !checkpoint_writer::request(self.me.clone()) && previous == 0 {
            self.requested.store(0, Ordering::Release);
        }
    }

    /// Called by the background writer for a queued request. Some(at): the write is not due before
    /// `at` (the interval since the last one); the request stays queued and the writer calls again then.
    pub(crate) fn write_requested_checkpoint(&self) -> Option<Instant> {
        if self.requested.load(Ordering::Acquire) == Due::AfterSync as u8 {
            if let Deferral::Until(at) = self.after_sync_deferral() {
                return Some(at);
            }
        }
        let due = match self.requested.swap(0, Ordering::AcqRel) {
            0 => return None,
            x if x == Due::Now as u8 => Due::Now,
            _ => Due::AfterSync,
        };
        self.checkpoint_if(due);
        None
    }

    /// When a recovery point write after a sync is due: the durable prefix moved past the one on
    /// disk and the interval passed or the prefix reached a new segment (`Now`); the prefix moved but
    /// the interval has not passed (`Until` its end); or it did not move (`Nothing`). `Now` while a
    /// write is in flight: the writer checks again once that write is done (otherwise the last sync
    /// of a burst could go unrecorded).
    fn after_sync_deferral(&self) -> Deferral {
        let Some(ck) = self.checkpoint.try_lock() else { return Deferral::Now };
        let durable = self.state.lock().durable;
        let Some(w) = ck.written else { return Deferral::Now };
        if !durable.is_after(&w) {
            return Deferral::Nothing;
        }
        if w.segment_base != durable.segment_base || ck.written_at.elapsed() >= self.checkpoint_interval {
            return Deferral::Now;
        }
        // An interval too long to add to an instant never ends.
        ck.written_at.checked_add(self.checkpoint_interval).map_or(Deferral::Nothing, Deferral::Until)
    }

    /// `checkpoint` for callers that must not fail because of it: logs the error.
    pub(crate) fn checkpoint_if(&self, due: Due) {
        if let Err(e) = self.checkpoint(due) {
            tracing::warn!(dir = %self.dir.display(), error = %e,
                "could not write the recovery point; the next open scans more of the log");
        }
    }

    /// Writes the durable mark as the recovery point when `due` says so. After syncs (`AfterSync`) a
    /// writer already busy is not waited for, and the interval is respected.
    fn checkpoint(&self, due: Due) -> Result<(), WalError> {
        let mut ck = match due {
            Due::AfterSync => match self.checkpoint.try_lock() {
                Some(ck) => ck,
                None => return Ok(()),
            },
            Due::Now => self.checkpoint.lock(),
        };
        // Read under the checkpoint lock: truncation blocks writes under the same lock, so the mark
        // read here still describes the files until this write is done.
        let (mark, files) = {
            let st = self.state.lock();
            if st.checkpoint_blocked || st.failed.is_some() {
                return Ok(());
            }
            (st.durable, st.files.clone())
        };
        let moved = ck.written.is_none_or(|w| mark.is_after(&w));
        let new_segment = ck.written.is_none_or(|w| w.segment_base != mark.segment_base);
        let due_now = match due {
            Due::Now => moved,
            Due::AfterSync => moved && (new_segment || ck.written_at.elapsed() >= self.checkpoint_interval),
        };
        if !due_now || files.base_offset != mark.segment_base {
            return Ok(());
        }
        // The index entries the mark vouches for were written (pwrite) but not synced: make them
        // durable, and let the index descriptors go until the next entry (`on_demand_file`).
        if mark.offset_entries > 0 {
            let index = &files.offset_index;
            index.sync_data_and_close().map_err(crate::error::io_at(index.path()))?;
        }
        if mark.time_entries > 0 {
            let index = &files.time_index;
            index.sync_data_and_close().map_err(crate::error::io_at(index.path()))?;
        }
        recovery_point::write(&self.dir, &mark)?;
        ck.written = Some(mark);
        ck.written_at = Instant::now();
        ck.writes += 1;
        Ok(())
    }

    /// Called before truncation cuts anything at `cut_offset`: stops recovery point writes until
    /// [`Flusher::reset`], and makes sure the one on disk names nothing at or above the cut — it is
    /// kept when it lies at or below it, else replaced by `lowered` (the start of the segment that
    /// will hold the cut), or removed when `lowered` is None.
    pub(crate) fn begin_truncation(&self, cut_offset: i64, lowered: Option<RecoveryMark>) -> Result<(), WalError> {
        let mut ck = self.checkpoint.lock();
        {
            let mut st = self.state.lock();
            st.checkpoint_blocked = true;
            st.generation += 1;
        }
        let on_disk = recovery_point::read(&self.dir).ok().flatten();
        let keep = [ck.written, on_disk].iter().flatten().all(|m| m.offset <= cut_offset);
        if keep {
            return Ok(());
        }
        ck.written = None;
        match lowered {
            Some(m) => {
                recovery_point::write(&self.dir, &m)?;
                ck.written = Some(m);
            }
            None => recovery_point::remove(&self.dir)?,
        }
        Ok(())
    }

    /// The log is closed or going away: no recovery point is written any more (waits for a write in
    /// flight), so nothing writes into a directory the caller may now change or delete.
    pub(crate) fn retire(&self) {
        let _ck = self.checkpoint.lock();
        self.state.lock().checkpoint_blocked = true;
    }

    /// Number of fdatasync calls made by group commit so far.
    pub fn sync_count(&self) -> u64 {
        self.state.lock().sync_count
    }

    /// Records an append that extended the log to `end` (the active segment's mark after it).
    pub(crate) fn note_append(&self, end: RecoveryMark) {
        self.state.lock().appended = end;
    }

    /// A roll sealed (and fsynced) everything before `start`, the start of the new active segment
    /// whose files are `files`; writes the recovery point there.
    pub(crate) fn switch_segment(&self, files: SegmentFiles, start: RecoveryMark) {
        {
            let mut st = self.state.lock();
            st.files = files;
            st.appended = start;
            if start.is_after(&st.durable) {
                st.durable = start;
            }
        }
        self.request_checkpoint(Due::Now);
    }

    /// The log was cut (and synced) to `end`, now the end of the segment of `files`; forget
    /// everything above it, and allow recovery point writes again.
    pub(crate) fn reset(&self, files: SegmentFiles, end: RecoveryMark) {
        let mut st = self.state.lock();
        st.files = files;
        st.generation += 1;
        st.appended = end;
        st.durable = end;
        st.checkpoint_blocked = false;
        self.synced.notify_all();
    }
}

/// See [`Flusher::after_sync_deferral`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deferral {
    Nothing,
    Now,
    Until(Instant),
}

/// When a recovery point write is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Due {
    /// After a group-commit sync: if the interval passed or the durable prefix reached a new segment.
    AfterSync = 1,
    /// Now, if the durable prefix moved (roll, open, clean shutdown).
    Now = 2,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_failed_fdatasync_nothing_more_becomes_durable() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let index = |name: &str| -> std::io::Result<Arc<OnDemandFile>> {
            let path = dir.path().join(name);
            File::create(&path)?;
            Ok(Arc::new(OnDemandFile::closed(&path)))
        };
        let log = Arc::new(File::create(dir.path().join("seg"))?);
        let files = SegmentFiles { base_offset: 0, log, offset_index: index("i")?, time_index: index("t")? };
        let at = |offset: i64| RecoveryMark { offset, position: offset as u64 * 100, last_batch_position: Some(0), ..RecoveryMark::segment_start(0, 4096) };
        let f = Flusher::new(dir.path().to_path_buf(), files, at(0), None, Duration::ZERO);
        f.note_append(at(10));
        f.sync_through(10)?;
        assert_eq!(f.durable_end_offset(), 10);
        // What a failing fdatasync leaves behind (the real one cannot be made to fail here).
        f.state.lock().failed = Some("EIO".into());
        f.note_append(at(20));
        assert!(matches!(f.sync_through(20), Err(WalError::SyncFailed { .. })));
        assert_eq!(f.durable_end_offset(), 10, "nothing beyond the failure is reported durable");
        f.sync_through(10)?;
        Ok(())
    }
}
