//! Segment life cycle: rolling, reads across segments, retention, truncation, deletion.
mod common;

use common::*;
use chronik_wal::LogConfig;

fn sized(segment_bytes: u64) -> LogConfig {
    LogConfig { segment_bytes, ..small_config() }
}

#[test]
fn rolls_by_size_before_crossing_and_reads_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &sized(1000));
    let bs = append_n(&mut log, 10, 2, 239); // 300 bytes each: 3 per segment
    assert_eq!(bs[0].len(), 300);
    assert_eq!(log.segment_base_offsets(), vec![0, 6, 12, 18]);
    // Sealed segments are trimmed to their data; the active one stays preallocated.
    assert_eq!(file_len(&seg_path(dir.path(), 0, "log")), 900);
    assert_eq!(file_len(&seg_path(dir.path(), 18, "log")), 1000);
    // A read stops at the end of the segment holding the offset; the caller continues.
    let r = log.read(2, usize::MAX, i64::MAX).unwrap();
    assert_eq!(&r.records[..], &bs[1..3].concat()[..]);
    let mut got = Vec::new();
    let mut offset = 0;
    while offset < log.log_end_offset() {
        let r = log.read(offset, usize::MAX, i64::MAX).unwrap();
        assert!(!r.records.is_empty());
        offset = base_offset(&r.records[r.records.len() - 300..]) + 2;
        got.extend_from_slice(&r.records);
    }
    assert_eq!(got, bs.concat());
    // Reopen: sealed segments verified, everything still readable.
    drop(log);
    let log = open(dir.path(), &sized(1000));
    assert_eq!(log.segment_base_offsets(), vec![0, 6, 12, 18]);
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(&log.read(13, usize::MAX, i64::MAX).unwrap().records[..], &bs[6..9].concat()[..]);
}

#[test]
fn bytes_below_an_offset_count_whole_batches_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &sized(1000));
    append_n(&mut log, 10, 2, 239); // 300 bytes each, 2 records each: 3 per segment
    // (offset, bytes below): start, a batch boundary, inside a batch, a segment boundary, the end, past it.
    for (offset, want) in [(0, 0), (2, 300), (3, 300), (6, 900), (8, 1200), (20, 3000), (25, 3000), (-1, 0)] {
        assert_eq!(log.bytes_below(offset).unwrap(), want, "offset {offset}");
    }
    assert_eq!(log.bytes_below(20).unwrap(), log.size_bytes());
}

#[test]
fn rolls_when_an_index_is_full() {
    let dir = tempfile::tempdir().unwrap();
    // An entry per batch (interval 0) and room for 2 time entries (24 bytes), 3 offset entries.
    let config = LogConfig { index_interval_bytes: 0, index_bytes_max: 24, ..small_config() };
    let mut log = open(dir.path(), &config);
    append_n(&mut log, 7, 1, 10);
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4, 6]);
    assert_eq!(file_len(&seg_path(dir.path(), 0, "timeindex")), 24);
    assert_eq!(file_len(&seg_path(dir.path(), 0, "index")), 16);
    for o in 0..7 {
        assert_eq!(base_offset(&log.read(o, 1, i64::MAX).unwrap().records), o);
    }
}

#[test]
fn rolls_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_ms: 0, ..small_config() };
    let mut log = open(dir.path(), &config);
    append_n(&mut log, 3, 1, 10);
    assert_eq!(log.segment_base_offsets(), vec![0, 1, 2]);
}

#[test]
fn retention_by_size_deletes_oldest_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_bytes: Some(1500), ..sized(1000) };
    let mut log = open(dir.path(), &config);
    append_n(&mut log, 10, 2, 239); // segments of 900, 900, 900, 300 bytes
    assert_eq!(log.size_bytes(), 3000);
    assert_eq!(log.apply_retention(0).unwrap(), 1, "3000-900 >= 1500, 2100-900 < 1500");
    assert_eq!(log.log_start_offset(), 6);
    assert_eq!(log.segment_base_offsets(), vec![6, 12, 18]);
    assert!(!seg_path(dir.path(), 0, "log").exists());
    assert!(!seg_path(dir.path(), 0, "index").exists());
    assert!(!seg_path(dir.path(), 0, "timeindex").exists());
    assert!(matches!(log.read(5, 10, i64::MAX), Err(chronik_wal::WalError::OffsetOutOfRange { log_start: 6, .. })));
    assert_eq!(log.read(5 + 1, 1, i64::MAX).unwrap().log_start_offset, 6);
    assert_eq!(log.apply_retention(0).unwrap(), 0);
    drop(log);
    assert_eq!(open(dir.path(), &config).log_start_offset(), 6);
}

