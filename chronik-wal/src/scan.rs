//! Walking the batches of a segment from its start: used by recovery (with CRC checks) and to rebuild
//! indexes after truncation (without). Pure: takes bytes, returns what it found.

use crate::batch::{check_batch, BatchFault};
use crate::index::IndexPolicy;

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
    /// Where and why the scan stopped before the end of the bytes (None: the bytes ended exactly).
    pub stop: Option<(u64, BatchFault)>,
    /// Index rule state after the last valid batch, so appends continue where the scan ended.
    pub policy: IndexPolicy,
    /// Encoded offset index entries for the valid batches.
    pub offset_entries: Vec<u8>,
    /// Encoded time index entries for the valid batches.
    pub time_entries: Vec<u8>,
}

/// Scans `data` (a segment starting at `base_offset`) up to the first invalid, short, zero-length or
/// discontinuous batch.
pub(crate) fn scan(data: &[u8], base_offset: i64, index_interval_bytes: u32, verify_crc: bool) -> Scan {
    let mut s = Scan {
        valid_len: 0,
        next_offset: base_offset,
        max_timestamp: -1,
        first_timestamp: None,
        stop: None,
        policy: IndexPolicy::new(index_interval_bytes),
        offset_entries: Vec::new(),
        time_entries: Vec::new(),
    };
    let mut pos = 0usize;
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
        pos += h.size as usize;
        s.valid_len = pos as u64;
    }
    s
}

/// True when every byte is zero: the tail of a preallocated file that was never written.
pub(crate) fn is_all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}
