//! The background thread that writes recovery points, so that no acknowledgement, no append and no
//! open waits for the fsyncs one costs (up to four: both index files, the file, the directory).
//!
//! One thread for the process, started on first use, fed by a bounded queue of flushers that asked
//! for a write. A flusher is queued at most once at a time (`Flusher::request_checkpoint`); when the
//! queue is full the request is dropped and the next sync asks again — a recovery point that lags
//! only makes the next open scan more. If the thread cannot be started, requests are dropped the same
//! way and recovery points are written only by explicit calls (`Flusher::write_recovery_point`).
//! A request that arrives inside the flusher's interval is kept and carried out when the interval
//! ends, so the last sync of a burst gets its recovery point without a later write.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{OnceLock, Weak};
use std::time::Instant;

use crate::flusher::Flusher;

/// Most flushers waiting for their recovery point write.
const QUEUE_LEN_MAX: usize = 4096;

static QUEUE: OnceLock<Option<SyncSender<Weak<Flusher>>>> = OnceLock::new();

/// Queues `flusher` for a recovery point write; false when it could not be queued.
pub(crate) fn request(flusher: Weak<Flusher>) -> bool {
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = sync_channel::<Weak<Flusher>>(QUEUE_LEN_MAX);
        let started = std::thread::Builder::new().name("chronik-recovery-point".into()).spawn(move || serve(&rx));
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

/// The writer's loop: queued requests at once, deferred ones (inside their interval) when due. A
/// flusher is deferred at most once at a time (it stays marked as requested meanwhile), so the
/// deferred set holds at most one entry per open partition log.
fn serve(rx: &Receiver<Weak<Flusher>>) {
    let mut deferred = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let next = match deferred.peek() {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(Deferred { at, .. }) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        match next {
            Ok(flusher) => write(flusher, &mut deferred, &mut seq),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        while deferred.peek().is_some_and(|d| d.at <= now) {
            if let Some(d) = deferred.pop() {
                write(d.flusher, &mut deferred, &mut seq);
            }
        }
    }
}

fn write(flusher: Weak<Flusher>, deferred: &mut BinaryHeap<Deferred>, seq: &mut u64) {
    // A log dropped meanwhile needs nothing more.
    let Some(f) = flusher.upgrade() else { return };
    if let Some(at) = f.write_requested_checkpoint() {
        *seq += 1;
        deferred.push(Deferred { at, seq: *seq, flusher });
    }
}

/// A request to carry out at `at`; the heap's top is the earliest (ties in arrival order).
struct Deferred {
    at: Instant,
    seq: u64,
    flusher: Weak<Flusher>,
}

impl Ord for Deferred {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}
impl PartialOrd for Deferred {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Deferred {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Deferred {}
