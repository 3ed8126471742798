//! The recovery point: what an open trusts and what it still scans, and that a missing, damaged or
//! stale recovery point never costs data.
#![allow(clippy::unwrap_used)]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use chronik_wal::{LogConfig, PartitionLog, RecoveryStats, WalError};
use common::*;

const RECOVERY_POINT: &str = "recovery-point";

/// 300-byte batches, three per 1000-byte segment; index entries every 256 bytes.
fn sealed_config() -> LogConfig {
    LogConfig { segment_bytes: 1000, ..small_config() }
}

/// Ten 300-byte batches (2 records each) over segments 0, 6, 12, 18, with timestamps that go up and
/// down so the largest timestamp of a segment is not its last batch's.
fn rolled(dir: &Path) -> Vec<Vec<u8>> {
    let mut log = open(dir, &sealed_config());
    let ts = [1000, 1200, 1100, 1300, 1250, 1280, 1500, 1400, 1450, 1600];
    let bs: Vec<Vec<u8>> = ts
        .iter()
        .map(|&t| {
            let b = batch(2, t, 239);
            let info = log.append(&b, 5).unwrap();
            stamped(&b, info.base_offset, 5)
        })
        .collect();
    assert_eq!(log.segment_base_offsets(), vec![0, 6, 12, 18]);
    // Rolls ask the background writer; closing the log stops it, so wait for it first. (The roll's
    // own sync may first record offset 18 as the end of segment 12.)
    wait_stored(dir, 18, 18);
    bs
}

