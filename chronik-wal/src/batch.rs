//! Kafka v2 record batch headers: where each field lives, how a stored batch is checked, and how the
//! broker stamps `baseOffset` and `partitionLeaderEpoch` (both outside the CRC) without re-encoding —
//! or copying: the stamped fields live in the first [`STAMPED_HEAD_BYTES`], which are written from a
//! small stamped copy while the rest of the batch is written from the caller's buffer as it is.
//!
//! The batch's own fields are the storage frame: `batchLength` gives the size, CRC-32C covers bytes
//! 21..end, and `baseOffset` continuity (checked by the scanner) covers what the CRC does not.
//!
//! This is the crate's (and the broker's) only reading of the header layout: record sets arriving
//! from producers, from a leader (follower fetch) or from the group coordinator go through
//! [`split_batches`], which checks each batch once and hands out [`BatchView`]s that the log
//! appends without checking again.

/// Size of the fixed v2 batch header; no valid batch is shorter.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before and including `batchLength` that `batchLength` does not count (baseOffset + length).
pub const LOG_OVERHEAD_BYTES: usize = 12;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
/// First byte covered by the CRC (attributes).
const CRC_COVERS_FROM: usize = 21;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;
const MAGIC_V2: i8 = 2;

/// Attribute bit of a transactional batch.
const TRANSACTIONAL_FLAG: i16 = 0x10;
/// Attribute bit of a control batch (transaction markers).
const CONTROL_FLAG: i16 = 0x20;

/// Header of one batch, read from its bytes (no record decoding): a stored batch (then `position` is
/// its place in the segment) or one inside an incoming record set (then `position` is its place in
/// the record set and `base_offset` whatever the sender wrote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub last_offset: i64,
    /// `last_offset - base_offset` as stored in the batch (never negative).
    pub last_offset_delta: i32,
    pub partition_leader_epoch: i32,
    pub attributes: i16,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
    /// Byte position of the batch inside its segment's `.log` file.
    pub position: u64,
    /// Whole size of the batch in bytes, header included.
    pub size: u32,
}

impl BatchHeader {
    /// Written by an idempotent (or transactional) producer, so its sequences are checked.
    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }
    /// Sequence of the last record (sequences wrap at `i32::MAX` to 0, as in Kafka); a batch without a
    /// sequence (negative `base_sequence`) answers its `base_sequence`.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        let wrapped = if last > i64::from(i32::MAX) { last - i64::from(i32::MAX) - 1 } else { last };
        // base_sequence and last_offset_delta are both in 0..=i32::MAX, so `last` is below
        // 2 * 2^31 and `wrapped` below 2^31.
        wrapped as i32
    }
}

/// One v2 batch inside a record set, checked by [`split_batches`] (or [`BatchView::whole`]): length,
/// magic, CRC-32C, offset delta. Those are the only ways to make one, so holding one proves the bytes
/// are one whole valid batch — [`crate::PartitionLog::append_view`] writes it without checking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchView<'a> {
    bytes: &'a [u8],
    header: BatchHeader,
}

impl<'a> BatchView<'a> {
    /// Checks that `batch` is exactly one valid v2 batch (nothing before or after it).
    pub fn whole(batch: &'a [u8]) -> Result<BatchView<'a>, BatchError> {
        let header = check_batch(batch, 0, true).map_err(|fault| BatchError::Invalid { at: 0, fault })?;
        if header.size as usize != batch.len() {
            return Err(BatchError::Invalid { at: 0, fault: BatchFault::Trailing { size: header.size, given: batch.len() } });
        }
        Ok(BatchView { bytes: batch, header })
    }

    /// The batch's bytes, as received.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Its header, as received (`position` is its byte position in the record set).
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }
    /// Byte position of this batch within the record set it came in.
    pub fn start(&self) -> usize {
        // position was a usize index into the record set when the view was made.
        self.header.position as usize
    }
    /// Size in bytes, header included.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
    /// Never true: a valid batch is at least [`BATCH_HEADER_BYTES`] long.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Why a record set (from a producer, a leader or the group coordinator) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("empty record set")]
    Empty,
    #[error("batch at byte {at}: {fault}")]
    Invalid { at: usize, fault: BatchFault },
}

