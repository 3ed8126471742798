//! The free-space floor of the data directory: partition appends stop while the file system has less
//! than [`DATA_FREE_BYTES_MIN`] free, so a disk filled by records never leaves the metadata without room.
//!
//! Partition logs and the metadata Raft log share the data directory. Were the records allowed to take
//! the last bytes, the next metadata write (a vote, a committed index, a log entry — small, but
//! constant, and frequent while the cluster shrinks ISRs around the full node) would fail, and openraft
//! stops its core on any storage error: the broker would halt (exit 75) instead of waiting for space.
//! Below the floor, a produce is answered KAFKA_STORAGE_ERROR and a follower's append fails the same
//! way (the fetcher retries after a second; the leader drops it from the ISR after
//! `replica_lag_time_max_ms`, so acks=all gets NOT_ENOUGH_REPLICAS where the ISR falls below the
//! minimum), while the metadata keeps the floor to itself. Appends resume by themselves once space
//! returns: free space is re-read at least every [`CHECK_EVERY_MS`] and after every
//! [`CHECK_EVERY_BYTES`] admitted.
//!
//! What the floor does not cover: space taken by something other than this broker. A file system
//! filled to the last byte by another process can still fail a metadata write and halt the broker.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Free bytes the data directory keeps for the metadata: appends are refused below it.
pub const DATA_FREE_BYTES_MIN: u64 = 8 << 20;
/// Bytes admitted between two reads of the file system's free space.
pub const CHECK_EVERY_BYTES: u64 = 1 << 20;
/// Longest time between two reads of the file system's free space while appends come in.
pub const CHECK_EVERY_MS: u64 = 100;

/// An append refused for want of free space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BelowFloor {
    pub free: u64,
    pub floor: u64,
}

struct Reading {
    /// Free bytes at the last statvfs.
    free: u64,
    /// Bytes admitted since then.
    admitted: u64,
    at: Instant,
}

/// The floor of one data directory, shared by all its partitions.
pub struct DiskFloor {
    dir: PathBuf,
    floor: u64,
    reading: Mutex<Option<Reading>>,
}

impl DiskFloor {
    /// The floor of the file system holding `dir`.
    pub fn new(dir: &Path, floor: u64) -> DiskFloor {
        DiskFloor { dir: dir.to_path_buf(), floor, reading: Mutex::new(None) }
    }

    /// A floor of zero: never reads the file system, never refuses (tests of other behaviour).
    pub fn none() -> DiskFloor {
        DiskFloor::new(Path::new("."), 0)
    }

    /// Admits an append of `bytes`, or refuses it when it would leave less than the floor free.
    pub fn admit(&self, bytes: u64) -> Result<(), BelowFloor> {
        if self.floor == 0 {
            return Ok(());
        }
        let mut reading = self.reading.lock();
        let stale = match &*reading {
            None => true,
            Some(r) => r.admitted + bytes > CHECK_EVERY_BYTES || r.at.elapsed() >= Duration::from_millis(CHECK_EVERY_MS),
        };
        if stale {
            match rustix::fs::statvfs(&self.dir) {
                Ok(st) => *reading = Some(Reading { free: st.f_bavail.saturating_mul(st.f_frsize), admitted: 0, at: Instant::now() }),
                Err(e) => {
                    // Not knowing is no reason to refuse: the append itself reports ENOSPC if it comes.
                    tracing::debug!(dir = %self.dir.display(), error = %e, "statvfs failed; append admitted");
                    return Ok(());
                }
            }
        }
        match reading.as_mut() {
            Some(r) => r.admit(self.floor, bytes),
            None => Ok(()),
        }
    }
}

impl Reading {
    /// Admits `bytes` against what is left of the last reading above `floor`, and counts them.
    fn admit(&mut self, floor: u64, bytes: u64) -> Result<(), BelowFloor> {
        let free = self.free.saturating_sub(self.admitted);
        if free < floor.saturating_add(bytes) {
            return Err(BelowFloor { free, floor });
        }
        self.admitted += bytes;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_below_the_floor_and_admits_above_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let free = rustix::fs::statvfs(dir.path()).map(|st| st.f_bavail * st.f_frsize).expect("statvfs");
        let roomy = DiskFloor::new(dir.path(), 1);
        assert_eq!(roomy.admit(4096), Ok(()));
        let tight = DiskFloor::new(dir.path(), free + (1 << 30));
        let refused = tight.admit(1).expect_err("a floor above the free space refuses");
        assert_eq!(refused.floor, free + (1 << 30));
        assert_eq!(DiskFloor::none().admit(u64::MAX), Ok(()));
    }

    #[test]
    fn admitted_bytes_count_until_the_next_reading() {
        let mut r = Reading { free: 10 << 20, admitted: 0, at: Instant::now() };
        let floor = 8 << 20;
        assert_eq!(r.admit(floor, 1 << 20), Ok(()));
        assert_eq!(r.admit(floor, 1 << 20), Ok(()), "exactly the floor left");
        assert_eq!(r.admit(floor, 1), Err(BelowFloor { free: 8 << 20, floor }), "the admitted 2 MiB count");
    }
}