/// Waits (up to 10 s) until the stored recovery point is at `offset` in segment `segment`.
fn wait_stored(dir: &Path, offset: i64, segment: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while stored(dir) != Some((offset, segment)) {
        assert!(Instant::now() < deadline, "recovery point {:?}, waited for {offset} in {segment}", stored(dir));
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The recovery point's offset as stored (offset is the first field after magic and version).
fn stored_offset(dir: &Path) -> Option<i64> {
    stored(dir).map(|(offset, _)| offset)
}

/// The recovery point's (offset, segment base) as stored.
fn stored(dir: &Path) -> Option<(i64, i64)> {
    let b = std::fs::read(dir.join(RECOVERY_POINT)).ok()?;
    Some((i64::from_le_bytes(b[8..16].try_into().unwrap()), i64::from_le_bytes(b[16..24].try_into().unwrap())))
}

/// A copy of the partition directory without its recovery point.
fn copy_without_recovery_point(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() != RECOVERY_POINT {
            std::fs::copy(&p, copy.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    copy
}

fn reopen(dir: &Path) -> (PartitionLog, RecoveryStats) {
    let log = open(dir, &sealed_config());
    let stats = log.recovery_stats();
    (log, stats)
}

/// Every read, time lookup and size of `log` equals `expected`'s.
fn assert_same_view(log: &PartitionLog, expected: &PartitionLog) {
    assert_eq!(log.log_end_offset(), expected.log_end_offset());
    assert_eq!(log.size_bytes(), expected.size_bytes());
    for o in log.log_start_offset()..log.log_end_offset() {
        assert_eq!(log.read(o, 1, i64::MAX).unwrap().records, expected.read(o, 1, i64::MAX).unwrap().records);
    }
    for ts in (900..1700).step_by(10) {
        assert_eq!(log.offset_for_timestamp(ts).unwrap(), expected.offset_for_timestamp(ts).unwrap(), "ts {ts}");
    }
}

#[test]
fn a_roll_writes_the_recovery_point_and_sealed_segments_below_it_are_not_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let bs = rolled(dir.path());
    assert_eq!(stored_offset(dir.path()), Some(18), "written when segment 18 started");
    let (log, stats) = reopen(dir.path());
    assert_eq!(stats.recovery_point, Some(18));
    assert_eq!(stats.trusted_segments, 3);
    assert_eq!(stats.scanned_bytes, 300, "only the batch appended after the recovery point");
    assert_eq!(&log.read(0, usize::MAX, i64::MAX).unwrap().records[..], &bs[..3].concat()[..]);
    wait_stored(dir.path(), 20, 18); // the open records what it recovered
    drop(log);
    let (trusted, stats) = reopen(dir.path());
    assert_eq!((stats.recovery_point, stats.scanned_bytes), (Some(20), 0), "after a clean close: nothing scanned");
    // Without a recovery point the same files give the same log (time lookups included), all scanned.
    let copy = copy_without_recovery_point(dir.path());
    let (scanned, stats) = reopen(copy.path());
    assert_eq!((stats.recovery_point, stats.trusted_segments, stats.scanned_bytes), (None, 0, 3000));
    assert_same_view(&trusted, &scanned);
}

#[test]
fn a_corrupt_byte_below_the_recovery_point_is_not_read_but_one_after_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let bs = rolled(dir.path());
    // Segment 6 is trusted: the flipped byte is not seen at open (the point of not scanning it)...
    write_at(&seg_path(dir.path(), 6, "log"), 450, &[0xff]);
    // ...while the batch after the recovery point (offsets 18-19, in the newest segment) is checked
    // and cut as a torn tail.
    write_at(&seg_path(dir.path(), 18, "log"), 100, &[0xff]);
    let (log, stats) = reopen(dir.path());
    assert_eq!(stats.recovery_point, Some(18));
    assert_eq!(stats.trusted_segments, 3);
    assert_eq!(log.log_end_offset(), 18, "the damaged batch after the recovery point is cut");
    assert_eq!(&log.read(0, usize::MAX, i64::MAX).unwrap().records[..], &bs[..3].concat()[..]);
    drop(log);
    // Without the recovery point the same damage in the sealed segment fails the open loudly.
    std::fs::remove_file(dir.path().join(RECOVERY_POINT)).unwrap();
    let err = PartitionLog::open(dir.path(), sealed_config()).unwrap_err();
    assert!(matches!(&err, WalError::Corrupt { position: 300, .. }), "{err}");
}

#[test]
fn a_torn_tail_after_a_recovery_point_inside_the_active_segment_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    let mut bs = append_n(&mut log, 20, 3, 100); // 161 bytes each: offset index entries every 2nd batch
    let flusher = log.flusher();
    flusher.sync_through(60).unwrap();
    flusher.write_recovery_point().unwrap();
    assert_eq!(stored_offset(dir.path()), Some(60));
    bs.extend(append_n(&mut log, 5, 3, 100)); // offsets 60-74, never synced: the "unflushed" tail
    let end = log.size_bytes();
    drop(log);
    // A torn write after them: half a batch.
    let torn = stamped(&batch(3, 5000, 100), 75, 5);
    write_at(&seg_path(dir.path(), 0, "log"), end, &torn[..90]);
    let log = open(dir.path(), &small_config());
    let stats = log.recovery_stats();
    assert_eq!(stats.recovery_point, Some(60));
    assert_eq!(stats.scanned_bytes, 5 * 161, "only the batches after the recovery point");
    assert_eq!(log.log_end_offset(), 75);
    assert_eq!(&log.read(0, usize::MAX, i64::MAX).unwrap().records[..], &bs.concat()[..]);
    // The index carried over from the recovery point plus the scanned part equals a full rebuild.
    let index = std::fs::read(seg_path(dir.path(), 0, "index")).unwrap();
    drop(log);
    std::fs::remove_file(dir.path().join(RECOVERY_POINT)).unwrap();
    let full = open(dir.path(), &small_config());
    assert_eq!(full.recovery_stats().scanned_bytes, 25 * 161);
    assert_eq!(std::fs::read(seg_path(dir.path(), 0, "index")).unwrap(), index);
    // And appends continue the index rule exactly where it stopped.
    drop(full);
    let mut log = open(dir.path(), &small_config());
    append_n(&mut log, 3, 1, 100);
    assert_eq!(log.log_end_offset(), 78);
}

#[test]
fn a_missing_damaged_or_inconsistent_recovery_point_means_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let bs = rolled(dir.path());
    let good = std::fs::read(dir.path().join(RECOVERY_POINT)).unwrap();
    let mut damaged = good.clone();
    damaged[20] ^= 1;
    // Valid CRC, but it names a segment that is not there (base 12 becomes 13).
    let mut elsewhere = good.clone();
    elsewhere[16..24].copy_from_slice(&13i64.to_le_bytes());
    elsewhere[8..16].copy_from_slice(&13i64.to_le_bytes());
    let n = elsewhere.len();
    let crc = crc32c::crc32c(&elsewhere[..n - 4]);
    elsewhere[n - 4..].copy_from_slice(&crc.to_le_bytes());
    for (what, contents) in [("missing", None), ("damaged", Some(damaged)), ("garbage", Some(vec![7u8; 40])),
        ("names a missing segment", Some(elsewhere))]
    {
        let copy = copy_without_recovery_point(dir.path());
        if let Some(c) = contents {
            std::fs::write(copy.path().join(RECOVERY_POINT), c).unwrap();
        }
        let (log, stats) = reopen(copy.path());
        assert_eq!(stats.recovery_point, None, "{what}");
        assert_eq!(stats.scanned_bytes, 3000, "{what}: everything scanned");
        for o in 0..20 {
            assert!(log.read(o, 1, i64::MAX).unwrap().records[..] == bs[o as usize / 2][..], "{what}: offset {o}");
        }
        wait_stored(copy.path(), 20, 18); // replaced by a good one
    }
}

