//! A partition's log: an ordered set of sealed segments plus one active segment, with append, read,
//! time lookup, truncation and retention. Callers serialise access (the server holds it in a mutex);
//! durability is separate, through the shared [`Flusher`].

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{stamped_head, BatchHeader, BatchView, STAMPED_HEAD_BYTES};
use crate::config::LogConfig;
use crate::error::{io_at, WalError};
use crate::flusher::{Due, Flusher};
use crate::fsutil::{parse_base, sync_dir, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT, TMP_EXT};
use crate::recovery::{recover, RecoveryStats};
use crate::recovery_point::{self, RecoveryMark};
use crate::segment::{remove_segment_files, Segment};

/// Log append time reported for CreateTime batches (the broker does not rewrite timestamps).
pub const NO_LOG_APPEND_TIME: i64 = -1;

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    /// Always [`NO_LOG_APPEND_TIME`]: batches are stored as produced (CreateTime).
    pub log_append_time_ms: i64,
}

/// Answer to a fetch.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Whole batches, contiguous, starting at the batch that contains the requested offset; a slice
    /// of the mapped segment, not a copy.
    pub records: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// The log of one partition, in its own directory.
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Every segment but the newest, by base offset; immutable, fsynced, trimmed.
    sealed: BTreeMap<i64, Segment>,
    /// The newest segment: the only one appended to.
    active: Segment,
    flusher: Arc<Flusher>,
    /// What the last open read and trusted.
    recovery: RecoveryStats,
}

impl fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionLog")
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start_offset())
            .field("log_end_offset", &self.log_end_offset())
            .field("segments", &(self.sealed.len() + 1))
            .finish()
    }
}

impl PartitionLog {
    /// Opens (creating if missing) the partition directory and recovers it. Segments wholly below a
    /// valid recovery point are trusted (index loaded, a few headers checked); every other sealed
    /// segment is verified (corruption is an error); the newest is scanned from the recovery point (or
    /// its start) and cut at its torn tail; indexes are rebuilt where scanned. See `recovery`.
    pub fn open(dir: &Path, config: LogConfig) -> Result<PartitionLog, WalError> {
        config.validate()?;
        let existed = dir.exists();
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        if !existed {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let bases = scan_directory(dir)?;
        let recovered = recover(dir, &config, &bases)?;
        let (sealed, active, stats) = (recovered.sealed, recovered.active, recovered.stats);
        // What recovery kept may so far live only in the page cache (after a process crash).
        active.file().sync_all().map_err(io_at(active.log_path()))?;
        sync_dir(dir)?;
        let interval = std::time::Duration::from_millis(config.recovery_point_interval_ms);
        let flusher = Flusher::new(dir.to_path_buf(), active.files(), active.mark(), recovered.on_disk, interval);
        let log = PartitionLog { dir: dir.to_path_buf(), config, sealed, active, flusher, recovery: stats };
        if log.log_start_offset() == log.log_end_offset() {
            // Nothing to vouch for; a stale recovery point (e.g. of a log restarted empty) must go.
            if recovered.on_disk.is_some() {
                recovery_point::remove(dir)?;
            }
        } else {
            // Recovery moved the durable end past the recovery point (or there was none): record it
            // (in the background: a crash before it is written only scans this tail again).
            log.flusher.request_checkpoint(Due::Now);
        }
        tracing::info!(dir = %dir.display(), log_start = log.log_start_offset(), log_end = log.log_end_offset(),
            segments = log.sealed.len() + 1, recovery_point = ?stats.recovery_point, trusted_segments = stats.trusted_segments,
            scanned_bytes = stats.scanned_bytes, "opened partition log");
        Ok(log)
    }

    /// What the open of this log read (CRC-checked) and what it trusted from the recovery point.
    pub fn recovery_stats(&self) -> RecoveryStats {
        self.recovery
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// First offset still stored (the oldest segment's base offset).
    pub fn log_start_offset(&self) -> i64 {
        self.sealed.keys().next().copied().unwrap_or(self.active.base_offset())
    }

    /// Next offset to assign.
    pub fn log_end_offset(&self) -> i64 {
        self.active.next_offset()
    }

    /// Bytes of stored batches across all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments().map(Segment::valid_len).sum()
    }

    /// Bytes of stored batches below `offset` (the whole log at or past its end, 0 at or below its
    /// start): how much of the log a replica that has stored everything below `offset` holds.
    pub fn bytes_below(&self, offset: i64) -> Result<u64, WalError> {
        let mut below = 0;
        for seg in self.segments() {
            if seg.next_offset() <= offset {
                below += seg.valid_len();
            } else if seg.base_offset() < offset {
                if let Some(h) = seg.find_batch(offset)? {
                    below += h.position;
                }
                break;
            } else {
                break;
            }
        }
        Ok(below)
    }

    /// Base offsets of all segments, oldest first (the last is the active segment).
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments().map(Segment::base_offset).collect()
    }

    fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.sealed.values().chain(std::iter::once(&self.active))
    }

    fn check_range(&self, offset: i64) -> Result<(), WalError> {
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
        if offset < log_start || offset > log_end {
            return Err(WalError::OffsetOutOfRange { offset, log_start, log_end });
        }
        Ok(())
    }

    /// The segment and header of the batch containing `offset` (None at the log end).
    fn locate(&self, offset: i64) -> Result<Option<(&Segment, BatchHeader)>, WalError> {
        for seg in self.segments().filter(|s| s.next_offset() > offset) {
            if let Some(h) = seg.find_batch(offset)? {
                return Ok(Some((seg, h)));
            }
        }
        Ok(None)
    }

    /// Checks that `batch` is one whole v2 batch ([`BatchView::whole`]: length field matches the
    /// slice, magic 2, CRC-32C) and appends it as [`PartitionLog::append_view`] does. Nothing is
    /// written when the check fails.
    pub fn append(&mut self, batch: &[u8], leader_epoch: i32) -> Result<AppendInfo, WalError> {
        let view = BatchView::whole(batch).map_err(|e| WalError::InvalidBatch(e.to_string()))?;
        self.append_view(&view, leader_epoch)
    }

    /// Writes a checked batch with baseOffset = log end offset and the partition leader epoch given.
    /// The bytes are not modified: the stamped fields are written from a 16-byte copy, the rest
    /// straight from the view, so a produce request's buffer never has to be copied (a follower's
    /// batches, already stamped, take one write). No fsync: see [`Flusher::sync_through`].
    pub fn append_view(&mut self, view: &BatchView<'_>, leader_epoch: i32) -> Result<AppendInfo, WalError> {
        let (batch, given) = (view.bytes(), *view.header());
        let size = batch.len() as u64;
        if size > self.config.segment_bytes {
            return Err(WalError::BatchTooLarge { size, segment_bytes: self.config.segment_bytes });
        }
        let base_offset = self.log_end_offset();
        let last_offset = base_offset + i64::from(given.last_offset_delta);
        let now = crate::now_ms();
        if let Some(reason) = self.active.roll_reason(size, last_offset, now, &self.config) {
            self.roll(reason)?;
        }
        let stamped = stamped_head(batch, base_offset, leader_epoch);
        let (head, rest): (&[u8], &[u8]) = if batch[..STAMPED_HEAD_BYTES] == stamped {
            (&[], batch)
        } else {
            (&stamped, &batch[STAMPED_HEAD_BYTES..])
        };
        let header = BatchHeader {
            base_offset,
            last_offset,
            partition_leader_epoch: leader_epoch,
            position: self.active.valid_len(),
            ..given
        };
        self.active.append(head, rest, &header, now)?;
        self.flusher.note_append(self.active.mark());
        Ok(AppendInfo {
            base_offset,
            last_offset,
            max_timestamp: header.max_timestamp,
            log_append_time_ms: NO_LOG_APPEND_TIME,
        })
    }

    /// Seals the active segment (fsync + trim) and starts a new one at the log end.
    ///
    /// On a full disk the new segment's files may not be creatable: whatever part of them was made
    /// is removed again and the active segment stays as it was, so the append fails cleanly
    /// (KAFKA_STORAGE_ERROR) and a later one rolls once there is space. The fsync of the old segment
    /// goes through the flusher, so a failed `fdatasync` is remembered there (see `flusher`) instead
    /// of being retried by the next roll, whose second `fdatasync` could succeed without the lost
    /// pages ever reaching the disk.
    fn roll(&mut self, reason: &'static str) -> Result<(), WalError> {
        let next = self.active.next_offset();
        self.flusher.sync_through(next)?;
        let fresh = match Segment::create(&self.dir, next, &self.config) {
            Ok(fresh) => fresh,
            Err(e) => {
                // Half-made files would otherwise be taken for the newest segment at reopen.
                if let Err(cleanup) = remove_segment_files(&self.dir, next) {
                    tracing::warn!(dir = %self.dir.display(), base = next, error = %cleanup,
                        "could not remove the files of a segment that failed to be created");
                }
                return Err(e);
            }
        };
        if let Err(e) = self.active.seal() {
            // Best effort: the half-made segment would otherwise be taken for the newest at reopen.
            let _ = fresh.remove_files(&self.dir);
            return Err(e);
        }
        self.flusher.switch_segment(fresh.files(), fresh.mark());
        let old = std::mem::replace(&mut self.active, fresh);
        tracing::debug!(dir = %self.dir.display(), sealed_base = old.base_offset(), new_base = next, reason,
            "rolled segment");
        self.sealed.insert(old.base_offset(), old);
        sync_dir(&self.dir)
    }

    /// Whole batches from the one containing `offset`, stopping before any batch whose last offset is
    /// at or above `limit_offset` (the high watermark) and before `max_bytes` — except that the first
    /// batch is always returned whole even if larger than `max_bytes` (KIP-74). An offset at the log
    /// end (or the limit) gives an empty result; one below the log start or past the log end is
    /// `OffsetOutOfRange`. Stops at a segment end (the caller fetches again).
    pub fn read(&self, offset: i64, max_bytes: usize, limit_offset: i64) -> Result<ReadResult, WalError> {
        self.check_range(offset)?;
        let mut result = ReadResult {
            records: Bytes::new(),
            log_start_offset: self.log_start_offset(),
            log_end_offset: self.log_end_offset(),
        };
        if offset >= limit_offset {
            return Ok(result);
        }
        let Some((seg, first)) = self.locate(offset)? else {
            return Ok(result);
        };
        if first.last_offset >= limit_offset {
            return Ok(result);
        }
        let start = first.position;
        let mut end = start + u64::from(first.size);
        seg.walk_from(end, |h| {
            let grown = end - start + u64::from(h.size);
            if h.last_offset >= limit_offset || grown > max_bytes as u64 {
                return false;
            }
            end += u64::from(h.size);
            true
        })?;
        result.records = seg.slice(start, end);
        Ok(result)
    }

    /// First offset whose batch max timestamp >= ts, with that timestamp (ListOffsets by time): the
    /// base offset of the first such batch and its max timestamp. None if no batch is that new.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, WalError> {
        for seg in self.segments() {
            if let Some(h) = seg.find_timestamp(ts)? {
                return Ok(Some((h.base_offset, h.max_timestamp)));
            }
        }
        Ok(None)
    }

    /// Headers of the batches from the one containing `offset` to the end (idempotence state rebuild,
    /// leader-epoch truncation).
    pub fn batch_headers_from(&self, offset: i64) -> Result<Vec<BatchHeader>, WalError> {
        self.check_range(offset)?;
        let mut out = Vec::new();
        let Some((first_seg, first)) = self.locate(offset)? else {
            return Ok(out);
        };
        let mut started = false;
        for seg in self.segments() {
            let from = if std::ptr::eq(seg, first_seg) {
                started = true;
                first.position
            } else if started {
                0
            } else {
                continue;
            };
            seg.walk_headers_from(from, |h| {
                out.push(*h);
                true
            })?;
        }
        Ok(out)
    }

    /// Drop every batch with last_offset >= offset (follower truncation): the log end becomes the
    /// base offset of the batch containing `offset`. At or below the log start everything is dropped
    /// and the log restarts empty at `offset`. Syncs.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), WalError> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        if offset <= self.log_start_offset() {
            return self.restart_at(offset);
        }
        let (cut_base, cut_position, new_end) = match self.locate(offset)? {
            Some((seg, h)) => (seg.base_offset(), h.position, h.base_offset),
            None => return Ok(()),
        };
        // Before any file is cut: the recovery point must name nothing at or above the new end.
        let lowered = RecoveryMark::segment_start(cut_base, self.config.index_interval_bytes);
        self.flusher.begin_truncation(new_end, Some(lowered))?;
        for seg in self.sealed.split_off(&(cut_base + 1)).into_values() {
            seg.remove_files(&self.dir)?;
        }
        if self.active.base_offset() != cut_base {
            let reopened = self.sealed.remove(&cut_base);
            if let Some(seg) = reopened {
                let old = std::mem::replace(&mut self.active, seg);
                old.remove_files(&self.dir)?;
            }
        }
        self.active.truncate_in_place(cut_position, &self.dir, &self.config)?;
        self.active.file().sync_all().map_err(io_at(self.active.log_path()))?;
        sync_dir(&self.dir)?;
        self.flusher.reset(self.active.files(), self.active.mark());
        tracing::info!(dir = %self.dir.display(), offset, log_end = self.log_end_offset(), "truncated log");
        Ok(())
    }

    /// Drops every batch and restarts the log empty at `offset` (a follower whose whole log lies
    /// below the leader's log start, so nothing of it can be kept). Syncs.
    pub fn restart_at(&mut self, offset: i64) -> Result<(), WalError> {
        let restart = offset.max(0);
        self.flusher.begin_truncation(i64::MIN, None)?;
        for seg in std::mem::take(&mut self.sealed).into_values() {
            seg.remove_files(&self.dir)?;
        }
        // Unlink first: creating over the same name must make a new inode, never cut one that
        // readers may still have mapped.
        self.active.remove_files(&self.dir)?;
        self.active = Segment::create(&self.dir, restart, &self.config)?;
        self.active.file().sync_all().map_err(io_at(self.active.log_path()))?;
        sync_dir(&self.dir)?;
        self.flusher.reset(self.active.files(), self.active.mark());
        tracing::info!(dir = %self.dir.display(), offset = restart, "log restarted empty");
        Ok(())
    }

    /// Delete whole sealed segments past retention (time by segment max timestamp, then size).
    /// Returns the number deleted; advances log_start_offset. The active segment is never deleted.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize, WalError> {
        let mut deleted = 0;
        if let Some(retention_ms) = self.config.retention_ms {
            let retention_ms = i64::try_from(retention_ms).unwrap_or(i64::MAX);
            while let Some(entry) = self.sealed.first_entry() {
                let ts = entry.get().retention_timestamp();
                if ts < 0 || now_ms.saturating_sub(ts) <= retention_ms {
                    break;
                }
                entry.remove().remove_files(&self.dir)?;
                deleted += 1;
            }
        }
        if let Some(retention_bytes) = self.config.retention_bytes {
            let mut total = self.size_bytes();
            while let Some(entry) = self.sealed.first_entry() {
                let size = entry.get().valid_len();
                if total - size < retention_bytes {
                    break;
                }
                entry.remove().remove_files(&self.dir)?;
                total -= size;
                deleted += 1;
            }
        }
        if deleted > 0 {
            sync_dir(&self.dir)?;
            tracing::info!(dir = %self.dir.display(), deleted, log_start = self.log_start_offset(),
                "retention deleted segments");
        }
        Ok(deleted)
    }

    /// Moves the log start up towards `offset` (DeleteRecords): deletes the sealed segments that lie
    /// wholly below it. Returns the number deleted; the new log start is the next segment's base.
    pub fn delete_before(&mut self, offset: i64) -> Result<usize, WalError> {
        let mut deleted = 0;
        while let Some(entry) = self.sealed.first_entry() {
            if entry.get().next_offset() > offset {
                break;
            }
            entry.remove().remove_files(&self.dir)?;
            deleted += 1;
        }
        if deleted > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(deleted)
    }

    /// The group-commit handle shared by everyone who must wait for durability.
    pub fn flusher(&self) -> Arc<Flusher> {
        Arc::clone(&self.flusher)
    }

    /// Close files and remove the partition directory (topic deletion).
    pub fn delete(self) -> Result<(), WalError> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(&dir).map_err(io_at(&dir))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(())
    }
}

impl Drop for PartitionLog {
    /// No recovery point write may land after the log is closed (its directory may be changed or
    /// deleted next, or opened again).
    fn drop(&mut self) {
        self.flusher.retire();
    }
}

/// Lists the segment base offsets in `dir`, oldest first, removing leftovers of interrupted work:
/// `.tmp` copies and index files whose `.log` is gone.
fn scan_directory(dir: &Path) -> Result<Vec<i64>, WalError> {
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let path = entry.map_err(io_at(dir))?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let base = path.file_stem().and_then(|s| s.to_str()).and_then(parse_base);
        match (ext, base) {
            (TMP_EXT, _) => fs::remove_file(&path).map_err(io_at(&path))?,
            (LOG_EXT, Some(base)) => bases.push(base),
            (INDEX_EXT | TIME_INDEX_EXT, Some(base)) => indexes.push((base, path)),
            _ => {}
        }
    }
    for (base, path) in indexes {
        if !bases.contains(&base) {
            tracing::warn!(path = %path.display(), "removing index without a log file");
            fs::remove_file(&path).map_err(io_at(&path))?;
        }
    }
    bases.sort_unstable();
    Ok(bases)
}
