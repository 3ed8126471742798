//! Test helpers: build valid Kafka v2 record batches without a protocol crate, and open logs.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use chronik_wal::{LogConfig, PartitionLog};

pub const HEADER: usize = 61;

/// A v2 batch of `records` records, max timestamp `ts`, `payload` bytes of opaque record data.
pub fn batch(records: i32, ts: i64, payload: usize) -> Vec<u8> {
    let mut b = vec![0u8; HEADER];
    b.extend((0..payload).map(|i| (i % 251) as u8 + 1));
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    b[16] = 2;
    b[23..27].copy_from_slice(&(records - 1).to_be_bytes());
    b[27..35].copy_from_slice(&ts.to_be_bytes());
    b[35..43].copy_from_slice(&ts.to_be_bytes());
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    b[57..61].copy_from_slice(&records.to_be_bytes());
    fix_crc(&mut b);
    b
}

pub fn fix_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// `b` as the log stores it: base offset and leader epoch stamped (the log never modifies the caller's
/// slice).
pub fn stamped(b: &[u8], base_offset: i64, leader_epoch: i32) -> Vec<u8> {
    let mut s = b.to_vec();
    s[0..8].copy_from_slice(&base_offset.to_be_bytes());
    s[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    s
}

pub fn base_offset(b: &[u8]) -> i64 {
    i64::from_be_bytes(b[0..8].try_into().unwrap())
}

pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 256,
        index_bytes_max: 4096,
        retention_ms: None,
        // Test batches carry timestamps near 1970, which after a reopen would make every segment
        // "old" (age counts from the first batch's timestamp, as in Kafka).
        segment_ms: u64::MAX,
        ..LogConfig::default()
    }
}

pub fn open(dir: &Path, config: &LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config.clone()).unwrap()
}

/// Appends `n` batches of `records` records each (timestamps 1000, 1001, ...) and returns the
/// stamped bytes of each.
pub fn append_n(log: &mut PartitionLog, n: usize, records: i32, payload: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let b = batch(records, 1000 + i as i64, payload);
            let info = log.append(&b, 5).unwrap();
            stamped(&b, info.base_offset, 5)
        })
        .collect()
}

pub fn seg_path(dir: &Path, base: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

/// Writes raw bytes into a file at a position (simulating what a crash left behind).
pub fn write_at(path: &Path, pos: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, pos).unwrap();
    f.sync_all().unwrap();
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}
