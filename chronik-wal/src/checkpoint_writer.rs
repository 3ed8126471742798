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
//!
//! The writer carries out at most [`RECOVERY_POINTS_PER_S_MAX`] requests a second for the whole
//! process; the rest wait for the next second in the same deferred set. With up to that many
//! partitions taking writes each still gets its recovery point every interval; with more (1,000
//! partitions written at once: about every 10 s each) each gets one less often, so a restart scans
//! a longer tail of each, while the fsyncs recovery points cost stay bounded instead of growing with
//! the number of partitions written and competing with the produce path's own.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{OnceLock, Weak};
use std::time::Instant;

use crate::flusher::Flusher;

/// Most flushers waiting for their recovery point write.
const QUEUE_LEN_MAX: usize = 4096;

/// Most recovery point writes a second, for the process (each costs up to four fsyncs).
pub const RECOVERY_POINTS_PER_S_MAX: u32 = 100;

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
    let mut pending = Pending::default();
    let mut budget = Budget::new(RECOVERY_POINTS_PER_S_MAX);
    loop {
        // The earliest deferred request, but never before the budget allows one (no spinning on a
        // request that is due while this second's budget is spent).
        let now = Instant::now();
        let wake = pending.heap.peek().map(|d| if budget.left(now) { d.at } else { d.at.max(budget.refill_at()) });
        let next = match wake {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(now)),
        };
        match next {
            Ok(flusher) => pending.write_or_defer(flusher, &mut budget),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        while pending.heap.peek().is_some_and(|d| d.at <= now) && budget.left(now) {
            if let Some(d) = pending.heap.pop() {
                pending.write_or_defer(d.flusher, &mut budget);
            }
        }
    }
}

/// The deferred requests (at most one per open partition log: a flusher stays marked as requested
/// while it waits), earliest first.
#[derive(Default)]
struct Pending {
    heap: BinaryHeap<Deferred>,
    seq: u64,
}

impl Pending {
    /// Carries out `flusher`'s request now if the budget allows, else defers it to the budget's next
    /// second; a request the flusher says is not due yet is deferred to when it is.
    fn write_or_defer(&mut self, flusher: Weak<Flusher>, budget: &mut Budget) {
        // A log dropped meanwhile needs nothing more.
        let Some(f) = flusher.upgrade() else { return };
        if !budget.take(Instant::now()) {
            self.defer(flusher, budget.refill_at());
            return;
        }
        if let Some(at) = f.write_requested_checkpoint() {
            // Not due yet: nothing was written, so the budget is not spent on it.
            budget.give_back();
            self.defer(flusher, at);
        }
    }

    fn defer(&mut self, flusher: Weak<Flusher>, at: Instant) {
        self.seq += 1;
        self.heap.push(Deferred { at, seq: self.seq, flusher });
    }
}

/// Requests carried out per one-second window.
struct Budget {
    per_s: u32,
    window_start: Instant,
    used: u32,
}

impl Budget {
    fn new(per_s: u32) -> Budget {
        Budget { per_s, window_start: Instant::now(), used: 0 }
    }

    fn roll(&mut self, now: Instant) {
        if now.saturating_duration_since(self.window_start) >= BUDGET_WINDOW {
            self.window_start = now;
            self.used = 0;
        }
    }

    /// Whether a request may be carried out at `now`.
    fn left(&mut self, now: Instant) -> bool {
        self.roll(now);
        self.used < self.per_s
    }

    /// Takes one request from the budget; false when this window's is spent.
    fn take(&mut self, now: Instant) -> bool {
        if !self.left(now) {
            return false;
        }
        self.used += 1;
        true
    }

    /// Returns a request taken that turned out to write nothing.
    fn give_back(&mut self) {
        self.used = self.used.saturating_sub(1);
    }

    /// When the next window starts.
    fn refill_at(&self) -> Instant {
        self.window_start + BUDGET_WINDOW
    }
}

const BUDGET_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_so_many_a_second_then_refills() {
        let start = Instant::now();
        let mut b = Budget { per_s: 3, window_start: start, used: 0 };
        assert!(b.take(start) && b.take(start) && b.take(start));
        assert!(!b.take(start), "the fourth in one second waits");
        assert_eq!(b.refill_at(), start + BUDGET_WINDOW);
        b.give_back();
        assert!(b.take(start), "a request given back can be taken again");
        assert!(b.take(start + BUDGET_WINDOW), "the next second has a new budget");
    }
}
