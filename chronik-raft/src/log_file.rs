//! The metadata log file `raft/log.bin`: frames (see [`crate::frame`]) of JSON log entries, appended
//! in index order. Synchronous; the async log store runs these calls on the blocking pool.
//!
//! The file may begin with entries at or below the purge point that were not yet compacted away;
//! the log store ignores them. [`LogFile::compact`] rewrites the file without them once they make up
//! at least half of it (and at least [`COMPACT_STALE_BYTES_MIN`]), so compaction costs stay linear.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::durable::sync_parent;
use crate::error::StoreError;
use crate::frame;
use crate::types::LogEntry;

/// Name of the log file inside the raft directory.
pub const LOG_FILE_NAME: &str = "log.bin";
/// Stale (purged) bytes at the head of the file below which compaction is not worth a rewrite.
pub const COMPACT_STALE_BYTES_MIN: u64 = 64 << 10;

/// An open log file and where each entry's frame starts.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    /// Length of the valid content; appends go here.
    len: u64,
    /// Log index → byte offset of its frame, for truncation and compaction.
    offsets: BTreeMap<u64, u64>,
}

/// What [`LogFile::open`] found.
#[derive(Debug)]
pub struct Recovered {
    pub file: LogFile,
    /// Every entry in the file, in file order.
    pub entries: Vec<LogEntry>,
    /// Bytes of torn tail that were cut off, 0 when the file ended cleanly.
    pub torn_bytes: u64,
}

