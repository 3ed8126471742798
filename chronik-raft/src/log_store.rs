//! openraft's [`RaftLogStorage`] over [`LogFile`], plus the vote, committed log id and purge point
//! kept as small durable files beside it (`vote.json`, `committed.json`, `purged.json`).
//!
//! Entries are also kept in memory (the metadata log is short: it is purged behind each snapshot),
//! so the replication readers ([`LogReader`]) never touch the file. All writes go through the one
//! `LogStore` that openraft drives with `&mut self`, so they are serialised as openraft requires.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, StorageIOError};
use parking_lot::{Mutex, RwLock};

use crate::durable::{blocking, read_json, write_json};
use crate::error::StoreError;
use crate::frame::{self, FRAME_PAYLOAD_BYTES_MAX};
use crate::log_file::LogFile;
use crate::types::{LogEntry, LogId, StorageError, TypeConfig, Vote};

const VOTE_FILE: &str = "vote.json";
const COMMITTED_FILE: &str = "committed.json";
const PURGED_FILE: &str = "purged.json";

/// The in-memory view shared by the writer and the readers.
#[derive(Debug, Default)]
struct LogCache {
    /// Live entries (index > purged), contiguous.
    entries: BTreeMap<u64, LogEntry>,
    /// Last purged log id; entries up to it are gone.
    purged: Option<LogId>,
}

impl LogCache {
    fn last_log_id(&self) -> Option<LogId> {
        self.entries.values().next_back().map(|e| e.log_id).or(self.purged)
    }
}

/// The metadata log store. Open with [`LogStore::open`], hand to `openraft::Raft::new`.
pub struct LogStore {
    dir: PathBuf,
    cache: Arc<RwLock<LogCache>>,
    /// Only this store writes the file; the mutex lets the blocking pool borrow it.
    file: Arc<Mutex<LogFile>>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

/// Reads entries for replication without blocking the writer.
#[derive(Clone)]
pub struct LogReader {
    cache: Arc<RwLock<LogCache>>,
}

impl LogStore {
    /// Recover the store in `dir`: read vote, committed and purge point, scan the log dropping a
    /// torn tail, and check the live entries are contiguous from the purge point.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let vote: Option<Vote> = read_json(&dir.join(VOTE_FILE), "vote")?;
        let committed: Option<LogId> = read_json(&dir.join(COMMITTED_FILE), "committed log id")?;
        let purged: Option<LogId> = read_json(&dir.join(PURGED_FILE), "purged log id")?;
        let mut recovered = LogFile::open(dir)?;
        let path = dir.join(crate::log_file::LOG_FILE_NAME);
        let floor = purged.map(|p| p.index + 1);
        let mut entries = BTreeMap::new();
        let mut expected = floor;
        for entry in recovered.entries {
            let index = entry.log_id.index;
            if floor.is_some_and(|f| index < f) {
                continue;
            }
            if let Some(want) = expected {
                if index != want {
                    return Err(StoreError::NotContiguous { path, expected: want, found: index });
                }
            }
            expected = Some(index + 1);
            entries.insert(index, entry);
        }
        if entries.is_empty() && !recovered.file.is_empty() {
            // Everything in the file is at or below the purge point.
            recovered.file.clear()?;
        }
        tracing::info!(
            dir = %dir.display(),
            entries = entries.len(),
            purged = ?purged.map(|p| p.index),
            committed = ?committed.map(|c| c.index),
            torn_bytes = recovered.torn_bytes,
            "opened metadata log"
        );
        Ok(LogStore {
            dir: dir.to_path_buf(),
            cache: Arc::new(RwLock::new(LogCache { entries, purged })),
            file: Arc::new(Mutex::new(recovered.file)),
            vote,
            committed,
        })
    }

    /// True when nothing was ever stored: no vote, no entries, nothing purged. Such a node may be
    /// initialised; any other must not be.
    pub fn is_pristine(&self) -> bool {
        let cache = self.cache.read();
        self.vote.is_none() && cache.entries.is_empty() && cache.purged.is_none()
    }