#[test]
fn a_recovery_point_past_the_data_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    let bs = append_n(&mut log, 10, 1, 100);
    log.flusher().sync_through(10).unwrap();
    log.flusher().write_recovery_point().unwrap();
    drop(log);
    // As if the data below the recovery point were lost (e.g. the file replaced): cut in the middle of
    // the batch before the recovery point; the check of that batch fails, the segment is scanned.
    let f = std::fs::OpenOptions::new().write(true).open(seg_path(dir.path(), 0, "log")).unwrap();
    f.set_len(161 * 9 + 50).unwrap();
    drop(f);
    let log = open(dir.path(), &small_config());
    assert_eq!(log.recovery_stats().scanned_bytes, 161 * 9, "the whole segment was scanned");
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(&log.read(0, usize::MAX, i64::MAX).unwrap().records[..], &bs[..9].concat()[..]);
}

#[test]
fn a_damaged_index_below_the_recovery_point_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    rolled(dir.path());
    let (reference, _) = reopen(dir.path());
    wait_stored(dir.path(), 20, 18);
    let index = std::fs::read(seg_path(dir.path(), 6, "index")).unwrap();
    assert!(!index.is_empty());
    drop(reference);
    // Entries out of order: a shape the rule never writes.
    let mut bad = index.clone();
    bad.extend_from_slice(&index[..8]);
    std::fs::write(seg_path(dir.path(), 6, "index"), &bad).unwrap();
    std::fs::remove_file(seg_path(dir.path(), 0, "timeindex")).unwrap();
    let (log, stats) = reopen(dir.path());
    assert_eq!(stats.trusted_segments, 1, "segment 12 only");
    assert_eq!(stats.scanned_bytes, 1800, "segments 0 and 6 were scanned");
    assert_eq!(std::fs::read(seg_path(dir.path(), 6, "index")).unwrap(), index, "rebuilt");
    assert!(seg_path(dir.path(), 0, "timeindex").exists());
    let copy = copy_without_recovery_point(dir.path());
    assert_same_view(&log, &reopen(copy.path()).0);
}

#[test]
fn truncation_below_the_recovery_point_lowers_it_first() {
    let dir = tempfile::tempdir().unwrap();
    rolled(dir.path());
    let mut log = open(dir.path(), &sealed_config());
    wait_stored(dir.path(), 20, 18);
    log.truncate_to(8).unwrap(); // into segment 6, which becomes the active segment again
    assert_eq!(stored_offset(dir.path()), Some(6), "lowered to the start of the cut segment");
    // New data at the cut offsets, never synced, then a crash: the stale recovery point must not
    // vouch for it.
    let b = stamped(&batch(2, 9, 239), 8, 7);
    log.append(&b, 7).unwrap();
    drop(log);
    let (log, stats) = reopen(dir.path());
    assert_eq!(stats.recovery_point, Some(6));
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(&log.read(8, usize::MAX, i64::MAX).unwrap().records[..], &b[..]);
    drop(log);
    // Truncating to the start empties the log and removes the recovery point (a write the open asked
    // for may still land after the truncation: it can only name the empty log's start).
    let mut log = open(dir.path(), &sealed_config());
    log.truncate_to(0).unwrap();
    assert!(matches!(stored(dir.path()), None | Some((0, 0))), "{:?}", stored(dir.path()));
    drop(log);
    let (log, stats) = reopen(dir.path());
    assert_eq!(log.log_end_offset(), 0);
    assert!(matches!(stats.recovery_point, None | Some(0)), "{stats:?}");
}

