//! The recovery point: how far a partition's log is known to be fsynced and valid, so that opening it
//! after a crash scans only what came after (like Kafka's recovery-point-offset-checkpoint).
//!
//! One small file per partition directory, `recovery-point`, replaced atomically (write
//! `recovery-point.tmp`, fsync it, rename it over the old one, fsync the directory). It names an offset
//! `R`, the segment `B` holding it and the byte position `P` in `B` where offset `R` starts, plus what
//! recovery needs to carry on appending to `B` without reading `[0, P)` again: how many entries of
//! `B`'s index files are valid, the index rule's state, `B`'s largest timestamp so far and when `B`
//! took its first append. Everything it names was fsynced before it was written — the log data below
//! `P` and those index entries — so a recovery point that reads back intact (CRC-32C) and agrees with
//! the files can be trusted; one that does not is ignored and the whole log is scanned (`recovery`).
//!
//! When it is written (see `Flusher`): after a group-commit fsync, at most once per
//! `LogConfig::recovery_point_interval_ms` (and at once when the segment changed); when a segment
//! rolls; when the log is opened and recovery moved it; on an explicit `Flusher::write_recovery_point`
//! (the broker's clean shutdown). Truncation lowers or removes it before cutting any file.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{io_at, WalError};
use crate::fsutil::sync_dir;
use crate::index::IndexPolicy;

/// Name of the recovery point file in a partition directory.
pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point";
/// Its temporary copy while it is replaced (deleted at open if a crash left it).
const RECOVERY_POINT_TMP: &str = "recovery-point.tmp";
const MAGIC: &[u8; 4] = b"CRPT";
const VERSION: u32 = 1;
/// Size of the encoded file, CRC included.
pub(crate) const RECOVERY_POINT_BYTES: usize = 98;

/// A point of one partition log: offset `offset` starts at byte `position` of segment
/// `segment_base`, with the state of that segment's prefix `[0, position)`. Taken from the active
/// segment after each append (`Segment::mark`); it becomes a recovery point once that prefix is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecoveryMark {
    /// The log end at this point: the next offset after the prefix.
    pub offset: i64,
    pub segment_base: i64,
    /// Bytes of whole batches in the segment before `offset`.
    pub position: u64,
    /// Position of the last batch of the prefix (None: the prefix is empty).
    pub last_batch_position: Option<u64>,
    /// Offset index entries of the segment describing the prefix.
    pub offset_entries: u32,
    /// Time index entries of the segment describing the prefix.
    pub time_entries: u32,
    /// The index rule's state after the prefix (its interval is checked against the config at open).
    pub policy: IndexPolicy,
    /// Largest batch max timestamp of the prefix; -1 when empty.
    pub max_timestamp: i64,
    /// When the segment took its first append (drives age-based rolling).
    pub first_append_ms: Option<i64>,
}

impl RecoveryMark {
    /// The start of an empty segment at `base`.
    pub(crate) fn segment_start(base: i64, index_interval_bytes: u32) -> RecoveryMark {
        RecoveryMark {
            offset: base,
            segment_base: base,
            position: 0,
            last_batch_position: None,
            offset_entries: 0,
            time_entries: 0,
            policy: IndexPolicy::new(index_interval_bytes),
            max_timestamp: -1,
            first_append_ms: None,
        }
    }

    /// Later in the log than `other` (at equal offsets, the start of a newer segment is later).
    pub(crate) fn is_after(&self, other: &RecoveryMark) -> bool {
        (self.offset, self.segment_base) > (other.offset, other.segment_base)
    }

