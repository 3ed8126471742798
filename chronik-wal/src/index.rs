//! Sparse, memory-mapped indexes of one segment, and the rule that decides when an entry is added.
//!
//! * Offset index: `(relative offset u32 LE, position u32 LE)`, 8 bytes: the byte position of the batch
//!   starting at `segment base + relative offset`. Looking up an offset gives the greatest entry at or
//!   below it; the reader then walks batch headers forward from there.
//! * Time index: `(max timestamp i64 LE, relative offset u32 LE)`, 12 bytes: the batch at that offset
//!   raised the segment's largest timestamp to that value, so every batch up to it is no newer.
//!
//! The rule ([`IndexPolicy`]) is a pure function of the batch sequence, so recovery rebuilds exactly
//! the entries that appends wrote, and a sealed index on disk can be checked by comparing bytes.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::batch::BatchHeader;
use crate::error::{io_at, WalError};
use crate::mmap::map_index;
use crate::on_demand_file::OnDemandFile;

/// Bytes per offset index entry.
pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
/// Bytes per time index entry.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

/// Decides which batches get index entries: one offset entry per `interval_bytes` of log data, one
/// time entry when a batch raises the largest timestamp and `interval_bytes` passed since the last.
/// Its state after a prefix of the segment is kept in the recovery point, so appends after a restart
/// continue the rule exactly without reading the prefix again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexPolicy {
    interval_bytes: u64,
    pub(crate) last_offset_entry_position: u64,
    pub(crate) last_time_entry_position: u64,
    pub(crate) max_timestamp: Option<i64>,
}

/// Entries one batch adds, already encoded.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NewEntries {
    pub offset: Option<[u8; OFFSET_INDEX_ENTRY_BYTES]>,
    pub time: Option<[u8; TIME_INDEX_ENTRY_BYTES]>,
}

impl IndexPolicy {
    pub(crate) fn new(interval_bytes: u32) -> IndexPolicy {
        IndexPolicy {
            interval_bytes: u64::from(interval_bytes),
            last_offset_entry_position: 0,
            last_time_entry_position: 0,
            max_timestamp: None,
        }
    }

    pub(crate) fn interval_bytes(&self) -> u32 {
        u32::try_from(self.interval_bytes).unwrap_or(u32::MAX)
    }

    /// Feeds the next batch of the segment (in order) and returns the entries it earns. Offsets or
    /// positions that do not fit u32 earn no entry (the roll rule keeps them in range; a sparse index
    /// tolerates a missing entry anyway).
    pub(crate) fn observe(&mut self, h: &BatchHeader, segment_base: i64) -> NewEntries {
        let mut out = NewEntries::default();
        let rel = u32::try_from(h.base_offset - segment_base).ok();
        let pos = u32::try_from(h.position).ok();
        if h.position >= self.last_offset_entry_position + self.interval_bytes {
            if let (Some(rel), Some(pos)) = (rel, pos) {
                let mut e = [0u8; OFFSET_INDEX_ENTRY_BYTES];
                e[..4].copy_from_slice(&rel.to_le_bytes());
                e[4..].copy_from_slice(&pos.to_le_bytes());
                out.offset = Some(e);
                self.last_offset_entry_position = h.position;
            }
        }
        let grows = self.max_timestamp.is_none_or(|m| h.max_timestamp > m);
        if grows {
            self.max_timestamp = Some(h.max_timestamp);
            if h.position >= self.last_time_entry_position + self.interval_bytes {
                if let Some(rel) = rel {
                    let mut e = [0u8; TIME_INDEX_ENTRY_BYTES];
                    e[..8].copy_from_slice(&h.max_timestamp.to_le_bytes());
                    e[8..].copy_from_slice(&rel.to_le_bytes());
                    out.time = Some(e);
                    self.last_time_entry_position = h.position;
                }
            }
        }
        out
    }
}