#[test]
fn syncs_write_the_recovery_point_at_most_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { recovery_point_interval_ms: u64::MAX, ..small_config() };
    let mut log = open(dir.path(), &config);
    let flusher = log.flusher();
    for i in 1..=20 {
        append_n(&mut log, 1, 1, 50);
        flusher.sync_through(i).unwrap();
    }
    // The first sync reached a segment with no recovery point yet: one write, in the background, of
    // whatever was durable when it ran; after it the interval never passes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while flusher.recovery_point_writes() == 0 {
        assert!(Instant::now() < deadline, "no recovery point written");
        std::thread::sleep(Duration::from_millis(5));
    }
    let first = stored_offset(dir.path()).unwrap();
    assert!((1..=20).contains(&first), "{first}");
    flusher.write_recovery_point().unwrap(); // explicit: at once, in this thread
    assert_eq!(stored_offset(dir.path()), Some(20));
    flusher.write_recovery_point().unwrap();
    assert_eq!(flusher.recovery_point_writes(), if first == 20 { 1 } else { 2 }, "nothing moved: nothing written");
    drop(log);

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { recovery_point_interval_ms: 0, ..small_config() };
    let mut log = open(dir.path(), &config);
    let flusher = log.flusher();
    for i in 1..=20 {
        append_n(&mut log, 1, 1, 50);
        flusher.sync_through(i).unwrap();
    }
    wait_stored(dir.path(), 20, 0);
    assert!(flusher.recovery_point_writes() <= 20);
}

#[test]
fn the_last_sync_of_a_burst_gets_its_recovery_point_when_the_interval_ends() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { recovery_point_interval_ms: 300, ..small_config() };
    let mut log = open(dir.path(), &config);
    let flusher = log.flusher();
    append_n(&mut log, 1, 1, 50);
    flusher.sync_through(1).unwrap();
    wait_stored(dir.path(), 1, 0);
    // A burst inside the interval, then nothing: its end is recorded once the interval is over.
    for i in 2..=5 {
        append_n(&mut log, 1, 1, 50);
        flusher.sync_through(i).unwrap();
    }
    wait_stored(dir.path(), 5, 0);
    assert_eq!(flusher.recovery_point_writes(), 2, "one write for the whole burst");
}

/// Descriptors this process holds on index files under `dir`.
fn index_descriptors(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .filter(|target| target.extension().is_some_and(|ext| ext == "index" || ext == "timeindex"))
        .count()
}

#[test]
fn index_files_hold_a_descriptor_only_from_a_write_until_their_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &sealed_config());
    assert_eq!(index_descriptors(dir.path()), 0, "an empty active segment holds only its log");
    let mut written = append_n(&mut log, 2, 2, 239);
    assert_eq!(index_descriptors(dir.path()), 2, "the first entries open both index files");
    log.flusher().sync_through(4).unwrap();
    wait_stored(dir.path(), 4, 0);
    assert_eq!(index_descriptors(dir.path()), 0, "the recovery point synced and closed them");
    // Rolls seal segments (their index files are trimmed, synced and closed) and every entry is still read.
    written.extend(append_n(&mut log, 8, 2, 239));
    log.flusher().sync_through(20).unwrap();
    wait_stored(dir.path(), 20, 18);
    assert_eq!(log.segment_base_offsets(), vec![0, 6, 12, 18]);
    assert_eq!(index_descriptors(dir.path()), 0);
    drop(log);
    let (log, _) = reopen(dir.path());
    assert_eq!(index_descriptors(dir.path()), 0, "an open holds none either");
    for (k, b) in written.iter().enumerate() {
        let offset = 2 * k as i64;
        let read = log.read(offset, 1 << 20, i64::MAX).unwrap();
        assert!(read.records.starts_with(b), "batch at offset {offset}");
    }
}
