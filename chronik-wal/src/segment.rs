//! One segment: a `.log` file of batches mapped read-only, plus its offset and time indexes.
//!
//! The active segment's file is preallocated to `segment_bytes` and mapped once over that length;
//! appends are positioned writes at `valid_len`, which Linux keeps coherent with the shared mapping.
//! Sealing fsyncs it and trims the file to `valid_len`.
//!
//! Opening a segment found on disk either scans it (every batch CRC-checked, indexes rebuilt) from its
//! start or from a trusted prefix (the recovery point), or — for a sealed segment wholly below the
//! recovery point — trusts it: its index files are loaded and checked for shape, and only a few
//! headers near its end are read ([`Segment::open_trusted`]).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use memmap2::Mmap;

use crate::batch::{check_batch, BatchFault, BatchHeader};
use crate::config::LogConfig;
use crate::error::{io_at, WalError};
use crate::flusher::SegmentFiles;
use crate::fsutil::{segment_file, sync_dir, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT, TMP_EXT};
use crate::index::{
    last_offset_entry, last_time_entry, offset_entries_valid, offset_lookup, time_entries_valid, time_lookup,
    IndexFile, IndexPolicy, OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES,
};
use crate::mmap::{map_log, with_random_access, MappedSlice};
use crate::recovery_point::RecoveryMark;
use crate::scan::{is_all_zero, max_timestamp_after, scan_from, walk_to_end};

/// The part of the newest segment that the recovery point vouches for: recovery scans only after it.
pub(crate) struct Prefix {
    pub mark: RecoveryMark,
    /// The first `mark.offset_entries` entries of the old offset index file (already shape-checked).
    pub offset_entries: Vec<u8>,
    /// The first `mark.time_entries` entries of the old time index file (already shape-checked).
    pub time_entries: Vec<u8>,
}

/// How a segment found on disk is to be treated by recovery.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    /// Fsynced at roll: any invalid data is corruption. `expected_next` is the next segment's base.
    Sealed { expected_next: i64 },
    /// The newest segment: an invalid batch marks the torn tail of an interrupted write.
    Active,
}

pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    /// Shared with the `Flusher` while this segment is active, so group commit syncs this file.
    file: Arc<File>,
    /// Mapping of the whole file as it was when mapped (the preallocated length when active).
    map: Arc<Mmap>,
    /// Bytes of whole batches; everything below is immutable, reads never pass it.
    valid_len: u64,
    next_offset: i64,
    /// Largest batch max timestamp; -1 while empty.
    max_timestamp: i64,
    /// Wall-clock time of the first append (or the first batch's timestamp after a restart).
    first_append_ms: Option<i64>,
    /// Position of the last batch (None while empty): the recovery point checks this batch at open.
    last_batch_position: Option<u64>,
    offset_index: IndexFile,
    time_index: IndexFile,
    policy: IndexPolicy,
    /// Bytes CRC-checked when the segment was opened (0 when created, or trusted).
    scanned_at_open: u64,
}

