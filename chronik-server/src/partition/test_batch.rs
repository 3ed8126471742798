//! Test-only builder of v2 record batches with a correct CRC-32C (the broker reads the header layout
//! only through `chronik_wal::split_batches`; this writes it field by field, in order).

use chronik_wal::{BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};

/// A valid v2 batch with `count` tiny records' worth of opaque payload, base offset 0.
pub fn batch(count: i32, producer_id: i64, epoch: i16, base_seq: i32) -> Vec<u8> {
    let payload = vec![0u8; 8 * count as usize];
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + payload.len()) as i32).to_be_bytes());
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

/// A batch as a leader stored it: `batch(count, -1, -1, -1)` with `base_offset` and the leader epoch
/// written in (both outside the CRC).
pub fn stored(count: i32, base_offset: i64, leader_epoch: i32) -> Vec<u8> {
    let mut b = batch(count, -1, -1, -1);
    b[..8].copy_from_slice(&base_offset.to_be_bytes());
    b[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    b
}