    /// Index of the first live entry (diagnostics and tests).
    pub fn first_index(&self) -> Option<u64> {
        self.cache.read().entries.keys().next().copied()
    }

    /// Encode `entries` into frames, checking they continue the log without a hole.
    fn encode(&self, entries: &[LogEntry]) -> Result<EncodedBatch, (LogId, StoreError)> {
        let mut expected = self.cache.read().last_log_id().map(|l| l.index + 1);
        let mut batch = EncodedBatch::default();
        for entry in entries {
            let index = entry.log_id.index;
            if let Some(want) = expected {
                if index != want {
                    let path = self.dir.join(crate::log_file::LOG_FILE_NAME);
                    return Err((entry.log_id, StoreError::NotContiguous { path, expected: want, found: index }));
                }
            }
            expected = Some(index + 1);
            let payload = serde_json::to_vec(entry)
                .map_err(|source| (entry.log_id, StoreError::Encode { what: "log entry", source }))?;
            if payload.len() > FRAME_PAYLOAD_BYTES_MAX {
                let e = StoreError::EntryTooLarge { index, bytes: payload.len(), max_bytes: FRAME_PAYLOAD_BYTES_MAX };
                return Err((entry.log_id, e));
            }
            batch.frames.push((index, batch.bytes.len() as u64));
            frame::encode(&payload, &mut batch.bytes);
        }
        Ok(batch)
    }
}

/// Entries framed for one write: the bytes and, per entry, its index and offset within them.
#[derive(Default)]
struct EncodedBatch {
    bytes: Vec<u8>,
    frames: Vec<(u64, u64)>,
}

fn read_range(cache: &RwLock<LogCache>, range: impl RangeBounds<u64>) -> Vec<LogEntry> {
    cache.read().entries.range(range).map(|(_, e)| e.clone()).collect()
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<LogEntry>, StorageError> {
        Ok(read_range(&self.cache, range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<LogEntry>, StorageError> {
        Ok(read_range(&self.cache, range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let cache = self.cache.read();
        Ok(LogState { last_purged_log_id: cache.purged, last_log_id: cache.last_log_id() })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader { cache: self.cache.clone() }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let path = self.dir.join(VOTE_FILE);
        let v = *vote;
        blocking("save vote", move || write_json(&path, "vote", &v))
            .await
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        if committed == self.committed {
            return Ok(());
        }
        let path = self.dir.join(COMMITTED_FILE);
        blocking("save committed", move || write_json(&path, "committed log id", &committed))
            .await
            .map_err(|e| StorageIOError::write(&e))?;
        self.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<LogEntry> = entries.into_iter().collect();
        if entries.is_empty() {
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        let EncodedBatch { bytes, frames } =
            self.encode(&entries).map_err(|(log_id, e)| StorageIOError::write_log_entry(log_id, &e))?;
        {
            // Readable as soon as append returns, as openraft requires.
            let mut cache = self.cache.write();
            for entry in entries {
                cache.entries.insert(entry.log_id.index, entry);
            }
        }
        // One write and one fsync for the whole batch; the callback reports durability.
        let file = self.file.clone();
        let result = blocking("append log", move || file.lock().append(&bytes, &frames)).await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(index = log_id.index, "truncating metadata log");
        self.cache.write().entries.split_off(&log_id.index);
        let file = self.file.clone();
        let index = log_id.index;
        blocking("truncate log", move || file.lock().truncate_from(index))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(index = log_id.index, "purging metadata log");
        // The purge point is durable before the file changes: recovery then skips whatever is left.
        let path = self.dir.join(PURGED_FILE);
        let purged = Some(log_id);
        blocking("save purge point", move || write_json(&path, "purged log id", &purged))
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        {
            let mut cache = self.cache.write();
            cache.entries = cache.entries.split_off(&(log_id.index + 1));
            cache.purged = Some(log_id);
        }
        let file = self.file.clone();
        blocking("compact log", move || file.lock().maybe_compact(log_id.index))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}
