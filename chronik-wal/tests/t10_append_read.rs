//! Basics: append assigns offsets, read returns the stored bytes under each limit.
mod common;

use common::*;
use chronik_wal::{WalError, NO_LOG_APPEND_TIME};

#[test]
fn round_trip_assigns_contiguous_offsets_and_stamps_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.size_bytes()), (0, 0, 0));
    let mut expected = Vec::new();
    let mut next = 0;
    for (i, records) in [1, 3, 10, 1].into_iter().enumerate() {
        let b = batch(records, 100 + i as i64, 40);
        let info = log.append(&b, 9).unwrap();
        assert_eq!(info.base_offset, next);
        assert_eq!(info.last_offset, next + records as i64 - 1);
        assert_eq!(info.max_timestamp, 100 + i as i64);
        assert_eq!(info.log_append_time_ms, NO_LOG_APPEND_TIME);
        assert_eq!(base_offset(&b), 0, "the caller's slice is not modified");
        let stored = log.read(next, usize::MAX, i64::MAX).unwrap().records;
        assert_eq!(base_offset(&stored), next, "base offset stamped in the log");
        assert_eq!(i32::from_be_bytes(stored[12..16].try_into().unwrap()), 9, "leader epoch stamped");
        assert_eq!(&stored[16..], &b[16..], "the rest stored as given");
        next = info.last_offset + 1;
        expected.extend_from_slice(&stored);
    }
    assert_eq!(log.log_end_offset(), 15);
    assert_eq!(log.size_bytes(), expected.len() as u64);
    let r = log.read(0, usize::MAX, i64::MAX).unwrap();
    assert_eq!(&r.records[..], &expected[..]);
    assert_eq!((r.log_start_offset, r.log_end_offset), (0, 15));
}

#[test]
fn read_from_the_middle_of_a_batch_returns_that_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    let bs = append_n(&mut log, 3, 5, 30); // offsets 0-4, 5-9, 10-14
    let r = log.read(7, usize::MAX, i64::MAX).unwrap();
    assert_eq!(&r.records[..], &[bs[1].clone(), bs[2].clone()].concat()[..]);
    let r = log.read(14, usize::MAX, i64::MAX).unwrap();
    assert_eq!(&r.records[..], &bs[2][..]);
    let h = log.batch_headers_from(6).unwrap();
    assert_eq!(h.iter().map(|h| (h.base_offset, h.last_offset)).collect::<Vec<_>>(), vec![(5, 9), (10, 14)]);
    assert_eq!(h[0].size as usize, bs[1].len());
    assert_eq!(h[0].partition_leader_epoch, 5);
    assert!(log.batch_headers_from(15).unwrap().is_empty());
}

#[test]
fn max_bytes_stops_before_a_batch_but_always_returns_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    let bs = append_n(&mut log, 4, 1, 100);
    let one = bs[0].len();
    assert_eq!(log.read(0, 1, i64::MAX).unwrap().records.len(), one, "KIP-74: first batch whole");
    assert_eq!(log.read(0, 0, i64::MAX).unwrap().records.len(), one);
    assert_eq!(log.read(0, 2 * one, i64::MAX).unwrap().records.len(), 2 * one);
    assert_eq!(log.read(0, 3 * one - 1, i64::MAX).unwrap().records.len(), 2 * one);
    assert_eq!(log.read(1, 3 * one, i64::MAX).unwrap().records.len(), 3 * one);
}

#[test]
fn limit_offset_hides_batches_not_wholly_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    let bs = append_n(&mut log, 3, 5, 10); // 0-4, 5-9, 10-14
    let r = log.read(0, usize::MAX, 10).unwrap();
    assert_eq!(&r.records[..], &[bs[0].clone(), bs[1].clone()].concat()[..]);
    assert!(log.read(0, usize::MAX, 4).unwrap().records.is_empty(), "batch 0-4 not wholly below 4");
    assert!(log.read(10, usize::MAX, 10).unwrap().records.is_empty(), "offset == limit");
    assert_eq!(log.read(0, usize::MAX, 5).unwrap().records.len(), bs[0].len());
}

