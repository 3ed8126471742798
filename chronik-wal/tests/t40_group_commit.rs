//! Group commit: concurrent producers share fdatasync calls and every acknowledged offset is durable.
mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use chronik_wal::{LogConfig, WalError};
use common::*;
use parking_lot::Mutex;

const THREADS: usize = 8;
const APPENDS_PER_THREAD: usize = 40;

#[test]
fn concurrent_appenders_all_become_durable_with_fewer_syncs_than_appends() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments so rolls (which swap the synced file) happen during the run.
    let config = LogConfig { segment_bytes: 8 * 1024, ..small_config() };
    let log = Arc::new(Mutex::new(open(dir.path(), &config)));
    let flusher = log.lock().flusher();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = Arc::clone(&log);
            let flusher = Arc::clone(&flusher);
            thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..APPENDS_PER_THREAD {
                    let b = batch(1, (t * 1000 + i) as i64, 200);
                    let info = log.lock().append(&b, 0).unwrap();
                    flusher.sync_through(info.last_offset + 1).unwrap();
                    assert!(flusher.durable_end_offset() > info.last_offset);
                    acked.push(info.base_offset);
                }
                acked
            })
        })
        .collect();
    let mut all: Vec<i64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort_unstable();
    let total = THREADS * APPENDS_PER_THREAD;
    assert_eq!(all, (0..total as i64).collect::<Vec<_>>(), "every offset assigned exactly once");
    assert_eq!(flusher.durable_end_offset(), total as i64);
    assert!(log.lock().segment_base_offsets().len() > 3, "rolled during the run");
    let syncs = flusher.sync_count();
    assert!(syncs < total as u64, "{syncs} syncs for {total} appends");
    drop(log);
    let reopened = open(dir.path(), &config);
    assert_eq!(reopened.log_end_offset(), total as i64);
}

#[test]
fn callers_waiting_together_share_one_sync() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(open(dir.path(), &small_config())));
    let flusher = log.lock().flusher();
    const ROUNDS: u64 = 10;
    let appended = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (log, flusher, appended) = (Arc::clone(&log), Arc::clone(&flusher), Arc::clone(&appended));
            thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let b = batch(2, 1, 50);
                    let info = log.lock().append(&b, 0).unwrap();
                    // Everyone appends before anyone syncs: the first sync covers the whole round.
                    appended.wait();
                    flusher.sync_through(info.last_offset + 1).unwrap();
                    appended.wait();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(flusher.sync_count(), ROUNDS, "one fdatasync per round of {THREADS} appends");
    assert_eq!(flusher.durable_end_offset(), (ROUNDS as i64) * THREADS as i64 * 2);
}

#[test]
fn syncing_beyond_the_log_end_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    append_n(&mut log, 2, 1, 10);
    let flusher = log.flusher();
    assert_eq!(flusher.durable_end_offset(), 0);
    flusher.sync_through(1).unwrap();
    assert_eq!(flusher.durable_end_offset(), 2, "one sync covers everything appended so far");
    flusher.sync_through(2).unwrap();
    assert_eq!(flusher.sync_count(), 1);
    assert!(matches!(flusher.sync_through(3), Err(WalError::SyncBeyondEnd { requested: 3, log_end: 2 })));
    log.truncate_to(1).unwrap();
    assert!(matches!(flusher.sync_through(2), Err(WalError::SyncBeyondEnd { .. })));
}
