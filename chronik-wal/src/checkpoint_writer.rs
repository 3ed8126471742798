//! The background thread that writes recovery points, so that no acknowledgement, no append and no
//! open waits for the fsyncs one costs (up to four: both index files, the file, the directory).
//!
//! One thread for the process, started on first use, fed by a bounded queue of flushers that asked
//! for a write. A flusher is queued at most once at a time (`Flusher::request_checkpoint`); when the
//! queue is full the request is dropped and the next sync asks again — a recovery point that lags
//! only makes the next open scan more. If the thread cannot be started, requests are dropped the same
//! way and recovery points are written only by explicit calls (`Flusher::write_recovery_point`).

use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{OnceLock, Weak};

use crate::flusher::Flusher;

/// Most flushers waiting for their recovery point write.
const QUEUE_LEN_MAX: usize = 4096;

static QUEUE: OnceLock<Option<SyncSender<Weak<Flusher>>>> = OnceLock::new();

/// Queues `flusher` for a recovery point write; false when it could not be queued.
pub(crate) fn request(flusher: Weak<Flusher>) -> bool {
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = sync_channel::<Weak<Flusher>>(QUEUE_LEN_MAX);
        let started = std::thread::Builder::new().name("chronik-recovery-point".into()).spawn(move || {
            while let Ok(flusher) = rx.recv() {
                // A log dropped meanwhile needs nothing more.
                if let Some(f) = flusher.upgrade() {
                    f.write_requested_checkpoint();
                }
            }
        });
        match started {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the recovery point writer; recovery points are written only by explicit calls");
                None
            }
        }
    });
    queue.as_ref().is_some_and(|tx| tx.try_send(flusher).is_ok())
}
