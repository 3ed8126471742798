//! Reopening after clean closes and after every kind of interrupted write.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap like the tests do
mod common;

use common::*;
use chronik_wal::{LogConfig, WalError};

/// Three batches of 3 records (offsets 0-8) in one segment; returns their bytes.
fn three(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut log = open(dir, &small_config());
    append_n(&mut log, 3, 3, 40)
}

/// Reopens and checks the log holds exactly `bs` and accepts (and keeps) a next batch.
fn assert_recovered_to(dir: &std::path::Path, bs: &[Vec<u8>]) {
    let mut log = open(dir, &small_config());
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(log.size_bytes(), bs.concat().len() as u64);
    assert_eq!(&log.read(0, usize::MAX, i64::MAX).unwrap().records[..], &bs.concat()[..]);
    assert_eq!(log.flusher().durable_end_offset(), 9);
    let next = stamped(&batch(1, 2000, 3), 9, 0);
    assert_eq!(log.append(&next, 0).unwrap().base_offset, 9);
    drop(log);
    let log = open(dir, &small_config());
    assert_eq!(log.log_end_offset(), 10, "nothing of the torn tail survives behind the new batch");
    assert_eq!(&log.read(0, usize::MAX, i64::MAX).unwrap().records[..], &[bs.concat(), next].concat()[..]);
}

#[test]
fn reopen_after_clean_close_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let bs = three(dir.path());
    assert_recovered_to(dir.path(), &bs);
}

#[test]
fn torn_batch_is_cut_at_every_tear_position() {
    let full = {
        let mut b = batch(2, 1500, 100);
        b[0..8].copy_from_slice(&9i64.to_be_bytes());
        b
    };
    for cut in [1, 8, 11, 12, 16, 20, 21, 60, 61, 100, full.len() - 1] {
        let dir = tempfile::tempdir().unwrap();
        let bs = three(dir.path());
        let end = bs.concat().len() as u64;
        write_at(&seg_path(dir.path(), 0, "log"), end, &full[..cut]);
        assert_recovered_to(dir.path(), &bs);
    }
}

#[test]
fn a_whole_batch_that_was_written_survives() {
    let dir = tempfile::tempdir().unwrap();
    let mut bs = three(dir.path());
    let mut b = batch(2, 1500, 100);
    b[0..8].copy_from_slice(&9i64.to_be_bytes());
    write_at(&seg_path(dir.path(), 0, "log"), bs.concat().len() as u64, &b);
    bs.push(b);
    let log = open(dir.path(), &small_config());
    assert_eq!(log.log_end_offset(), 11, "a complete, valid, continuous batch is kept");
    assert_eq!(&log.read(0, usize::MAX, i64::MAX).unwrap().records[..], &bs.concat()[..]);
}

#[test]
fn garbage_after_the_last_batch_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let bs = three(dir.path());
    let garbage: Vec<u8> = (0..500u32).map(|i| (i * 37 % 256) as u8 | 1).collect();
    write_at(&seg_path(dir.path(), 0, "log"), bs.concat().len() as u64, &garbage);
    assert_recovered_to(dir.path(), &bs);
}

#[test]
fn zeros_in_the_tail_are_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let bs = three(dir.path());
    let end = bs.concat().len() as u64;
    write_at(&seg_path(dir.path(), 0, "log"), end, &[0u8; 4096]);
    // Non-zero bytes after a stretch of zeros (a later page written before an earlier one).
    write_at(&seg_path(dir.path(), 0, "log"), end + 4096, &[7u8; 100]);
    assert_recovered_to(dir.path(), &bs);
}

#[test]
fn a_tail_batch_with_a_bad_crc_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let bs = three(dir.path());
    let mut b = batch(2, 1500, 100);
    b[0..8].copy_from_slice(&9i64.to_be_bytes());
    b[100] ^= 0x40;
    write_at(&seg_path(dir.path(), 0, "log"), bs.concat().len() as u64, &b);
    assert_recovered_to(dir.path(), &bs);
}

#[test]
fn a_tail_batch_with_a_wrong_base_offset_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let bs = three(dir.path());
    let mut b = batch(2, 1500, 100);
    b[0..8].copy_from_slice(&3i64.to_be_bytes()); // valid CRC (not covered) but not continuous
    write_at(&seg_path(dir.path(), 0, "log"), bs.concat().len() as u64, &b);
    assert_recovered_to(dir.path(), &bs);
}