/// A file of fixed-size entries, memory-mapped read-only. Active indexes are sized to their capacity
/// (a sparse file: no blocks are allocated until an entry is written); sealed ones are trimmed to
/// their entries.
///
/// Entries are written with `pwrite`, never through the mapping: on a full disk the first store
/// into a not-yet-allocated page of a shared mapping cannot get a block and the kernel answers with
/// SIGBUS, killing the broker, where `pwrite` returns ENOSPC, which the append rolls back.
pub(crate) struct IndexFile {
    path: PathBuf,
    /// Written through a descriptor held only from a write until the next sync (`on_demand_file`).
    /// Shared with the `Flusher` while the segment is active: it fsyncs the entries a recovery point
    /// names before writing it, and closes the descriptor.
    file: Arc<OnDemandFile>,
    map: Mmap,
    entry_bytes: usize,
    entries: usize,
    /// Entries the file can hold; pushes beyond it are refused.
    capacity: usize,
    /// Whether an entry was skipped because no descriptor could be opened (logged once).
    skipped_for_descriptors: bool,
}

impl IndexFile {
    /// Creates (replacing any old file) an active index of `capacity_bytes`, holding `initial`.
    pub(crate) fn create_active(
        path: &Path,
        capacity_bytes: u64,
        entry_bytes: usize,
        initial: &[u8],
    ) -> Result<IndexFile, WalError> {
        let capacity = (usize::try_from(capacity_bytes).unwrap_or(usize::MAX) / entry_bytes).max(initial.len() / entry_bytes);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io_at(path))?;
        file.set_len((capacity * entry_bytes) as u64).map_err(io_at(path))?;
        if !initial.is_empty() {
            file.write_all_at(initial, 0).map_err(io_at(path))?;
        }
        let map = map_index(&file, path)?;
        Ok(IndexFile::new(path, map, entry_bytes, initial.len() / entry_bytes, capacity))
    }

    /// Opens a sealed index; keeps the file when it already holds exactly `expected`, rewrites it
    /// (and fsyncs) otherwise — e.g. after a crash between fsync and trim, or a changed interval.
    pub(crate) fn open_sealed(path: &Path, entry_bytes: usize, expected: &[u8]) -> Result<IndexFile, WalError> {
        let matches = fs::read(path).map(|b| b == expected).unwrap_or(false);
        if !matches {
            tracing::debug!(path = %path.display(), "rewriting sealed index from the log");
            fs::write(path, expected).map_err(io_at(path))?;
        }
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(io_at(path))?;
        if !matches {
            file.sync_all().map_err(io_at(path))?;
        }
        let map = map_index(&file, path)?;
        let entries = expected.len() / entry_bytes;
        Ok(IndexFile::new(path, map, entry_bytes, entries, entries))
    }

    /// Opens a sealed index as it is on disk, without a log scan to compare it with (a segment below
    /// the recovery point). None when it is missing or its length is not a whole number of entries;
    /// the caller checks the entries ([`offset_entries_valid`], [`time_entries_valid`]).
    pub(crate) fn open_sealed_trusted(path: &Path, entry_bytes: usize) -> Result<Option<IndexFile>, WalError> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at(path)(e)),
        };
        let len = file.metadata().map_err(io_at(path))?.len();
        let Ok(len) = usize::try_from(len) else { return Ok(None) };
        if len % entry_bytes != 0 {
            return Ok(None);
        }
        let map = map_index(&file, path)?;
        let entries = len / entry_bytes;
        Ok(Some(IndexFile::new(path, map, entry_bytes, entries, entries)))
    }

    /// An index over `map` (whose file descriptor the caller drops: the map needs none).
    fn new(path: &Path, map: Mmap, entry_bytes: usize, entries: usize, capacity: usize) -> IndexFile {
        IndexFile {
            path: path.to_path_buf(),
            file: Arc::new(OnDemandFile::closed(path)),
            map,
            entry_bytes,
            entries,
            capacity,
            skipped_for_descriptors: false,
        }
    }

    pub(crate) fn file(&self) -> &Arc<OnDemandFile> {
        &self.file
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    /// The bytes of every entry.
    pub(crate) fn entries_bytes(&self) -> &[u8] {
        &self.map[..self.entries * self.entry_bytes]
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.capacity
    }

    pub(crate) fn entry(&self, i: usize) -> &[u8] {
        &self.map[i * self.entry_bytes..(i + 1) * self.entry_bytes]
    }

    /// Appends an entry; returns Ok(false) (and writes nothing) when the index is full. A failed
    /// write (ENOSPC) leaves the entry count as it was: whatever reached the file past the count is
    /// never read and the next push writes over it.
    pub(crate) fn push(&mut self, entry: &[u8]) -> Result<bool, WalError> {
        if self.is_full() || entry.len() != self.entry_bytes {
            return Ok(false);
        }
        let at = (self.entries * self.entry_bytes) as u64;
        match self.file.write_all_at(entry, at) {
            Ok(()) => {}
            // The index is sparse: an entry that cannot get a descriptor is skipped like one that
            // does not fit, which only makes lookups near it walk further. The append goes on.
            Err(e) if is_out_of_descriptors(&e) => {
                if !self.skipped_for_descriptors {
                    self.skipped_for_descriptors = true;
                    tracing::warn!(path = %self.path.display(), error = %e,
                        "no file descriptor for an index entry; skipping entries of this index until one opens");
                }
                return Ok(false);
            }
            Err(e) => return Err(io_at(&self.path)(e)),
        }
        self.skipped_for_descriptors = false;
        self.entries += 1;
        Ok(true)
    }

    /// Forgets the last entry (an append whose other writes failed is being rolled back).
    pub(crate) fn pop(&mut self) {
        self.entries = self.entries.saturating_sub(1);
    }

    /// Trims the file to its entries and fsyncs it. Called once, when the segment is sealed.
    pub(crate) fn seal(&mut self) -> Result<(), WalError> {
        self.file
            .set_len_sync_and_close((self.entries * self.entry_bytes) as u64)
            .map_err(io_at(&self.path))?;
        self.capacity = self.entries;
        Ok(())
    }

    /// Index of the last entry for which `below(entry)` holds, given that it holds for a prefix.
    fn last_where(&self, below: impl Fn(&[u8]) -> bool) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if below(self.entry(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }
}

/// Out of file descriptors: EMFILE (this process's limit) or ENFILE (the system's); Linux errno values.
fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(e.raw_os_error(), Some(ENFILE | EMFILE))
}

