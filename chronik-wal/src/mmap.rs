//! The only module that touches memmap2's unsafe constructors.
//!
//! # Why mapping our segment files is sound
//! `memmap2::Mmap::map` is unsafe because the compiler assumes a `&[u8]` never changes and the OS
//! raises SIGBUS when a mapped page lies past the end of the file. This crate upholds, for every
//! byte range `[0, valid_len)` that a reader can obtain (through `PartitionLog::read`, which only ever
//! slices below a segment's `valid_len`):
//! 1. **Never rewritten.** Appends write at `valid_len` and beyond, then advance it; bytes below it
//!    are never written again through the same inode. The one operation that lowers `valid_len`,
//!    `truncate_to`, rewrites a file in place only when `Arc::strong_count` of its mapping is 1 while
//!    it holds `&mut PartitionLog` (so no reader holds a slice and none can appear); otherwise it
//!    writes the kept prefix to a new file and renames it over the old name, leaving the old inode,
//!    and the bytes readers hold, untouched.
//! 2. **Never cut off.** A file is shrunk only to a length >= every `valid_len` handed out (sealing
//!    trims to exactly `valid_len`), or, in the in-place truncation above, when no slice exists.
//!    Deleting a file (retention, topic deletion) unlinks it; the inode and its pages live on until
//!    the last mapping is dropped.
//! 3. **No other writers.** The partition directory belongs to one `PartitionLog`; other processes
//!    writing into it are outside the contract (like any database's data directory).
//!
//! Index files are mapped read-only too and owned by exactly one index value, which is the only code
//! reading or writing them (with `pwrite`, past its entry count); readers never get slices of index
//! maps. Nothing is ever stored through a mapping: a store into an unallocated page of a full file
//! system raises SIGBUS instead of returning ENOSPC.
#![allow(unsafe_code)]

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use memmap2::{Advice, Mmap};

use crate::error::{io_at, WalError};

/// Maps the whole current length of a segment's `.log` file read-only.
pub(crate) fn map_log(file: &File, path: &Path) -> Result<Arc<Mmap>, WalError> {
    // SAFETY: see the module docs: mapped bytes below `valid_len` are never rewritten or truncated
    // away while any slice of them exists.
    let map = unsafe { Mmap::map(file) }.map_err(io_at(path))?;
    Ok(Arc::new(map))
}

/// Maps an index file read-only.
pub(crate) fn map_index(file: &File, path: &Path) -> Result<Mmap, WalError> {
    // SAFETY: the index value that owns this map is the only reader and writer of the file; it
    // writes only past its entry count, shrinks the file only after its last write and never reads
    // past its entry count.
    let map = unsafe { Mmap::map(file) }.map_err(io_at(path))?;
    // Index lookups read single entries: without this advice a page fault reads around the page (up
    // to the device's read_ahead_kb, 8 MiB on the benchmark machine), zero-filling the holes of a
    // sparse active index; with 1,000 partitions taking writes through the mapping that was 75 % of
    // the broker's CPU. Advice only: a failure changes nothing but speed.
    if let Err(e) = map.advise(Advice::Random) {
        tracing::debug!(path = %path.display(), error = %e, "madvise(RANDOM) on an index map failed");
    }
    Ok(map)
}

/// Runs `walk` with the kernel told that `map` is read at random (`MADV_RANDOM`: no readahead around
/// page faults), then restores normal readahead. A hint (safe, and its failure is ignored): for walks
/// that touch one batch header per batch over a possibly cold page cache. Readers of the same map
/// meanwhile only lose readahead.
pub(crate) fn with_random_access<T>(map: &Mmap, walk: impl FnOnce() -> T) -> T {
    let _ = map.advise(Advice::Random);
    let out = walk();
    let _ = map.advise(Advice::Normal);
    out
}

/// Owner behind a zero-copy `Bytes`: keeps the mapping alive for as long as the slice is used.
pub(crate) struct MappedSlice {
    map: Arc<Mmap>,
    start: usize,
    end: usize,
}

impl MappedSlice {
    /// `start..end` must lie within `map` (checked by the caller against `valid_len <= map.len()`).
    pub(crate) fn new(map: Arc<Mmap>, start: usize, end: usize) -> Option<MappedSlice> {
        (start <= end && end <= map.len()).then_some(MappedSlice { map, start, end })
    }
}

impl AsRef<[u8]> for MappedSlice {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.start..self.end]
    }
}