#[test]
fn a_bad_crc_in_the_middle_of_the_active_segment_cuts_there() {
    let dir = tempfile::tempdir().unwrap();
    let bs = three(dir.path());
    let at = (bs[0].len() + 70) as u64;
    write_at(&seg_path(dir.path(), 0, "log"), at, &[0xee]);
    let log = open(dir.path(), &small_config());
    assert_eq!(log.log_end_offset(), 3, "the newest segment keeps only its valid prefix");
}

fn sealed_config() -> LogConfig {
    LogConfig { segment_bytes: 1000, ..small_config() }
}

/// Ten 300-byte batches over segments 0, 6, 12, 18.
fn rolled(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut log = open(dir, &sealed_config());
    let bs = append_n(&mut log, 10, 2, 239);
    assert_eq!(log.segment_base_offsets(), vec![0, 6, 12, 18]);
    bs
}

#[test]
fn corruption_in_a_sealed_segment_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    rolled(dir.path());
    // Without a recovery point (with one, segment 6 is trusted and not read: t35_recovery_point).
    let _ = std::fs::remove_file(dir.path().join("recovery-point"));
    write_at(&seg_path(dir.path(), 6, "log"), 450, &[0xff]);
    match chronik_wal::PartitionLog::open(dir.path(), sealed_config()) {
        Err(WalError::Corrupt { segment, position, reason }) => {
            assert_eq!(segment, seg_path(dir.path(), 6, "log"));
            assert_eq!(position, 300, "the batch holding the flipped byte");
            assert!(reason.contains("crc"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_missing_tail_in_a_sealed_segment_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    rolled(dir.path());
    let f = std::fs::OpenOptions::new().write(true).open(seg_path(dir.path(), 0, "log")).unwrap();
    f.set_len(600).unwrap();
    let err = chronik_wal::PartitionLog::open(dir.path(), sealed_config()).unwrap_err();
    assert!(matches!(&err, WalError::Corrupt { position: 600, reason, .. } if reason.contains("next segment")), "{err}");
}

#[test]
fn crash_between_fsync_and_trim_of_a_sealed_segment_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let bs = rolled(dir.path());
    // As if the roll stopped after fsync: the file and its indexes still have their preallocated size.
    for (ext, len) in [("log", 1000), ("index", 4096), ("timeindex", 4092)] {
        let f = std::fs::OpenOptions::new().write(true).open(seg_path(dir.path(), 6, ext)).unwrap();
        f.set_len(len).unwrap();
    }
    let log = open(dir.path(), &sealed_config());
    assert_eq!(file_len(&seg_path(dir.path(), 6, "log")), 900, "trimmed to its valid data");
    assert_eq!(file_len(&seg_path(dir.path(), 6, "index")) % 8, 0);
    assert!(file_len(&seg_path(dir.path(), 6, "index")) < 4096);
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(&log.read(6, usize::MAX, i64::MAX).unwrap().records[..], &bs[3..6].concat()[..]);
    // Garbage (not zeros) in that tail is corruption, not a crash artefact.
    drop(log);
    let f = std::fs::OpenOptions::new().write(true).open(seg_path(dir.path(), 6, "log")).unwrap();
    f.set_len(1000).unwrap();
    write_at(&seg_path(dir.path(), 6, "log"), 990, &[1]);
    assert!(matches!(chronik_wal::PartitionLog::open(dir.path(), sealed_config()), Err(WalError::Corrupt { position: 900, .. })));
}

#[test]
fn damaged_or_missing_index_files_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let bs = rolled(dir.path());
    std::fs::remove_file(seg_path(dir.path(), 0, "index")).unwrap();
    std::fs::write(seg_path(dir.path(), 6, "timeindex"), [9u8; 5]).unwrap();
    std::fs::write(dir.path().join("00000000000000000099.index"), [1u8; 8]).unwrap();
    std::fs::write(dir.path().join("00000000000000000006.log.tmp"), [1u8; 8]).unwrap();
    let log = open(dir.path(), &sealed_config());
    assert!(seg_path(dir.path(), 0, "index").exists());
    assert!(!dir.path().join("00000000000000000099.index").exists(), "orphan index removed");
    assert!(!dir.path().join("00000000000000000006.log.tmp").exists(), "leftover copy removed");
    for o in 0..20 {
        let r = log.read(o, 1, i64::MAX).unwrap();
        assert_eq!(&r.records[..], &bs[o as usize / 2][..]);
    }
    assert_eq!(log.offset_for_timestamp(1007).unwrap(), Some((14, 1007)));
}
