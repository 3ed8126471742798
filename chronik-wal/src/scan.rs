//! Walking the batches of a segment: from its start or from a recovery point, used by recovery (with
//! CRC checks) and to rebuild indexes after truncation (without); and the short header walks that
//! check a sealed segment below the recovery point against its index. Pure: takes bytes, returns what
//! it found.

use crate::batch::{check_batch, BatchFault};
use crate::index::IndexPolicy;
use crate::recovery_point::RecoveryMark;

/// What a scan of one segment's bytes found.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Bytes of whole, valid, contiguous batches from the start.
    pub valid_len: u64,
    /// Offset the next batch must carry (the segment base when empty).
    pub next_offset: i64,
    /// Largest batch max timestamp, -1 when empty.
    pub max_timestamp: i64,
    /// Max timestamp of the first batch (drives age-based rolling after a restart).
    pub first_timestamp: Option<i64>,
    /// Position of the last valid batch (None: no batch).
    pub last_batch_position: Option<u64>,
    /// Bytes this scan read and checked (from where it started to `valid_len`).
    pub scanned_bytes: u64,
    /// Where and why the scan stopped before the end of the bytes (None: the bytes ended exactly).
    pub stop: Option<(u64, BatchFault)>,
    /// Index rule state after the last valid batch, so appends continue where the scan ended.
    pub policy: IndexPolicy,
    /// Encoded offset index entries for the valid batches scanned (not those of a trusted prefix).
    pub offset_entries: Vec<u8>,
    /// Encoded time index entries for the valid batches scanned (not those of a trusted prefix).
    pub time_entries: Vec<u8>,
}

/// Scans `data` (a segment) from `start` — its beginning (`RecoveryMark::segment_start`) or a point
/// whose prefix is known valid (the recovery point), whose state it carries on — up to the first
/// invalid, short, zero-length or discontinuous batch.
pub(crate) fn scan_from(data: &[u8], start: &RecoveryMark, verify_crc: bool) -> Scan {
    let base_offset = start.segment_base;
    let mut s = Scan {
        valid_len: start.position,
        next_offset: start.offset,
        max_timestamp: start.max_timestamp,
        first_timestamp: None,
        last_batch_position: start.last_batch_position,
        scanned_bytes: 0,
        stop: None,
        policy: start.policy,
        offset_entries: Vec::new(),
        time_entries: Vec::new(),
    };
    let mut pos = usize::try_from(start.position).unwrap_or(usize::MAX).min(data.len());
    while pos < data.len() {
        let h = match check_batch(&data[pos..], pos as u64, verify_crc) {
            Ok(h) if h.base_offset != s.next_offset => Err(BatchFault::Discontinuity {
                found: h.base_offset,
                expected: s.next_offset,
            }),
            other => other,
        };
        let h = match h {
            Ok(h) => h,
            Err(fault) => {
                s.stop = Some((pos as u64, fault));
                break;
            }
        };
        let e = s.policy.observe(&h, base_offset);
        s.offset_entries.extend(e.offset.iter().flatten());
        s.time_entries.extend(e.time.iter().flatten());
        s.first_timestamp.get_or_insert(h.max_timestamp);
        s.max_timestamp = s.max_timestamp.max(h.max_timestamp);
        s.next_offset = h.last_offset + 1;
        s.last_batch_position = Some(pos as u64);
        pos += h.size as usize;
        s.scanned_bytes += u64::from(h.size);
        s.valid_len = pos as u64;
    }
    s
}

/// Walks batch headers (no CRC) from `position`, where a batch with base offset `offset` must start,
/// to the end of `data`. Returns the offset after the last batch and that batch's position when the
/// batches are continuous and end exactly at the end of `data`, None otherwise. Checks that a sealed
/// segment's tail agrees with its index and its successor without reading the whole segment.
pub(crate) fn walk_to_end(data: &[u8], position: u64, offset: i64) -> Option<(i64, Option<u64>)> {
    let mut pos = usize::try_from(position).ok()?;
    let (mut next, mut last) = (offset, None);
    while pos < data.len() {
        let h = check_batch(&data[pos..], pos as u64, false).ok()?;
        if h.base_offset != next {
            return None;
        }
        next = h.last_offset + 1;
        last = Some(pos as u64);
        pos += h.size as usize;
    }
    (pos == data.len()).then_some((next, last))
}

/// The largest batch max timestamp of a sealed segment (-1 if none), from its last time index entry
/// `(timestamp, relative offset)` and a few headers. By the index rule (`IndexPolicy`), any batch
/// that raised the segment's largest timestamp at least `interval_bytes` after the last time entry's
/// batch would have an entry of its own; so only batches less than `interval_bytes` after it (or after
/// the segment start, when there is no entry) can hold a larger one. `from` is a batch boundary at or
/// before that batch (its offset index lookup). None when the headers do not read back.
pub(crate) fn max_timestamp_after(
    data: &[u8],
    base_offset: i64,
    last_time_entry: Option<(i64, u32)>,
    from: u64,
    interval_bytes: u64,
) -> Option<i64> {
    let (mut max, entry_offset) = match last_time_entry {
        Some((ts, rel)) => (ts, Some(base_offset + i64::from(rel))),
        None => (-1, None),
    };
    // Position of the last time entry's batch (the segment start when there is none).
    let mut anchor = if entry_offset.is_none() { Some(0) } else { None };
    let mut pos = usize::try_from(from).ok()?;
    while pos < data.len() {
        let h = check_batch(&data[pos..], pos as u64, false).ok()?;
        if Some(h.base_offset) == entry_offset {
            anchor = Some(h.position);
        }
        if anchor.is_some_and(|a| h.position >= a + interval_bytes) {
            break;
        }
        max = max.max(h.max_timestamp);
        pos += h.size as usize;
    }
    anchor.map(|_| max)
}

/// True when every byte is zero: the tail of a preallocated file that was never written.
pub(crate) fn is_all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}