impl LogFile {
    /// Open (creating if needed) the log file in `dir`, cutting off a torn tail durably.
    pub fn open(dir: &Path) -> Result<Recovered, StoreError> {
        let path = dir.join(LOG_FILE_NAME);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(StoreError::io("open", &path))?;
        if !existed {
            sync_parent(&path)?;
        }
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(StoreError::io("read", &path))?;
        let scan = frame::scan(&buf).map_err(|c| StoreError::Corrupt { path: path.clone(), offset: c.offset, reason: c.reason })?;
        let mut entries = Vec::with_capacity(scan.frames.len());
        let mut offsets = BTreeMap::new();
        for f in &scan.frames {
            let entry: LogEntry = serde_json::from_slice(&buf[f.payload.clone()]).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                offset: f.offset,
                reason: format!("frame checksum is good but the entry does not decode: {e}"),
            })?;
            offsets.insert(entry.log_id.index, f.offset);
            entries.push(entry);
        }
        let torn_bytes = buf.len() as u64 - scan.valid_len;
        if let Some(why) = scan.torn_tail {
            tracing::warn!(path = %path.display(), valid_len = scan.valid_len, torn_bytes, reason = why, "dropping torn tail of metadata log");
            file.set_len(scan.valid_len).map_err(StoreError::io("truncate torn tail of", &path))?;
            file.sync_all().map_err(StoreError::io("fsync", &path))?;
        }
        Ok(Recovered { file: LogFile { path, file, len: scan.valid_len, offsets }, entries, torn_bytes })
    }

    /// Append already-framed `bytes` holding the entries whose indexes and frame offsets (relative to
    /// the start of `bytes`) are given, then fsync: when this returns they are durable.
    ///
    /// On a failed write (ENOSPC) the bytes that reached the file are cut off again, best effort, so
    /// the file ends at its last whole entry; openraft then stops the Raft core anyway (a storage
    /// error is fatal to it), and a restart recovers from what is on disk (a torn tail is cut).
    pub fn append(&mut self, bytes: &[u8], frames: &[(u64, u64)]) -> Result<(), StoreError> {
        self.file.seek(SeekFrom::Start(self.len)).map_err(StoreError::io("seek", &self.path))?;
        if let Err(e) = self.file.write_all(bytes) {
            if let Err(cut) = self.file.set_len(self.len) {
                tracing::warn!(path = %self.path.display(), error = %cut, "could not cut a failed metadata log append");
            }
            return Err(StoreError::io("append to", &self.path)(e));
        }
        self.file.sync_data().map_err(StoreError::io("fsync", &self.path))?;
        for (index, rel) in frames {
            self.offsets.insert(*index, self.len + rel);
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Remove the entries with index `>= index`, durably.
    pub fn truncate_from(&mut self, index: u64) -> Result<(), StoreError> {
        let Some(cut) = self.offsets.range(index..).next().map(|(_, off)| *off) else {
            return Ok(());
        };
        self.file.set_len(cut).map_err(StoreError::io("truncate", &self.path))?;
        self.file.sync_all().map_err(StoreError::io("fsync", &self.path))?;
        self.offsets.split_off(&index);
        self.len = cut;
        Ok(())
    }

    /// Highest index in the file.
    pub fn last_index(&self) -> Option<u64> {
        self.offsets.keys().next_back().copied()
    }

    /// Length of the valid content in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the file holds no frames.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes in front of the first entry with index > `purged`.
    pub fn stale_bytes(&self, purged: u64) -> u64 {
        self.offsets.range(purged + 1..).next().map(|(_, off)| *off).unwrap_or(self.len)
    }

    /// Drop entries with index `<= purged` from the file if they are worth a rewrite (see module doc).
    pub fn maybe_compact(&mut self, purged: u64) -> Result<(), StoreError> {
        let stale = self.stale_bytes(purged);
        if stale == self.len && stale > 0 {
            return self.clear();
        }
        if stale >= COMPACT_STALE_BYTES_MIN && stale * 2 >= self.len {
            return self.compact(purged);
        }
        Ok(())
    }

    /// Empty the file, durably.
    pub fn clear(&mut self) -> Result<(), StoreError> {
        self.file.set_len(0).map_err(StoreError::io("truncate", &self.path))?;
        self.file.sync_all().map_err(StoreError::io("fsync", &self.path))?;
        self.offsets.clear();
        self.len = 0;
        Ok(())
    }

    /// Rewrite the file without the entries `<= purged`: copy the live tail to a temp file, fsync,
    /// rename over the log, fsync the directory. A crash leaves either file whole.
    pub fn compact(&mut self, purged: u64) -> Result<(), StoreError> {
        let stale = self.stale_bytes(purged);
        if stale == 0 {
            return Ok(());
        }
        let mut live = vec![0u8; usize::try_from(self.len - stale).unwrap_or(0)];
        self.file.seek(SeekFrom::Start(stale)).map_err(StoreError::io("seek", &self.path))?;
        self.file.read_exact(&mut live).map_err(StoreError::io("read", &self.path))?;
        let tmp = self.path.with_extension("compact");
        let mut out = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(StoreError::io("create", &tmp))?;
        out.write_all(&live).map_err(StoreError::io("write", &tmp))?;
        out.sync_all().map_err(StoreError::io("fsync", &tmp))?;
        fs::rename(&tmp, &self.path).map_err(StoreError::io("rename over", &self.path))?;
        sync_parent(&self.path)?;
        self.file = out;
        self.offsets = self.offsets.split_off(&(purged + 1)).into_iter().map(|(i, off)| (i, off - stale)).collect();
        self.len = live.len() as u64;
        tracing::debug!(path = %self.path.display(), stale_bytes = stale, live_bytes = self.len, "compacted metadata log");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{LogId, TypeConfig};
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(index: u64) -> LogEntry {
        LogEntry { log_id: LogId::new(CommittedLeaderId::new(1, 1), index), payload: EntryPayload::<TypeConfig>::Blank }
    }

    fn append(f: &mut LogFile, range: std::ops::Range<u64>) {
        let mut bytes = Vec::new();
        let mut frames = Vec::new();
        for i in range {
            frames.push((i, bytes.len() as u64));
            frame::encode(&serde_json::to_vec(&entry(i)).expect("encode"), &mut bytes);
        }
        f.append(&bytes, &frames).expect("append");
    }

    fn indexes(r: &Recovered) -> Vec<u64> {
        r.entries.iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn append_truncate_compact_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = LogFile::open(dir.path()).expect("open").file;
        append(&mut f, 0..10);
        f.truncate_from(7).expect("truncate");
        append(&mut f, 7..9);
        assert_eq!(f.last_index(), Some(8));
        drop(f);
        let mut r = LogFile::open(dir.path()).expect("reopen");
        assert_eq!(indexes(&r), (0..9).collect::<Vec<_>>());
        r.file.compact(4).expect("compact");
        append(&mut r.file, 9..11);
        drop(r);
        let r = LogFile::open(dir.path()).expect("reopen after compact");
        assert_eq!(indexes(&r), (5..11).collect::<Vec<_>>());
        assert_eq!(r.torn_bytes, 0);
    }

    #[test]
    fn torn_tail_is_cut_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = LogFile::open(dir.path()).expect("open").file;
        append(&mut f, 0..3);
        let good_len = f.len();
        drop(f);
        let path = dir.path().join(LOG_FILE_NAME);
        let mut raw = OpenOptions::new().append(true).open(&path).expect("open raw");
        raw.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, b'{', b'"']).expect("write garbage");
        drop(raw);
        let r = LogFile::open(dir.path()).expect("reopen");
        assert_eq!(indexes(&r), vec![0, 1, 2]);
        assert_eq!(r.torn_bytes, 10);
        assert_eq!(fs::metadata(&path).expect("stat").len(), good_len);
    }

    #[test]
    fn clear_when_everything_is_purged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = LogFile::open(dir.path()).expect("open").file;
        append(&mut f, 0..4);
        f.maybe_compact(2).expect("small stale prefix is kept");
        assert_eq!(f.last_index(), Some(3));
        assert!(!f.is_empty());
        f.maybe_compact(10).expect("purge past the end clears");
        assert_eq!((f.len(), f.last_index()), (0, None));
    }
}