/// Splits a record set into its batches, checking each one whole (length, magic 2, CRC-32C, offset
/// delta, a positive record count) before any is appended: a bad batch anywhere refuses the set.
pub fn split_batches(records: &[u8]) -> Result<Vec<BatchView<'_>>, BatchError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < records.len() {
        let invalid = |fault| BatchError::Invalid { at, fault };
        let header = check_batch(&records[at..], at as u64, true).map_err(invalid)?;
        // The producer's record count is not otherwise checked against the records; a count that
        // cannot hold the offset delta is refused (the delta bounds are Kafka's loose ones).
        let (count, delta) = (header.record_count, header.last_offset_delta);
        if count <= 0 || i64::from(delta) >= i64::from(count) + 0x7fff_0000 {
            return Err(invalid(BatchFault::BadCount { count, delta }));
        }
        let size = header.size as usize;
        out.push(BatchView { bytes: &records[at..at + size], header });
        at += size;
    }
    if out.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(out)
}

/// Headers of the whole batches at the start of `records`, bytes this log handed out (checked when
/// they were appended, so their CRC is not computed again). Stops at the first incomplete or malformed
/// batch: a read may end inside one.
pub fn stored_headers(records: &[u8]) -> impl Iterator<Item = BatchHeader> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let header = check_batch(records.get(at..)?, at as u64, false).ok()?;
        at += header.size as usize;
        Some(header)
    })
}

