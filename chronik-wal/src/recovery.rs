//! Opening a partition's segments after a clean stop or a crash, reading as little as the recovery
//! point allows.
//!
//! With a recovery point `(offset R, segment B, position P)` that reads back intact and agrees with the
//! directory (B exists, B ≤ R, P within B's file, the index interval unchanged, and — when B is not the
//! newest segment — R not past the next segment's base):
//! * every sealed segment below B is **trusted**: fsynced and trimmed at its roll, before the recovery
//!   point passed it. Its index files are loaded and shape-checked and the batches after its last index
//!   entry are walked ([`Segment::open_trusted`]); if that fails, that segment alone is scanned and its
//!   indexes rebuilt, as without a recovery point.
//! * if B is the newest segment, its prefix `[0, P)` is trusted: the batch ending at P is checked (CRC,
//!   size, offset), the index entries the recovery point counts are kept, and only `[P, end)` is
//!   scanned and cut at its torn tail ([`Segment::open_from`]).
//! * B (when it is not the newest: a crash during a roll) and everything after it are scanned as before.
//!
//! Without a usable recovery point every segment is scanned (CRC-checked) from its start: the same
//! recovery as before recovery points existed. A bad recovery point is never trusted: it costs time,
//! never data.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::config::LogConfig;
use crate::error::WalError;
use crate::fsutil::{segment_file, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT};
use crate::index::{offset_entries_valid, time_entries_valid, OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES};
use crate::recovery_point::{self, RecoveryMark};
use crate::segment::{Prefix, Role, Segment};

/// What an open read and what it trusted (logged, and checked by tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// The offset of the recovery point that was used; None: none, or not usable (everything scanned).
    pub recovery_point: Option<i64>,
    /// Sealed segments opened without a scan.
    pub trusted_segments: usize,
    /// Bytes of batches read and CRC-checked.
    pub scanned_bytes: u64,
}

pub(crate) struct Recovered {
    pub sealed: BTreeMap<i64, Segment>,
    pub active: Segment,
    /// The recovery point found on disk, if it was valid.
    pub on_disk: Option<RecoveryMark>,
    pub stats: RecoveryStats,
}

/// Opens the segments `bases` (oldest first) of `dir`.
pub(crate) fn recover(dir: &Path, config: &LogConfig, bases: &[i64]) -> Result<Recovered, WalError> {
    let on_disk = match recovery_point::read(dir) {
        Ok(found) => found,
        Err(reason) => {
            tracing::warn!(dir = %dir.display(), reason, "ignoring an unreadable recovery point; scanning the whole log");
            None
        }
    };
    let Some((&newest, older)) = bases.split_last() else {
        let active = Segment::create(dir, 0, config)?;
        return Ok(Recovered { sealed: BTreeMap::new(), active, on_disk, stats: RecoveryStats::default() });
    };
    let point = on_disk.and_then(|m| match usable(dir, config, bases, &m) {
        Ok(()) => Some(m),
        Err(reason) => {
            tracing::warn!(dir = %dir.display(), offset = m.offset, segment = m.segment_base, position = m.position,
                reason, "ignoring a recovery point that does not match the segment files; scanning the whole log");
            None
        }
    });
    let mut stats = RecoveryStats { recovery_point: point.map(|m| m.offset), ..RecoveryStats::default() };
    let mut sealed = BTreeMap::new();
    for (i, &base) in older.iter().enumerate() {
        let expected_next = bases[i + 1];
        let trusted = match point {
            Some(m) if base < m.segment_base => Segment::open_trusted(dir, base, config, expected_next)?,
            _ => None,
        };
        let seg = match trusted {
            Some(seg) => {
                stats.trusted_segments += 1;
                seg
            }
            None => {
                if point.is_some_and(|m| base < m.segment_base) {
                    tracing::warn!(dir = %dir.display(), segment = base,
                        "a segment below the recovery point does not match its index; scanning it and rebuilding its index");
                }
                Segment::open(dir, base, config, Role::Sealed { expected_next })?
            }
        };
        stats.scanned_bytes += seg.scanned_at_open();
        sealed.insert(base, seg);
    }
    let prefix = point.filter(|m| m.segment_base == newest).and_then(|m| prefix_of(dir, &m));
    let active = Segment::open_from(dir, newest, config, Role::Active, prefix)?;
    stats.scanned_bytes += active.scanned_at_open();
    Ok(Recovered { sealed, active, on_disk: point, stats })
}

/// Why the recovery point `m` cannot be used with the segments `bases`, if it cannot.
fn usable(dir: &Path, config: &LogConfig, bases: &[i64], m: &RecoveryMark) -> Result<(), String> {
    let Ok(i) = bases.binary_search(&m.segment_base) else {
        return Err(format!("segment {} is missing", m.segment_base));
    };
    if m.policy.interval_bytes() != config.index_interval_bytes {
        return Err(format!(
            "written with index_interval_bytes = {}, now {}",
            m.policy.interval_bytes(),
            config.index_interval_bytes
        ));
    }
    if let Some(&next) = bases.get(i + 1) {
        if m.offset > next {
            return Err(format!("offset {} lies past the next segment's base {next}", m.offset));
        }
    }
    let log = segment_file(dir, m.segment_base, LOG_EXT);
    let len = std::fs::metadata(&log).map_err(|e| format!("{}: {e}", log.display()))?.len();
    if m.position > len {
        return Err(format!("position {} lies past the segment's length {len}", m.position));
    }
    Ok(())
}

/// The trusted prefix of the newest segment: the index entries the recovery point counts, read from
/// the old index files and shape-checked. None (scan the whole segment) when they are not there.
fn prefix_of(dir: &Path, m: &RecoveryMark) -> Option<Prefix> {
    let rel_end = m.offset - m.segment_base;
    let read = |ext: &str, entries: u32, entry_bytes: usize| -> Option<Vec<u8>> {
        let want = usize::try_from(entries).ok()? * entry_bytes;
        if want == 0 {
            return Some(Vec::new());
        }
        // Only the counted entries: an active index file is preallocated to `index_bytes_max`.
        let mut bytes = vec![0u8; want];
        std::fs::File::open(segment_file(dir, m.segment_base, ext)).and_then(|mut f| f.read_exact(&mut bytes)).ok()?;
        Some(bytes)
    };
    let offset_entries = read(INDEX_EXT, m.offset_entries, OFFSET_INDEX_ENTRY_BYTES)
        .filter(|b| offset_entries_valid(b, rel_end, m.position));
    let time_entries = read(TIME_INDEX_EXT, m.time_entries, TIME_INDEX_ENTRY_BYTES)
        .filter(|b| time_entries_valid(b, rel_end));
    match (offset_entries, time_entries) {
        (Some(offset_entries), Some(time_entries)) => Some(Prefix { mark: *m, offset_entries, time_entries }),
        _ => {
            tracing::warn!(dir = %dir.display(), segment = m.segment_base,
                "the index entries the recovery point counts are missing or damaged; scanning the whole segment");
            None
        }
    }
}