#[test]
fn retention_by_time_uses_each_segments_largest_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_ms: Some(100), ..sized(1000) };
    let mut log = open(dir.path(), &config);
    for ts in [1000, 1010, 1020, 2000, 2010, 2020, 3000, 3010] {
        let b = batch(1, ts, 239);
        log.append(&b, 0).unwrap();
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 3, 6]);
    assert_eq!(log.apply_retention(1120).unwrap(), 0, "segment 0 max ts 1020 is exactly 100 old");
    assert_eq!(log.apply_retention(1121).unwrap(), 1);
    assert_eq!(log.log_start_offset(), 3);
    // The active segment is never deleted, however old.
    assert_eq!(log.apply_retention(1_000_000).unwrap(), 1);
    assert_eq!(log.segment_base_offsets(), vec![6]);
    assert_eq!(log.log_end_offset(), 8);
}

#[test]
fn delete_before_drops_segments_wholly_below() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &sized(1000));
    append_n(&mut log, 10, 2, 239);
    assert_eq!(log.delete_before(11).unwrap(), 1);
    assert_eq!(log.log_start_offset(), 6);
    assert_eq!(log.delete_before(12).unwrap(), 1);
    assert_eq!(log.log_start_offset(), 12);
}

#[test]
fn truncate_within_the_active_segment_and_append_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    let bs = append_n(&mut log, 5, 3, 20); // 0-2, 3-5, 6-8, 9-11, 12-14
    log.truncate_to(7).unwrap(); // drops 6-8 and later
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.flusher().durable_end_offset(), 6);
    assert_eq!(&log.read(0, usize::MAX, i64::MAX).unwrap().records[..], &bs[..2].concat()[..]);
    let b = stamped(&batch(1, 7, 5), 6, 2);
    assert_eq!(log.append(&b, 2).unwrap().base_offset, 6);
    log.truncate_to(100).unwrap(); // beyond the end: nothing
    assert_eq!(log.log_end_offset(), 7);
    drop(log);
    // The cut tail was zeroed: no old batch comes back after a reopen.
    let log = open(dir.path(), &small_config());
    assert_eq!(log.log_end_offset(), 7);
    assert_eq!(&log.read(0, usize::MAX, i64::MAX).unwrap().records[..], &[bs[0].clone(), bs[1].clone(), b].concat()[..]);
}

#[test]
fn truncate_into_a_sealed_segment_removes_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &sized(1000));
    let bs = append_n(&mut log, 10, 2, 239); // segments 0, 6, 12, 18
    log.truncate_to(8).unwrap(); // batch 8-9 is the second of segment 6
    assert_eq!(log.segment_base_offsets(), vec![0, 6]);
    assert_eq!(log.log_end_offset(), 8);
    assert!(!seg_path(dir.path(), 12, "log").exists() && !seg_path(dir.path(), 18, "log").exists());
    assert_eq!(file_len(&seg_path(dir.path(), 6, "log")), 1000, "reactivated: preallocated again");
    let b = stamped(&batch(2, 1, 239), 8, 0);
    assert_eq!(log.append(&b, 0).unwrap().base_offset, 8);
    drop(log);
    let log = open(dir.path(), &sized(1000));
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(&log.read(6, usize::MAX, i64::MAX).unwrap().records[..], &[bs[3].clone(), b].concat()[..]);
}

#[test]
fn truncate_at_a_segment_base_and_below_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &sized(1000));
    append_n(&mut log, 10, 2, 239);
    log.truncate_to(12).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 6, 12]);
    assert_eq!(log.log_end_offset(), 12);
    log.truncate_to(0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.size_bytes()), (0, 0, 0));
    assert_eq!(log.segment_base_offsets(), vec![0]);
    append_n(&mut log, 1, 1, 5);
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn truncate_keeps_bytes_that_readers_still_hold() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    let bs = append_n(&mut log, 4, 1, 50);
    let held = log.read(0, usize::MAX, i64::MAX).unwrap().records;
    log.truncate_to(1).unwrap();
    let b = stamped(&batch(1, 1, 80), 1, 0);
    log.append(&b, 0).unwrap();
    assert_eq!(&held[..], &bs.concat()[..], "a fetch in flight still sees what it was given");
    assert_eq!(&log.read(0, usize::MAX, i64::MAX).unwrap().records[..], &[bs[0].clone(), b].concat()[..]);
}

#[test]
fn delete_removes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topic-0");
    let mut log = open(&path, &small_config());
    append_n(&mut log, 2, 1, 5);
    let held = log.read(0, usize::MAX, i64::MAX).unwrap().records;
    log.delete().unwrap();
    assert!(!path.exists());
    assert_eq!(base_offset(&held), 0, "mapped bytes outlive the unlinked files");
}