impl Segment {
    /// Creates an empty active segment starting at `base_offset` (replacing stale files of that name).
    pub(crate) fn create(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<Segment, WalError> {
        let log_path = segment_file(dir, base_offset, LOG_EXT);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(io_at(&log_path))?;
        file.set_len(config.segment_bytes).map_err(io_at(&log_path))?;
        let map = map_log(&file, &log_path)?;
        let offset_index = IndexFile::create_active(
            &segment_file(dir, base_offset, INDEX_EXT),
            config.index_bytes_max,
            OFFSET_INDEX_ENTRY_BYTES,
            &[],
        )?;
        let time_index = IndexFile::create_active(
            &segment_file(dir, base_offset, TIME_INDEX_EXT),
            config.index_bytes_max,
            TIME_INDEX_ENTRY_BYTES,
            &[],
        )?;
        Ok(Segment {
            base_offset,
            log_path,
            file: Arc::new(file),
            map,
            valid_len: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            first_append_ms: None,
            last_batch_position: None,
            offset_index,
            time_index,
            policy: IndexPolicy::new(config.index_interval_bytes),
            scanned_at_open: 0,
        })
    }

    /// Opens a segment found on disk, validating every batch (CRC and offset continuity) and
    /// rebuilding its indexes; see [`Role`] for how an invalid batch is treated.
    pub(crate) fn open(dir: &Path, base_offset: i64, config: &LogConfig, role: Role) -> Result<Segment, WalError> {
        Segment::open_from(dir, base_offset, config, role, None)
    }

    /// [`Segment::open`], but when `prefix` is given (the newest segment holds the recovery point) the
    /// batches below it are not read: only its last batch is checked (CRC, size, offset), which ties the
    /// recovery point to the file's contents; if that check fails the whole segment is scanned.
    pub(crate) fn open_from(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        role: Role,
        prefix: Option<Prefix>,
    ) -> Result<Segment, WalError> {
        let (log_path, file, file_len) = open_log_file(dir, base_offset)?;
        let capacity = file_len.max(config.segment_bytes);
        if matches!(role, Role::Active) && file_len < capacity {
            file.set_len(capacity).map_err(io_at(&log_path))?;
        }
        let mut map = map_log(&file, &log_path)?;
        let prefix = prefix.filter(|p| {
            let ok = prefix_matches(&map, &p.mark);
            if !ok {
                tracing::warn!(segment = %log_path.display(), offset = p.mark.offset, position = p.mark.position,
                    "the recovery point does not match the segment's data; scanning the whole segment");
            }
            ok
        });
        let start = prefix
            .as_ref()
            .map_or_else(|| RecoveryMark::segment_start(base_offset, config.index_interval_bytes), |p| p.mark);
        let mut found = scan_from(&map, &start, true);
        if let Some(p) = &prefix {
            found.offset_entries.splice(0..0, p.offset_entries.iter().copied());
            found.time_entries.splice(0..0, p.time_entries.iter().copied());
        }
        let corrupt = |position: u64, reason: String| WalError::Corrupt {
            segment: log_path.clone(),
            position,
            reason,
        };
        match role {
            Role::Sealed { expected_next } => {
                if let Some((pos, fault)) = &found.stop {
                    if !is_all_zero(&map[*pos as usize..]) {
                        return Err(corrupt(*pos, fault.to_string()));
                    }
                    // A crash between the roll's fsync and its trim: the tail is preallocated zeros.
                    tracing::warn!(segment = %log_path.display(), valid_len = pos, file_len,
                        "trimming the zero tail of a sealed segment");
                    drop(map);
                    file.set_len(*pos).map_err(io_at(&log_path))?;
                    file.sync_all().map_err(io_at(&log_path))?;
                    map = map_log(&file, &log_path)?;
                }
                if found.next_offset != expected_next {
                    return Err(corrupt(
                        found.valid_len,
                        format!(
                            "segment ends before offset {} but the next segment starts at {expected_next}",
                            found.next_offset
                        ),
                    ));
                }
            }
            Role::Active => {
                if let Some((pos, fault)) = &found.stop {
                    if *fault != BatchFault::Zero {
                        tracing::warn!(segment = %log_path.display(), position = pos, reason = %fault,
                            "truncating the torn tail of the active segment");
                    }
                }
                if found.valid_len < map.len() as u64 {
                    // Shrink then re-extend: everything past the valid data reads as zeros, so a
                    // later shorter write can never leave an old batch that looks continuous.
                    drop(map);
                    file.set_len(found.valid_len).map_err(io_at(&log_path))?;
                    file.set_len(capacity).map_err(io_at(&log_path))?;
                    file.sync_all().map_err(io_at(&log_path))?;
                    map = map_log(&file, &log_path)?;
                }
            }
        }
        let index_path = segment_file(dir, base_offset, INDEX_EXT);
        let time_path = segment_file(dir, base_offset, TIME_INDEX_EXT);
        let (offset_index, time_index) = match role {
            Role::Sealed { .. } => (
                IndexFile::open_sealed(&index_path, OFFSET_INDEX_ENTRY_BYTES, &found.offset_entries)?,
                IndexFile::open_sealed(&time_path, TIME_INDEX_ENTRY_BYTES, &found.time_entries)?,
            ),
            Role::Active => (
                IndexFile::create_active(
                    &index_path,
                    config.index_bytes_max,
                    OFFSET_INDEX_ENTRY_BYTES,
                    &found.offset_entries,
                )?,
                IndexFile::create_active(
                    &time_path,
                    config.index_bytes_max,
                    TIME_INDEX_ENTRY_BYTES,
                    &found.time_entries,
                )?,
            ),
        };
        let first_append_ms = match &prefix {
            Some(p) if p.mark.position > 0 => p.mark.first_append_ms,
            _ => (found.valid_len > 0)
                .then(|| found.first_timestamp.filter(|ts| *ts >= 0).unwrap_or_else(crate::now_ms)),
        };
        Ok(Segment {
            base_offset,
            log_path,
            file: Arc::new(file),
            map,
            valid_len: found.valid_len,
            next_offset: found.next_offset,
            max_timestamp: found.max_timestamp,
            first_append_ms,
            last_batch_position: found.last_batch_position,
            offset_index,
            time_index,
            policy: found.policy,
            scanned_at_open: found.scanned_bytes,
        })
    }

    /// Opens a sealed segment wholly below the recovery point without scanning it: its data was
    /// fsynced and trimmed at roll before the recovery point moved past it. Its index files are used as
    /// they are once their entries pass a shape check, and the batches after the last offset index
    /// entry (at most about `index_interval_bytes`) are walked to check the segment ends exactly at its
    /// file length and at `expected_next`, and to find its largest timestamp. Ok(None) when any of that
    /// fails: the caller then scans the segment (and rebuilds its indexes) as without a recovery point.
    pub(crate) fn open_trusted(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        expected_next: i64,
    ) -> Result<Option<Segment>, WalError> {
        let (log_path, file, file_len) = open_log_file(dir, base_offset)?;
        let map = map_log(&file, &log_path)?;
        let Some(offset_index) =
            IndexFile::open_sealed_trusted(&segment_file(dir, base_offset, INDEX_EXT), OFFSET_INDEX_ENTRY_BYTES)?
        else {
            return Ok(None);
        };
        let Some(time_index) =
            IndexFile::open_sealed_trusted(&segment_file(dir, base_offset, TIME_INDEX_EXT), TIME_INDEX_ENTRY_BYTES)?
        else {
            return Ok(None);
        };
        let rel_end = expected_next - base_offset;
        if !offset_entries_valid(offset_index.entries_bytes(), rel_end, file_len)
            || !time_entries_valid(time_index.entries_bytes(), rel_end)
        {
            return Ok(None);
        }
        let (tail_pos, tail_offset) = last_offset_entry(&offset_index)
            .map_or((0, base_offset), |(rel, pos)| (pos, base_offset + i64::from(rel)));
        let Some((next_offset, last_batch_position)) = walk_to_end(&map, tail_pos, tail_offset) else {
            return Ok(None);
        };
        if next_offset != expected_next {
            return Ok(None);
        }
        let time_entry = last_time_entry(&time_index);
        let from = time_entry.map_or(0, |(_, rel)| offset_lookup(&offset_index, rel));
        let interval = u64::from(config.index_interval_bytes);
        let Some(max_timestamp) = max_timestamp_after(&map, base_offset, time_entry, from, interval) else {
            return Ok(None);
        };
        Ok(Some(Segment {
            base_offset,
            log_path,
            file: Arc::new(file),
            map,
            valid_len: file_len,
            next_offset,
            max_timestamp,
            first_append_ms: None,
            last_batch_position,
            offset_index,
            time_index,
            policy: IndexPolicy::new(config.index_interval_bytes),
            scanned_at_open: 0,
        }))
    }

    /// This segment's state at its end, as a recovery point would record it.
    pub(crate) fn mark(&self) -> RecoveryMark {
        RecoveryMark {
            offset: self.next_offset,
            segment_base: self.base_offset,
            position: self.valid_len,
            last_batch_position: self.last_batch_position,
            offset_entries: u32::try_from(self.offset_index.len()).unwrap_or(u32::MAX),
            time_entries: u32::try_from(self.time_index.len()).unwrap_or(u32::MAX),
            policy: self.policy,
            max_timestamp: self.max_timestamp,
            first_append_ms: self.first_append_ms,
        }
    }

    /// The files group commit and the recovery point fsync while this segment is active.
    pub(crate) fn files(&self) -> SegmentFiles {
        SegmentFiles {
            base_offset: self.base_offset,
            log: Arc::clone(&self.file),
            offset_index: Arc::clone(self.offset_index.file()),
            time_index: Arc::clone(self.time_index.file()),
        }
    }

    pub(crate) fn scanned_at_open(&self) -> u64 {
        self.scanned_at_open
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub(crate) fn valid_len(&self) -> u64 {
        self.valid_len
    }
    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Why the active segment must roll before taking a batch of `size` bytes ending at `last_offset`
    /// (None: it may take it). An empty segment never rolls.
    pub(crate) fn roll_reason(&self, size: u64, last_offset: i64, now_ms: i64, config: &LogConfig) -> Option<&'static str> {
        if self.valid_len == 0 {
            return None;
        }
        if self.valid_len + size > config.segment_bytes || self.valid_len + size > self.map.len() as u64 {
            return Some("size");
        }
        if self.offset_index.is_full() || self.time_index.is_full() {
            return Some("index full");
        }
        if last_offset - self.base_offset > i64::from(u32::MAX) {
            return Some("relative offset range");
        }
        let age_ms = self.first_append_ms.map_or(0, |first| now_ms.saturating_sub(first));
        if u64::try_from(age_ms).unwrap_or(0) >= config.segment_ms {
            return Some("age");
        }
        None
    }

    /// Writes a validated batch at the end — `head` (its stamped first bytes, or empty) then `rest` —
    /// and indexes it. Two positioned writes rather than a copy into one buffer: the batch can be a
    /// megabyte, a second `pwrite` costs a microsecond. No fsync.
    ///
    /// All or nothing: when a write fails (ENOSPC on a full disk, EIO) the segment is left exactly as
    /// it was — `valid_len`, next offset, index entries and the index rule's state unchanged — and
    /// the bytes that did reach the file past `valid_len` are cut off again ([`Segment::discard_tail`]),
    /// so readers never see them, recovery never takes them for a batch, and the blocks are freed.
    pub(crate) fn append(&mut self, head: &[u8], rest: &[u8], header: &BatchHeader, now_ms: i64) -> Result<(), WalError> {
        let size = (head.len() + rest.len()) as u64;
        let end = self.valid_len + size;
        if end > self.map.len() as u64 {
            return Err(WalError::BatchTooLarge { size, segment_bytes: self.map.len() as u64 });
        }
        let policy_before = self.policy;
        if let Err(e) = self.write_and_index(head, rest, header) {
            self.policy = policy_before;
            self.discard_tail();
            return Err(e);
        }
        self.last_batch_position = Some(self.valid_len);
        self.valid_len = end;
        self.next_offset = header.last_offset + 1;
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
        self.first_append_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// The writes of [`Segment::append`]: the batch bytes at `valid_len`, then its index entries.
    /// On error, any index entry it pushed is popped again; the caller restores the rest.
    fn write_and_index(&mut self, head: &[u8], rest: &[u8], header: &BatchHeader) -> Result<(), WalError> {
        if !head.is_empty() {
            self.file.write_all_at(head, self.valid_len).map_err(io_at(&self.log_path))?;
        }
        self.file.write_all_at(rest, self.valid_len + head.len() as u64).map_err(io_at(&self.log_path))?;
        let entries = self.policy.observe(header, self.base_offset);
        let mut pushed_offset = false;
        if let Some(e) = entries.offset {
            pushed_offset = self.offset_index.push(&e)?;
            if !pushed_offset {
                tracing::debug!(segment = %self.log_path.display(), "offset index full, entry skipped");
            }
        }
        if let Some(e) = entries.time {
            match self.time_index.push(&e) {
                Ok(true) => {}
                Ok(false) => tracing::debug!(segment = %self.log_path.display(), "time index full, entry skipped"),
                Err(err) => {
                    if pushed_offset {
                        self.offset_index.pop();
                    }
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// After a failed append: cuts the file back to `valid_len` and extends it again to the mapped
    /// length, so the bytes past the valid data read as zeros (a hole) again and their blocks are
    /// freed. Sound for readers (`mmap` module): nothing below `valid_len` is touched. Best effort:
    /// if even this fails, the stray bytes stay past `valid_len` where reads never look, the next
    /// append writes over them from the same position, and recovery's scan stops at them (they
    /// never hold a whole batch that continues the log's offsets after a later, shorter append).
    fn discard_tail(&self) {
        let capacity = self.map.len() as u64;
        let cut = self.file.set_len(self.valid_len).and_then(|()| self.file.set_len(capacity));
        if let Err(e) = cut {
            tracing::warn!(segment = %self.log_path.display(), valid_len = self.valid_len, error = %e,
                "could not cut the bytes of a failed append; they stay past the valid end");
        }
    }

    /// Makes the segment immutable: fsync, trim the preallocated tail, trim and fsync the indexes.
    pub(crate) fn seal(&mut self) -> Result<(), WalError> {
        self.file.sync_data().map_err(io_at(&self.log_path))?;
        self.file.set_len(self.valid_len).map_err(io_at(&self.log_path))?;
        self.file.sync_all().map_err(io_at(&self.log_path))?;
        self.offset_index.seal()?;
        self.time_index.seal()
    }

    /// Header of the stored batch at `position` (which must be a batch boundary below `valid_len`).
    pub(crate) fn header_at(&self, position: u64) -> Result<BatchHeader, WalError> {
        let bytes = &self.map[position as usize..self.valid_len as usize];
        check_batch(bytes, position, false).map_err(|fault| WalError::Corrupt {
            segment: self.log_path.clone(),
            position,
            reason: fault.to_string(),
        })
    }

    /// Calls `f` with each batch header from `position` to the end until it returns false.
    pub(crate) fn walk_from(&self, mut position: u64, mut f: impl FnMut(&BatchHeader) -> bool) -> Result<(), WalError> {
        while position < self.valid_len {
            let h = self.header_at(position)?;
            if !f(&h) {
                break;
            }
            position += u64::from(h.size);
        }
        Ok(())
    }

    /// [`Segment::walk_from`] for long walks over the headers of data that is not read next (the
    /// producer-state and leader-epoch rebuild when a partition opens): the kernel is told the map is
    /// read at random meanwhile. On a cold page cache a mapped read otherwise faults in a whole
    /// readahead window (128 KiB by default) around every header — with 1 MB batches that walk read an
    /// eighth of the log; with the hint, one page per header. On a warm cache it changes nothing.
    pub(crate) fn walk_headers_from(&self, position: u64, f: impl FnMut(&BatchHeader) -> bool) -> Result<(), WalError> {
        with_random_access(&self.map, || self.walk_from(position, f))
    }

    /// The batch containing `offset`, if this segment holds it.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<BatchHeader>, WalError> {
        if offset < self.base_offset || offset >= self.next_offset {
            return Ok(None);
        }
        let rel = u32::try_from(offset - self.base_offset).unwrap_or(u32::MAX);
        self.first_from(offset_lookup(&self.offset_index, rel), |h| h.last_offset >= offset)
    }

    /// First batch whose max timestamp is >= `ts`.
    pub(crate) fn find_timestamp(&self, ts: i64) -> Result<Option<BatchHeader>, WalError> {
        if self.max_timestamp < ts {
            return Ok(None);
        }
        let start = time_lookup(&self.time_index, ts).map_or(0, |rel| offset_lookup(&self.offset_index, rel));
        self.first_from(start, |h| h.max_timestamp >= ts)
    }

    /// The first batch at or after file position `start` that satisfies `wanted`.
    fn first_from(&self, start: u64, wanted: impl Fn(&BatchHeader) -> bool) -> Result<Option<BatchHeader>, WalError> {
        let mut found = None;
        self.walk_from(start, |h| {
            if wanted(h) {
                found = Some(*h);
                false
            } else {
                true
            }
        })?;
        Ok(found)
    }

    /// Zero-copy slice of stored bytes; `end` must not pass `valid_len`.
    pub(crate) fn slice(&self, start: u64, end: u64) -> Bytes {
        let end = end.min(self.valid_len) as usize;
        match MappedSlice::new(self.map.clone(), (start as usize).min(end), end) {
            Some(s) => Bytes::from_owner(s),
            None => Bytes::new(),
        }
    }

    /// Timestamp retention compares against: the largest batch timestamp, or the file's modification
    /// time when the batches carry none.
    pub(crate) fn retention_timestamp(&self) -> i64 {
        if self.max_timestamp >= 0 {
            return self.max_timestamp;
        }
        self.file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Cuts the segment at `position` (a batch boundary) and reopens it as the active segment. When no
    /// reader holds a slice of the mapping the file is cut in place; otherwise the kept prefix is
    /// copied to a new file renamed over the old one, so readers keep the bytes they hold (see `mmap`).
    pub(crate) fn truncate_in_place(&mut self, position: u64, dir: &Path, config: &LogConfig) -> Result<(), WalError> {
        let path = self.log_path.clone();
        let cut = position.min(self.valid_len);
        if Arc::strong_count(&self.map) == 1 {
            // We hold `&mut` of the only owner of the mapping: no slice exists and none can be made
            // before `*self` is replaced below, so nothing touches the pages this cuts off.
            self.file.set_len(cut).map_err(io_at(&path))?;
            self.file.sync_all().map_err(io_at(&path))?;
        } else {
            let tmp = path.with_extension(format!("{LOG_EXT}.{TMP_EXT}"));
            fs::write(&tmp, &self.map[..cut as usize]).map_err(io_at(&tmp))?;
            File::open(&tmp).and_then(|f| f.sync_all()).map_err(io_at(&tmp))?;
            fs::rename(&tmp, &path).map_err(io_at(&path))?;
            sync_dir(dir)?;
        }
        *self = Segment::open(dir, self.base_offset, config, Role::Active)?;
        Ok(())
    }

    /// Removes the segment's files. Readers still holding slices keep the unlinked inode alive.
    pub(crate) fn remove_files(&self, dir: &Path) -> Result<(), WalError> {
        remove_segment_files(dir, self.base_offset)
    }
}

/// Removes the files of the segment at `base_offset` in `dir`, those that exist.
pub(crate) fn remove_segment_files(dir: &Path, base_offset: i64) -> Result<(), WalError> {
    for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
        let path = segment_file(dir, base_offset, ext);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_at(&path)(e)),
            _ => {}
        }
    }
    Ok(())
}

/// Whether the batch the recovery point names as the last of its prefix is in the file, whole and
/// valid (CRC), ending exactly at the recovery point's position with the offset before its offset.
fn prefix_matches(data: &[u8], mark: &RecoveryMark) -> bool {
    let Ok(end) = usize::try_from(mark.position) else { return false };
    if end > data.len() {
        return false;
    }
    let Some(last) = mark.last_batch_position else {
        return end == 0 && mark.offset == mark.segment_base;
    };
    let Ok(at) = usize::try_from(last) else { return false };
    match check_batch(&data[at..end], last, true) {
        Ok(h) => at + h.size as usize == end && h.last_offset + 1 == mark.offset && h.base_offset >= mark.segment_base,
        Err(_) => false,
    }
}

/// Opens an existing segment's log file for reading and writing; returns its path, the file and its length.
fn open_log_file(dir: &Path, base_offset: i64) -> Result<(PathBuf, File, u64), WalError> {
    let log_path = segment_file(dir, base_offset, LOG_EXT);
    let file = OpenOptions::new().read(true).write(true).open(&log_path).map_err(io_at(&log_path))?;
    let file_len = file.metadata().map_err(io_at(&log_path))?.len();
    Ok((log_path, file, file_len))
}
