//! Reading the header of Kafka v2 record batches inside a produce request's record set, without decoding
//! the records. Byte offsets from the start of a batch (see docs/WAL-FORMAT.md).

/// Size of the v2 batch header.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before the `batchLength` field's coverage begins (baseOffset + batchLength).
const LOG_OVERHEAD_BYTES: usize = 12;

/// The fields of a v2 batch header the broker decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchView {
    /// Byte range of this batch within the record set.
    pub start: usize,
    pub len: usize,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchView {
    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    /// Sequence of the last record (sequences wrap at i32::MAX, as in Kafka).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        if last > i64::from(i32::MAX) {
            (last - i64::from(i32::MAX) - 1) as i32
        } else {
            last as i32
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("record set ends inside a batch header at byte {0}")]
    Truncated(usize),
    #[error("batch at byte {at} has magic {magic}; only v2 record batches are accepted")]
    Magic { at: usize, magic: i8 },
    #[error("batch at byte {at} declares length {declared}, which does not fit the record set")]
    Length { at: usize, declared: i32 },
    #[error("batch at byte {at} has record count {count} but last offset delta {delta}")]
    Count { at: usize, count: i32, delta: i32 },
    #[error("empty record set")]
    Empty,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

/// Splits a record set into its batches, checking each header's framing (the CRC is checked by the log
/// on append). Every index below is bounds-checked by the length tests before it is read.
pub fn split_batches(records: &[u8]) -> Result<Vec<BatchView>, BatchError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < records.len() {
        let rest = &records[at..];
        if rest.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Truncated(at));
        }
        let declared = be_i32(rest, 8);
        let magic = rest[16] as i8;
        if magic != 2 {
            return Err(BatchError::Magic { at, magic });
        }
        let len = LOG_OVERHEAD_BYTES as i64 + i64::from(declared);
        if declared < 0 || len < BATCH_HEADER_BYTES as i64 || len as usize > rest.len() {
            return Err(BatchError::Length { at, declared });
        }
        let len = len as usize;
        let view = BatchView {
            start: at,
            len,
            attributes: be_i16(rest, 21),
            last_offset_delta: be_i32(rest, 23),
            max_timestamp: be_i64(rest, 35),
            producer_id: be_i64(rest, 43),
            producer_epoch: be_i16(rest, 51),
            base_sequence: be_i32(rest, 53),
            record_count: be_i32(rest, 57),
        };
        if view.record_count <= 0 || view.last_offset_delta < 0 || view.last_offset_delta >= view.record_count.max(1) + 0x7fff_0000 {
            return Err(BatchError::Count { at, count: view.record_count, delta: view.last_offset_delta });
        }
        out.push(view);
        at += len;
    }
    if out.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A syntactically valid v2 batch with `count` tiny records' worth of opaque payload and a correct
    /// CRC-32C.
    pub fn batch(count: i32, producer_id: i64, epoch: i16, base_seq: i32) -> Vec<u8> {
        let payload = vec![0u8; 8 * count as usize];
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&((BATCH_HEADER_BYTES - 12 + payload.len()) as i32).to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.push(2);
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(count - 1).to_be_bytes());
        b.extend_from_slice(&1000i64.to_be_bytes());
        b.extend_from_slice(&1000i64.to_be_bytes());
        b.extend_from_slice(&producer_id.to_be_bytes());
        b.extend_from_slice(&epoch.to_be_bytes());
        b.extend_from_slice(&base_seq.to_be_bytes());
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&payload);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn splits_two_batches() {
        let mut set = batch(3, -1, -1, -1);
        set.extend(batch(2, 7, 0, 3));
        let views = split_batches(&set).unwrap();
        assert_eq!(views.len(), 2);
        assert_eq!(views[1].producer_id, 7);
        assert_eq!(views[1].last_sequence(), 4);
        assert_eq!(views[0].start, 0);
        assert_eq!(views[1].start, views[0].len);
    }

    #[test]
    fn rejects_bad_framing() {
        let good = batch(1, -1, -1, -1);
        assert_eq!(split_batches(&good[..30]), Err(BatchError::Truncated(0)));
        let mut magic = good.clone();
        magic[16] = 1;
        assert!(matches!(split_batches(&magic), Err(BatchError::Magic { .. })));
        let mut long = good.clone();
        long[8..12].copy_from_slice(&1000i32.to_be_bytes());
        assert!(matches!(split_batches(&long), Err(BatchError::Length { .. })));
        assert_eq!(split_batches(&[]), Err(BatchError::Empty));
    }

    #[test]
    fn sequence_wraps() {
        let v = BatchView { base_sequence: i32::MAX - 1, last_offset_delta: 3, ..split_batches(&batch(1, 1, 0, 0)).unwrap()[0] };
        assert_eq!(v.last_sequence(), 1);
    }
}
