//! A minimal append-only file per offsets partition: the stand-in used until `chronik-wal`'s
//! `PartitionLog` is available (its binding replaces this file; the store only sees
//! [`OffsetsLog`]).
//!
//! Format: Kafka v2 record batches back to back, as the WAL would hold them. Recovery walks the
//! batches by their length field and truncates a torn tail (a batch cut short by a crash before its
//! fsync, so never acknowledged).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tracing::warn;

use super::log::{LogError, OffsetsLog, ReplayError, Syncer};
use crate::GroupError;

/// Bytes before a batch's length field end (baseOffset i64 + batchLength i32).
const BATCH_PREFIX_BYTES: usize = 12;
/// Bytes of a v2 batch header; anything shorter is not a batch.
const BATCH_HEADER_BYTES: usize = 61;
/// Position of lastOffsetDelta in a v2 batch header.
const LAST_OFFSET_DELTA_AT: usize = 23;
/// Batches larger than this are refused on append and treated as corruption on replay.
pub const BATCH_BYTES_MAX: usize = 16 << 20;

pub struct FileLog {
    file: Arc<Mutex<File>>,
    /// Offset the next batch gets.
    next_offset: i64,
    /// Whole data as read at open, handed out by replay once.
    recovered: Vec<Bytes>,
}

/// Opens (creating) `dir/<index>/offsets.log` and recovers it.
pub fn open(dir: &Path, index: u32) -> Result<Box<dyn OffsetsLog>, GroupError> {
    let fail = |verb, source: std::io::Error| GroupError::Log { partition: index, verb, source: Box::new(source) };
    let part_dir = dir.join(index.to_string());
    std::fs::create_dir_all(&part_dir).map_err(|e| fail("create dir", e))?;
    let path = part_dir.join("offsets.log");
    let mut file = OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(|e| fail("open", e))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data).map_err(|e| fail("read", e))?;
    let mut position = 0usize;
    let mut next_offset = 0i64;
    let mut recovered = Vec::new();
    while let Some(size) = complete_batch_size(&data[position..]) {
        let batch = &data[position..position + size];
        let delta = i32::from_be_bytes([
            batch[LAST_OFFSET_DELTA_AT],
            batch[LAST_OFFSET_DELTA_AT + 1],
            batch[LAST_OFFSET_DELTA_AT + 2],
            batch[LAST_OFFSET_DELTA_AT + 3],
        ]);
        next_offset += i64::from(delta) + 1;
        recovered.push(Bytes::copy_from_slice(batch));
        position += size;
    }
    if position < data.len() {
        warn!(path = %path.display(), kept = position, dropped = data.len() - position, "truncating torn tail");
        file.set_len(position as u64).map_err(|e| fail("truncate", e))?;
        file.sync_all().map_err(|e| fail("fsync", e))?;
    }
    file.seek(SeekFrom::End(0)).map_err(|e| fail("seek", e))?;
    Ok(Box::new(FileLog { file: Arc::new(Mutex::new(file)), next_offset, recovered }))
}

/// Size of the whole batch at the start of `data`, if it is complete and plausible.
fn complete_batch_size(data: &[u8]) -> Option<usize> {
    if data.len() < BATCH_HEADER_BYTES {
        return None;
    }
    let length = i32::from_be_bytes([data[8], data[9], data[10], data[11]]);
    let size = usize::try_from(length).ok()? + BATCH_PREFIX_BYTES;
    ((BATCH_HEADER_BYTES..=BATCH_BYTES_MAX).contains(&size) && size <= data.len()).then_some(size)
}

impl OffsetsLog for FileLog {
    fn append(&mut self, batch: &mut [u8]) -> Result<i64, LogError> {
        let size = complete_batch_size(batch).ok_or("not a complete record batch")?;
        if size != batch.len() {
            return Err("append takes exactly one record batch".into());
        }
        let delta = i32::from_be_bytes([
            batch[LAST_OFFSET_DELTA_AT],
            batch[LAST_OFFSET_DELTA_AT + 1],
            batch[LAST_OFFSET_DELTA_AT + 2],
            batch[LAST_OFFSET_DELTA_AT + 3],
        ]);
        // The base offset lies outside the batch CRC: stamping it keeps the batch valid.
        batch[..8].copy_from_slice(&self.next_offset.to_be_bytes());
        self.file.lock().write_all(batch)?;
        self.next_offset += i64::from(delta) + 1;
        Ok(self.next_offset)
    }

    fn syncer(&self) -> Syncer {
        let file = self.file.clone();
        // Each call fsyncs whatever has been written; concurrent callers simply share the work of
        // the disk (no bookkeeping of a durable offset in this stand-in).
        Arc::new(move |_end_offset| {
            let handle = file.lock().try_clone()?;
            handle.sync_data()?;
            Ok(())
        })
    }

    fn replay(&self, visit: &mut dyn FnMut(Bytes) -> Result<(), GroupError>) -> Result<(), ReplayError> {
        for batch in &self.recovered {
            visit(batch.clone()).map_err(ReplayError::Visit)?;
        }
        Ok(())
    }
}