fn u32_le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
fn i64_le(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_le_bytes(a)
}

/// Whether `bytes` are offset index entries a segment of `data_len` bytes holding relative offsets
/// below `rel_end` can have: relative offsets and positions strictly increasing, positions inside the
/// data. Cheap (no log read); a stale or garbage index fails it and is rebuilt from the log.
pub(crate) fn offset_entries_valid(bytes: &[u8], rel_end: i64, data_len: u64) -> bool {
    if !bytes.len().is_multiple_of(OFFSET_INDEX_ENTRY_BYTES) {
        return false;
    }
    let mut prev: Option<(u32, u32)> = None;
    for e in bytes.chunks_exact(OFFSET_INDEX_ENTRY_BYTES) {
        let (rel, pos) = (u32_le(&e[..4]), u32_le(&e[4..]));
        let increasing = prev.is_none_or(|(r, p)| rel > r && pos > p);
        if !increasing || i64::from(rel) >= rel_end || u64::from(pos) >= data_len {
            return false;
        }
        prev = Some((rel, pos));
    }
    true
}

/// Whether `bytes` are time index entries of a segment holding relative offsets below `rel_end`:
/// timestamps and relative offsets strictly increasing (an entry is added only when the largest
/// timestamp grows).
pub(crate) fn time_entries_valid(bytes: &[u8], rel_end: i64) -> bool {
    if !bytes.len().is_multiple_of(TIME_INDEX_ENTRY_BYTES) {
        return false;
    }
    let mut prev: Option<(i64, u32)> = None;
    for e in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES) {
        let (ts, rel) = (i64_le(&e[..8]), u32_le(&e[8..]));
        if !prev.is_none_or(|(t, r)| ts > t && rel > r) || i64::from(rel) >= rel_end {
            return false;
        }
        prev = Some((ts, rel));
    }
    true
}