/// Why bytes at some position are not a valid batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchFault {
    #[error("{available} bytes left, a batch needs at least {needed}")]
    Short { available: usize, needed: usize },
    #[error("zero batch length (end of written data)")]
    Zero,
    #[error("batch length {0} is impossible")]
    BadLength(i32),
    #[error("magic {0}, expected 2")]
    BadMagic(i8),
    #[error("crc32c mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    #[error("last offset delta {0} is negative")]
    BadDelta(i32),
    #[error("base offset {found}, expected {expected} (offsets must be contiguous)")]
    Discontinuity { found: i64, expected: i64 },
    #[error("record count {count} with last offset delta {delta}")]
    BadCount { count: i32, delta: i32 },
    #[error("batch length field says {size} bytes but {given} were given")]
    Trailing { size: u32, given: usize },
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Checks the batch that starts at `bytes[0]` (bytes may run past its end) and returns its header.
/// `verify_crc` is false only where the bytes were verified before (index rebuild after truncation).
pub(crate) fn check_batch(bytes: &[u8], position: u64, verify_crc: bool) -> Result<BatchHeader, BatchFault> {
    if bytes.len() < LOG_OVERHEAD_BYTES {
        return Err(BatchFault::Short { available: bytes.len(), needed: BATCH_HEADER_BYTES });
    }
    let length = i32_at(bytes, BATCH_LENGTH_AT);
    if length == 0 {
        return Err(BatchFault::Zero);
    }
    if length < (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32 {
        return Err(BatchFault::BadLength(length));
    }
    // length > 0 was checked above, so the cast is exact.
    let size = length as usize + LOG_OVERHEAD_BYTES;
    if bytes.len() < size {
        return Err(BatchFault::Short { available: bytes.len(), needed: size });
    }
    let batch = &bytes[..size];
    let magic = batch[MAGIC_AT] as i8;
    if magic != MAGIC_V2 {
        return Err(BatchFault::BadMagic(magic));
    }
    if verify_crc {
        let stored = u32::from_be_bytes([batch[CRC_AT], batch[CRC_AT + 1], batch[CRC_AT + 2], batch[CRC_AT + 3]]);
        let computed = crc32c::crc32c(&batch[CRC_COVERS_FROM..]);
        if stored != computed {
            return Err(BatchFault::BadCrc { stored, computed });
        }
    }
    let delta = i32_at(batch, LAST_OFFSET_DELTA_AT);
    if delta < 0 {
        return Err(BatchFault::BadDelta(delta));
    }
    let base_offset = i64_at(batch, BASE_OFFSET_AT);
    Ok(BatchHeader {
        base_offset,
        last_offset: base_offset.saturating_add(i64::from(delta)),
        last_offset_delta: delta,
        partition_leader_epoch: i32_at(batch, LEADER_EPOCH_AT),
        attributes: i16_at(batch, ATTRIBUTES_AT),
        max_timestamp: i64_at(batch, MAX_TIMESTAMP_AT),
        producer_id: i64_at(batch, PRODUCER_ID_AT),
        producer_epoch: i16_at(batch, PRODUCER_EPOCH_AT),
        base_sequence: i32_at(batch, BASE_SEQUENCE_AT),
        record_count: i32_at(batch, RECORD_COUNT_AT),
        position,
        // size <= bytes.len() and a batch length is an i32, so size fits in u32.
        size: size as u32,
    })
}

/// Bytes at the start of a batch that hold everything the broker stamps (baseOffset, batchLength,
/// partitionLeaderEpoch).
pub(crate) const STAMPED_HEAD_BYTES: usize = LEADER_EPOCH_AT + 4;

/// The first [`STAMPED_HEAD_BYTES`] of `batch` with the broker-assigned base offset and leader epoch
/// written in (neither is covered by the CRC). `batch` is a checked [`BatchView`]'s bytes, so it is
/// longer than the head.
pub(crate) fn stamped_head(batch: &[u8], base_offset: i64, leader_epoch: i32) -> [u8; STAMPED_HEAD_BYTES] {
    let mut head = [0u8; STAMPED_HEAD_BYTES];
    head.copy_from_slice(&batch[..STAMPED_HEAD_BYTES]);
    head[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    head[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(delta: i32, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; BATCH_HEADER_BYTES];
        b.extend_from_slice(payload);
        let len = (b.len() - LOG_OVERHEAD_BYTES) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&delta.to_be_bytes());
        b[35..43].copy_from_slice(&77i64.to_be_bytes());
        b[57..61].copy_from_slice(&(delta + 1).to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn crc32c_is_castagnoli_not_ieee() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn parses_and_stamps_outside_the_crc() {
        let mut b = batch(4, b"hello");
        let head = stamped_head(&b, 1000, 7);
        b[..STAMPED_HEAD_BYTES].copy_from_slice(&head);
        let h = *BatchView::whole(&b).unwrap().header();
        assert_eq!((h.base_offset, h.last_offset, h.partition_leader_epoch), (1000, 1004, 7));
        assert_eq!((h.max_timestamp, h.size as usize), (77, b.len()));
    }

    #[test]
    fn rejects_each_kind_of_damage() {
        let good = batch(0, b"x");
        let mut crc = good.clone();
        crc[60] ^= 1;
        assert!(matches!(check_batch(&crc, 0, true), Err(BatchFault::BadCrc { .. })));
        assert!(check_batch(&crc, 0, false).is_ok());
        let mut magic = good.clone();
        magic[16] = 1;
        assert_eq!(check_batch(&magic, 0, true), Err(BatchFault::BadMagic(1)));
        assert!(matches!(check_batch(&good[..30], 0, true), Err(BatchFault::Short { .. })));
        assert_eq!(check_batch(&[0u8; 64], 0, true), Err(BatchFault::Zero));
        let mut extra = good.clone();
        extra.push(0);
        assert!(BatchView::whole(&extra).is_err());
        assert!(check_batch(&extra, 0, true).is_ok());
    }

    #[test]
    fn splits_a_record_set_into_checked_views() {
        let mut set = batch(2, b"ab");
        set.extend(batch(0, b"c"));
        let views = split_batches(&set).unwrap();
        assert_eq!(views.len(), 2);
        assert_eq!((views[0].start(), views[1].start()), (0, views[0].len()));
        assert_eq!(views[1].bytes(), &set[views[0].len()..]);
        assert_eq!(views[0].header().last_offset_delta, 2);
        assert_eq!(split_batches(&[]), Err(BatchError::Empty));
        assert!(matches!(split_batches(&set[..30]), Err(BatchError::Invalid { at: 0, .. })));
        let mut bad_crc = set.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 1;
        assert!(matches!(split_batches(&bad_crc), Err(BatchError::Invalid { fault: BatchFault::BadCrc { .. }, .. })));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut h = *BatchView::whole(&batch(3, b"x")).unwrap().header();
        h.base_sequence = i32::MAX - 1;
        assert_eq!(h.last_sequence(), 1);
        h.base_sequence = -1;
        assert_eq!(h.last_sequence(), -1);
    }
}
