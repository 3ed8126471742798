//! A full disk, for real: each test mounts a small tmpfs of its own (root only; skipped with a message
//! otherwise), fills it, and checks that a failed append leaves the log exactly as it was and that the
//! log takes appends again once space returns, without reopening it.
mod common;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use chronik_wal::{LogConfig, PartitionLog, WalError};
use common::*;

/// Size of each test's file system.
const FS_BYTES: u64 = 1 << 20;
/// Page size tmpfs accounts in.
const PAGE_BYTES: usize = 4096;

/// A tmpfs mounted on a temp dir for the life of the value; unmounted on drop, even when the test
/// panics.
struct SmallFs {
    mount: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallFs {
    /// None (with a message) when this process cannot mount: not root, or no mount syscall allowed.
    fn mount(options: &str) -> Option<SmallFs> {
        let parent = tempfile::tempdir().unwrap();
        let mount = parent.path().join("mnt");
        fs::create_dir(&mount).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(&mount).output();
        match out {
            Ok(o) if o.status.success() => Some(SmallFs { mount, _parent: parent }),
            Ok(o) => {
                eprintln!("SKIPPED: cannot mount a tmpfs (needs root): {}", String::from_utf8_lossy(&o.stderr).trim());
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.mount.join(name)
    }

    /// Free bytes as the file system counts them.
    fn free_bytes(&self) -> u64 {
        let out = Command::new("df").args(["--output=avail", "-B1"]).arg(&self.mount).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.mount).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
    }
}

/// Writes `path` until the file system refuses (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = File::create(path).unwrap();
    let chunk = vec![0xAB_u8; PAGE_BYTES];
    let mut written = 0;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "filling: {e}");
                break;
            }
        }
    }
    written
}

fn config(segment_bytes: u64) -> LogConfig {
    // Recovery points only at a new segment: the free-space checks count every page.
    LogConfig { segment_bytes, index_bytes_max: 4096, recovery_point_interval_ms: u64::MAX, ..small_config() }
}

/// Waits (up to 10 s) for the background recovery point write the first sync asks for, so it does
/// not land while the test counts free pages.
fn wait_recovery_point(log: &PartitionLog) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while log.flusher().recovery_point_writes() == 0 {
        assert!(std::time::Instant::now() < deadline, "no recovery point written");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn read_all(log: &PartitionLog) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, usize::MAX, i64::MAX).unwrap();
        let mut at = 0;
        while at < r.records.len() {
            let len = i32::from_be_bytes(r.records[at + 8..at + 12].try_into().unwrap()) as usize + 12;
            let records = i32::from_be_bytes(r.records[at + 57..at + 61].try_into().unwrap());
            offset = base_offset(&r.records[at..]) + i64::from(records);
            at += len;
        }
        out.extend_from_slice(&r.records);
    }
    out
}

#[test]
fn a_failed_append_changes_nothing_and_appends_resume_when_space_returns() {
    let Some(fs) = SmallFs::mount(&format!("size={FS_BYTES}")) else { return };
    let dir = fs.path("log");
    // The active segment is preallocated (sparse) far beyond the file system: only writes use space.
    let mut log = open(&dir, &config(8 << 20));
    let mut stored = append_n(&mut log, 20, 2, 4000);
    log.flusher().sync_through(log.log_end_offset()).unwrap();
    wait_recovery_point(&log);

    // Fill the disk, then give back exactly two pages: the next large batch gets partly written.
    let spare = fs.path("spare");
    fs::write(&spare, vec![0u8; 2 * PAGE_BYTES]).unwrap();
    fill(&fs.path("filler"));
    fs::remove_file(&spare).unwrap();
    let free_before = fs.free_bytes();
    assert!(free_before >= 2 * PAGE_BYTES as u64, "free {free_before}");

    let end = log.log_end_offset();
    let big = batch(2, 5000, 6 * PAGE_BYTES);
    for _ in 0..3 {
        let err = log.append(&big, 5).unwrap_err();
        assert!(err.is_out_of_space(), "expected ENOSPC, got {err}");
        assert!(matches!(err, WalError::Io { .. }));
        assert_eq!(log.log_end_offset(), end, "a failed append moved the log end");
        assert_eq!(fs.free_bytes(), free_before, "the bytes of the failed append were not cut off again");
    }
    assert_eq!(read_all(&log), stored.concat(), "what was stored before the disk filled changed");
    log.flusher().sync_through(end).unwrap();
    assert!(log.flusher().sync_through(end + 1).is_err(), "the failed batch was reported to the flusher");

    // What still fits goes in, right after the last good batch.
    let small = batch(1, 5001, 100);
    let info = log.append(&small, 5).unwrap();
    assert_eq!(info.base_offset, end);
    stored.push(stamped(&small, end, 5));

    // Space returns: the same log, not reopened, takes the large batch at the next offset.
    fs::remove_file(fs.path("filler")).unwrap();
    let info = log.append(&big, 5).unwrap();
    assert_eq!(info.base_offset, end + 1);
    stored.push(stamped(&big, end + 1, 5));
    stored.extend(append_n(&mut log, 5, 2, 4000));
    log.flusher().sync_through(log.log_end_offset()).unwrap();
    assert_eq!(read_all(&log), stored.concat());

    // Recovery finds exactly what the log holds: no stray batch from the failed attempts.
    let end = log.log_end_offset();
    drop(log);
    let log = open(&dir, &config(8 << 20));
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(read_all(&log), stored.concat());
}

#[test]
fn a_roll_that_cannot_create_its_files_leaves_the_log_as_it_was() {
    // Few inodes: a new segment's three files can be refused while there are still blocks.
    let Some(fs) = SmallFs::mount(&format!("size={FS_BYTES},nr_inodes=16")) else { return };
    let dir = fs.path("log");
    let segment_bytes = 3 * 300;
    let mut log = open(&dir, &config(segment_bytes));
    let mut stored = append_n(&mut log, 3, 2, 239); // 300 bytes each: the segment is full
    assert_eq!(log.segment_base_offsets(), vec![0]);

    // Use up the inodes but one: the roll creates the new .log file, then fails on its index.
    let mut hogs = Vec::new();
    loop {
        let hog = fs.path(&format!("inode-{}", hogs.len()));
        match File::create(&hog) {
            Ok(_) => hogs.push(hog),
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
                break;
            }
        }
    }
    fs::remove_file(hogs.pop().unwrap()).unwrap();

    let next = batch(2, 2000, 239);
    let err = log.append(&next, 5).unwrap_err();
    assert!(err.is_out_of_space(), "expected ENOSPC, got {err}");
    assert_eq!(log.segment_base_offsets(), vec![0], "a half-made segment was taken into the log");
    assert_eq!(log.log_end_offset(), 6);
    for ext in ["log", "index", "timeindex"] {
        assert!(!seg_path(&dir, 6, ext).exists(), "the failed roll left {ext} behind");
    }
    assert_eq!(read_all(&log), stored.concat());

    for hog in hogs {
        fs::remove_file(hog).unwrap();
    }
    let info = log.append(&next, 5).unwrap();
    assert_eq!(info.base_offset, 6);
    stored.push(stamped(&next, 6, 5));
    assert_eq!(log.segment_base_offsets(), vec![0, 6]);
    assert_eq!(read_all(&log), stored.concat());
    drop(log);
    let log = open(&dir, &config(segment_bytes));
    assert_eq!(read_all(&log), stored.concat());
}