    pub(crate) fn encode(&self) -> [u8; RECOVERY_POINT_BYTES] {
        let mut b = Vec::with_capacity(RECOVERY_POINT_BYTES);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&self.offset.to_le_bytes());
        b.extend_from_slice(&self.segment_base.to_le_bytes());
        b.extend_from_slice(&self.position.to_le_bytes());
        b.extend_from_slice(&self.last_batch_position.map_or(-1, |p| p as i64).to_le_bytes());
        b.extend_from_slice(&self.policy.interval_bytes().to_le_bytes());
        b.extend_from_slice(&self.offset_entries.to_le_bytes());
        b.extend_from_slice(&self.time_entries.to_le_bytes());
        b.extend_from_slice(&self.policy.last_offset_entry_position.to_le_bytes());
        b.extend_from_slice(&self.policy.last_time_entry_position.to_le_bytes());
        b.push(u8::from(self.policy.max_timestamp.is_some()));
        b.extend_from_slice(&self.policy.max_timestamp.unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&self.max_timestamp.to_le_bytes());
        b.push(u8::from(self.first_append_ms.is_some()));
        b.extend_from_slice(&self.first_append_ms.unwrap_or(0).to_le_bytes());
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        let mut out = [0u8; RECOVERY_POINT_BYTES];
        out.copy_from_slice(&b);
        out
    }

    /// Decodes a recovery point file; the error says why it cannot be used.
    pub(crate) fn decode(bytes: &[u8]) -> Result<RecoveryMark, String> {
        if bytes.len() != RECOVERY_POINT_BYTES {
            return Err(format!("{} bytes, expected {RECOVERY_POINT_BYTES}", bytes.len()));
        }
        let (body, crc) = bytes.split_at(RECOVERY_POINT_BYTES - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err("crc mismatch".into());
        }
        if &body[..4] != MAGIC {
            return Err("bad magic".into());
        }
        let mut r = Reader { bytes: body, at: 4 };
        let version = r.u32();
        if version != VERSION {
            return Err(format!("unknown version {version}"));
        }
        let offset = r.i64();
        let segment_base = r.i64();
        let position = r.u64();
        let last_batch_position = u64::try_from(r.i64()).ok();
        let interval = r.u32();
        let offset_entries = r.u32();
        let time_entries = r.u32();
        let last_offset_entry_position = r.u64();
        let last_time_entry_position = r.u64();
        let has_policy_max = r.u8() == 1;
        let policy_max = r.i64();
        let max_timestamp = r.i64();
        let has_first = r.u8() == 1;
        let first = r.i64();
        let mut policy = IndexPolicy::new(interval);
        policy.last_offset_entry_position = last_offset_entry_position;
        policy.last_time_entry_position = last_time_entry_position;
        policy.max_timestamp = has_policy_max.then_some(policy_max);
        let mark = RecoveryMark {
            offset,
            segment_base,
            position,
            last_batch_position,
            offset_entries,
            time_entries,
            policy,
            max_timestamp,
            first_append_ms: has_first.then_some(first),
        };
        let sane = offset >= segment_base
            && segment_base >= 0
            && (position == 0) == (offset == segment_base)
            && last_batch_position.is_none_or(|p| p < position)
            && (position == 0) == last_batch_position.is_none();
        if !sane {
            return Err(format!("inconsistent fields: {mark:?}"));
        }
        Ok(mark)
    }
}

/// Little-endian reads from a buffer whose length the caller checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&self.bytes[self.at..self.at + N]);
        self.at += N;
        a
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take())
    }
}

pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(RECOVERY_POINT_FILE)
}

/// The recovery point stored in `dir`: Ok(None) when there is none, Err(reason) when it is unreadable.
pub(crate) fn read(dir: &Path) -> Result<Option<RecoveryMark>, String> {
    match fs::read(path(dir)) {
        Ok(bytes) => RecoveryMark::decode(&bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Replaces the recovery point atomically and durably: write a temporary file, fsync it, rename it
/// over the old one, fsync the directory. A crash at any step leaves the old file or the new one.
/// The caller must have made everything `mark` names durable first.
pub(crate) fn write(dir: &Path, mark: &RecoveryMark) -> Result<(), WalError> {
    let tmp = dir.join(RECOVERY_POINT_TMP);
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(&mark.encode())?;
        f.sync_all()
    });
    if let Err(e) = written {
        // E.g. a full disk: leave no half-written copy holding a block.
        let _ = fs::remove_file(&tmp);
        return Err(io_at(&tmp)(e));
    }
    let dst = path(dir);
    fs::rename(&tmp, &dst).map_err(io_at(&dst))?;
    sync_dir(dir)
}

/// Removes the recovery point (the whole log is scanned at the next open), durably.
pub(crate) fn remove(dir: &Path) -> Result<(), WalError> {
    let p = path(dir);
    match fs::remove_file(&p) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_at(&p)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RecoveryMark {
        let mut policy = IndexPolicy::new(4096);
        policy.last_offset_entry_position = 8192;
        policy.last_time_entry_position = 4096;
        policy.max_timestamp = Some(1_700_000_000_123);
        RecoveryMark {
            offset: 1234,
            segment_base: 1000,
            position: 10_000,
            last_batch_position: Some(9_000),
            offset_entries: 2,
            time_entries: 1,
            policy,
            max_timestamp: 1_700_000_000_123,
            first_append_ms: Some(1_700_000_000_000),
        }
    }

    #[test]
    fn round_trips_through_the_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        assert_eq!(read(dir.path())?, None, "no file: no recovery point");
        let m = sample();
        write(dir.path(), &m)?;
        assert_eq!(read(dir.path())?, Some(m));
        let empty = RecoveryMark::segment_start(77, 256);
        write(dir.path(), &empty)?;
        assert_eq!(read(dir.path())?, Some(empty));
        assert!(!dir.path().join(RECOVERY_POINT_TMP).exists());
        remove(dir.path())?;
        assert_eq!(read(dir.path())?, None);
        Ok(())
    }

    #[test]
    fn any_damage_is_refused() {
        let good = sample().encode();
        assert_eq!(RecoveryMark::decode(&good), Ok(sample()));
        for i in 0..good.len() {
            let mut bad = good;
            bad[i] ^= 0x10;
            assert!(RecoveryMark::decode(&bad).is_err(), "flipped byte {i} accepted");
        }
        assert!(RecoveryMark::decode(&good[..50]).is_err());
        assert!(RecoveryMark::decode(&[]).is_err());
        // A CRC-valid file whose fields contradict each other is refused too.
        let mut odd = sample();
        odd.position = 0;
        assert!(RecoveryMark::decode(&odd.encode()).is_err());
    }
}