#[test]
fn offsets_outside_the_log_are_out_of_range_and_the_end_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    append_n(&mut log, 2, 2, 10);
    assert!(log.read(4, 100, i64::MAX).unwrap().records.is_empty());
    assert!(matches!(
        log.read(5, 100, i64::MAX),
        Err(WalError::OffsetOutOfRange { offset: 5, log_start: 0, log_end: 4 })
    ));
    assert!(matches!(log.read(-1, 100, i64::MAX), Err(WalError::OffsetOutOfRange { .. })));
    assert!(matches!(log.batch_headers_from(9), Err(WalError::OffsetOutOfRange { .. })));
}

#[test]
fn invalid_batches_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    append_n(&mut log, 1, 1, 10);
    let size = log.size_bytes();
    let mut bad_crc = batch(1, 5, 20);
    bad_crc[70] ^= 0xff;
    let untouched = bad_crc.clone();
    assert!(matches!(log.append(&bad_crc, 1), Err(WalError::InvalidBatch(m)) if m.contains("crc")));
    assert_eq!(bad_crc, untouched, "the slice is never stamped");
    let mut bad_magic = batch(1, 5, 20);
    bad_magic[16] = 1;
    assert!(matches!(log.append(&bad_magic, 1), Err(WalError::InvalidBatch(_))));
    let mut long = batch(1, 5, 20);
    long.push(0);
    assert!(matches!(log.append(&long, 1), Err(WalError::InvalidBatch(_))));
    let short = batch(1, 5, 20)[..40].to_vec();
    assert!(matches!(log.append(&short, 1), Err(WalError::InvalidBatch(_))));
    assert_eq!((log.size_bytes(), log.log_end_offset()), (size, 1));
    // The next good batch lands right after the first one.
    let good = batch(1, 5, 20);
    assert_eq!(log.append(&good, 1).unwrap().base_offset, 1);
    assert_eq!(log.read(1, usize::MAX, i64::MAX).unwrap().records, stamped(&good, 1, 1));
}

#[test]
fn a_batch_larger_than_a_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = chronik_wal::LogConfig { segment_bytes: 1000, ..small_config() };
    let mut log = open(dir.path(), &config);
    let b = batch(1, 1, 1000);
    assert!(matches!(log.append(&b, 0), Err(WalError::BatchTooLarge { size: 1061, segment_bytes: 1000 })));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn offset_for_timestamp_finds_the_first_batch_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let config = chronik_wal::LogConfig { segment_bytes: 2000, index_interval_bytes: 100, ..small_config() };
    let mut log = open(dir.path(), &config);
    // 40 batches of 2 records, timestamps 1000 + 10*i, with one out-of-order timestamp.
    for i in 0..40i64 {
        let ts = if i == 20 { 500 } else { 1000 + 10 * i };
        let b = batch(2, ts, 100);
        log.append(&b, 0).unwrap();
    }
    assert!(log.segment_base_offsets().len() > 2, "spans several segments");
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1000)));
    assert_eq!(log.offset_for_timestamp(1000).unwrap(), Some((0, 1000)));
    assert_eq!(log.offset_for_timestamp(1001).unwrap(), Some((2, 1010)));
    assert_eq!(log.offset_for_timestamp(1155).unwrap(), Some((32, 1160)));
    assert_eq!(log.offset_for_timestamp(1390).unwrap(), Some((78, 1390)));
    assert_eq!(log.offset_for_timestamp(1391).unwrap(), None);
    // Check every timestamp against a linear scan of the headers.
    let headers = log.batch_headers_from(0).unwrap();
    for ts in (990..1400).step_by(3) {
        let want = headers.iter().find(|h| h.max_timestamp >= ts).map(|h| (h.base_offset, h.max_timestamp));
        assert_eq!(log.offset_for_timestamp(ts).unwrap(), want, "ts {ts}");
    }
}

#[test]
fn configs_the_format_cannot_represent_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        chronik_wal::LogConfig { segment_bytes: 10, ..small_config() },
        chronik_wal::LogConfig { segment_bytes: 5 << 30, ..small_config() },
        chronik_wal::LogConfig { index_bytes_max: 11, ..small_config() },
    ] {
        let err = chronik_wal::PartitionLog::open(dir.path(), bad).unwrap_err();
        assert!(matches!(err, WalError::InvalidConfig(_)), "{err}");
    }
}