/// The last offset index entry: (relative offset, position).
pub(crate) fn last_offset_entry(index: &IndexFile) -> Option<(u32, u64)> {
    let i = index.entries.checked_sub(1)?;
    let e = index.entry(i);
    Some((u32_le(&e[..4]), u64::from(u32_le(&e[4..]))))
}

/// The last time index entry: (max timestamp, relative offset).
pub(crate) fn last_time_entry(index: &IndexFile) -> Option<(i64, u32)> {
    let i = index.entries.checked_sub(1)?;
    let e = index.entry(i);
    Some((i64_le(&e[..8]), u32_le(&e[8..])))
}

/// Byte position of the greatest indexed batch starting at or below `relative_offset` (0 if none).
pub(crate) fn offset_lookup(index: &IndexFile, relative_offset: u32) -> u64 {
    index
        .last_where(|e| u32_le(&e[..4]) <= relative_offset)
        .map_or(0, |i| u64::from(u32_le(&index.entry(i)[4..])))
}

/// Relative offset of a batch from which a scan for the first batch with max timestamp >= `ts` may
/// start: the last entry whose timestamp is below `ts` (None: start at the segment's beginning).
pub(crate) fn time_lookup(index: &IndexFile, ts: i64) -> Option<u32> {
    index
        .last_where(|e| i64_le(&e[..8]) < ts)
        .map(|i| u32_le(&index.entry(i)[8..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(base: i64, position: u64, ts: i64) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            last_offset: base,
            last_offset_delta: 0,
            partition_leader_epoch: 0,
            attributes: 0,
            max_timestamp: ts,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: 1,
            position,
            size: 100,
        }
    }

    #[test]
    fn policy_adds_entries_every_interval_and_only_when_time_grows() {
        let mut p = IndexPolicy::new(250);
        let mut offs = vec![];
        let mut times = vec![];
        for i in 0..10u64 {
            // timestamps: 0,10,20,30,40,40,40,70,80,90 (some do not grow)
            let ts = if (5..7).contains(&i) { 40 } else { i as i64 * 10 };
            let e = p.observe(&header(100 + i as i64, i * 100, ts), 100);
            if e.offset.is_some() {
                offs.push(i);
            }
            if e.time.is_some() {
                times.push(i);
            }
        }
        assert_eq!(offs, vec![3, 6, 9]);
        assert_eq!(times, vec![3, 7]);
    }

    #[test]
    fn lookups_find_greatest_entry_below() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = IndexFile::create_active(&dir.path().join("x.index"), 80, 8, &[]).unwrap();
        for (rel, pos) in [(5u32, 500u32), (9, 900), (20, 2000)] {
            let mut e = [0u8; 8];
            e[..4].copy_from_slice(&rel.to_le_bytes());
            e[4..].copy_from_slice(&pos.to_le_bytes());
            assert!(idx.push(&e).unwrap());
        }
        assert_eq!(offset_lookup(&idx, 4), 0);
        assert_eq!(offset_lookup(&idx, 5), 500);
        assert_eq!(offset_lookup(&idx, 19), 900);
        assert_eq!(offset_lookup(&idx, 1000), 2000);
        idx.seal().unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("x.index")).unwrap().len(), 24);
        assert!(idx.is_full());

        let mut t = IndexFile::create_active(&dir.path().join("x.timeindex"), 36, 12, &[]).unwrap();
        for (ts, rel) in [(100i64, 3u32), (200, 8), (300, 12)] {
            let mut e = [0u8; 12];
            e[..8].copy_from_slice(&ts.to_le_bytes());
            e[8..].copy_from_slice(&rel.to_le_bytes());
            assert!(t.push(&e).unwrap());
        }
        assert!(!t.push(&[0u8; 12]).unwrap(), "a full index refuses entries");
        assert_eq!(time_lookup(&t, 100), None);
        assert_eq!(time_lookup(&t, 101), Some(3));
        assert_eq!(time_lookup(&t, 1000), Some(12));
    }
}
