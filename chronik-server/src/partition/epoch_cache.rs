//! The leader-epoch cache of one partition replica (KIP-101): for every leader epoch that wrote to the
//! log, the first offset it wrote. Built from the batch headers when the log opens, extended on every
//! append that carries a newer epoch, cut back when the log is truncated.
//!
//! It answers OffsetForLeaderEpoch ("where does epoch N end in your log?") and gives a new follower the
//! point where its log stops agreeing with the leader's ([`truncation_offset`]), so truncation is exact
//! and never a guess from the high watermark.

use std::collections::BTreeMap;

/// "No epoch" on the Kafka wire (OffsetForLeaderEpoch answers, batches written before epochs existed).
pub const UNDEFINED_EPOCH: i32 = -1;
/// "No offset" in an OffsetForLeaderEpoch answer.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// Epoch → start offset, epochs and start offsets both strictly increasing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochCache {
    starts: BTreeMap<i32, i64>,
}

impl EpochCache {
    /// The epoch of the newest entry, if any batch carries an epoch.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.starts.keys().next_back().copied()
    }

    /// Notes that a batch of `epoch` starts at `start_offset`. Only a newer epoch adds an entry; batches
    /// of an older or undefined epoch (a replicated history) are already covered.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) {
        if epoch < 0 {
            return;
        }
        match self.starts.last_key_value() {
            Some((&latest, _)) if epoch <= latest => {}
            _ => {
                self.starts.insert(epoch, start_offset);
            }
        }
    }

    /// The log was truncated so that `log_end` is its new end: forget epochs that started at or after it.
    pub fn truncate_from_end(&mut self, log_end: i64) {
        self.starts.retain(|_, start| *start < log_end);
    }

    /// Everything below `log_start` was removed (the log restarted there): no epoch may claim an
    /// earlier start. The entry covering `log_start` is kept, moved up to it.
    pub fn truncate_from_start(&mut self, log_start: i64) {
        let covering = self.starts.iter().filter(|(_, s)| **s <= log_start).map(|(e, _)| *e).next_back();
        self.starts.retain(|_, s| *s > log_start);
        if let Some(e) = covering {
            self.starts.insert(e, log_start);
        }
    }

    /// Kafka's `endOffsetFor`: the largest epoch ≤ `requested` this log knows and the offset where it
    /// ends (the start of the next epoch, or `log_end` for the latest). A requested epoch newer than
    /// every known one (or undefined) gets (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET); one older than every
    /// known epoch gets (requested, start of the first epoch) — nothing of it is here.
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end);
        }
        let Some((_, &next_start)) = self.starts.range(requested.saturating_add(1)..).next() else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match self.starts.range(..=requested).next_back() {
            Some((&floor, _)) => (floor, next_start),
            None => (requested, next_start),
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = (i32, i64)> + '_ {
        self.starts.iter().map(|(e, s)| (*e, *s))
    }
}

/// One step of finding where a follower's log stops agreeing with the new leader's (KIP-279).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// Cut the log here (drop every offset at or above it; a no-op when it is the log end).
    pub offset: i64,
    /// False when the leader's answer named an epoch we do not share: after cutting, ask again with
    /// our (now older) latest epoch.
    pub done: bool,
}

/// Where a follower must cut its log before fetching from a new leader. The follower asked the leader
/// for the end of its own latest epoch; the leader answered `(leader_epoch, leader_end)`.
/// - Undefined answer (the leader knows no such epoch): keep nothing beyond `high_watermark`.
/// - We also have `leader_epoch` as an epoch: both logs agree up to the lower of the two ends of it.
/// - Our floor epoch for `leader_epoch` is another one: cut at the end of our floor epoch and ask again,
///   as Kafka's fetcher does — logs of the same epoch agree, logs of different epochs may not.
pub fn truncation_offset(local: &EpochCache, local_end: i64, high_watermark: i64, leader_epoch: i32, leader_end: i64) -> Truncation {
    if leader_epoch == UNDEFINED_EPOCH || leader_end == UNDEFINED_EPOCH_OFFSET {
        return Truncation { offset: high_watermark.min(local_end).max(0), done: true };
    }
    let (local_epoch, local_epoch_end) = local.end_offset_for(leader_epoch, local_end);
    if local_epoch == leader_epoch {
        Truncation { offset: leader_end.min(local_epoch_end).min(local_end).max(0), done: true }
    } else if local_epoch == UNDEFINED_EPOCH {
        Truncation { offset: leader_end.min(local_end).max(0), done: true }
    } else {
        Truncation { offset: local_epoch_end.min(local_end).max(0), done: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> EpochCache {
        let mut c = EpochCache::default();
        for &(e, s) in entries {
            c.assign(e, s);
        }
        c
    }

    #[test]
    fn assign_keeps_only_newer_epochs() {
        let c = cache(&[(1, 0), (1, 5), (3, 10), (2, 12), (-1, 13), (4, 20)]);
        assert_eq!(c.entries().collect::<Vec<_>>(), vec![(1, 0), (3, 10), (4, 20)]);
        assert_eq!(c.latest_epoch(), Some(4));
    }

    #[test]
    fn end_offset_lookups() {
        let c = cache(&[(1, 0), (3, 10), (4, 20)]);
        let end = 25;
        assert_eq!(c.end_offset_for(4, end), (4, 25), "latest epoch ends at the log end");
        assert_eq!(c.end_offset_for(3, end), (3, 20));
        assert_eq!(c.end_offset_for(2, end), (1, 10), "unknown epoch answers the floor epoch's end");
        assert_eq!(c.end_offset_for(1, end), (1, 10));
        assert_eq!(c.end_offset_for(0, end), (0, 0), "older than every epoch: nothing of it here");
        assert_eq!(c.end_offset_for(5, end), (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET));
        assert_eq!(c.end_offset_for(UNDEFINED_EPOCH, end), (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET));
        assert_eq!(EpochCache::default().end_offset_for(0, 0), (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET));
    }

    #[test]
    fn truncation_forgets_epochs() {
        let mut c = cache(&[(1, 0), (3, 10), (4, 20)]);
        c.truncate_from_end(20);
        assert_eq!(c.latest_epoch(), Some(3));
        c.truncate_from_end(5);
        assert_eq!(c.entries().collect::<Vec<_>>(), vec![(1, 0)]);
        let mut c = cache(&[(1, 0), (3, 10), (4, 20)]);
        c.truncate_from_start(15);
        assert_eq!(c.entries().collect::<Vec<_>>(), vec![(3, 15), (4, 20)]);
    }

    #[test]
    fn follower_truncation_points() {
        let t = |offset, done| Truncation { offset, done };
        // Follower wrote epoch 3 up to 30 but the new leader only has epoch 3 up to 25.
        let f = cache(&[(1, 0), (3, 10)]);
        assert_eq!(truncation_offset(&f, 30, 8, 3, 25), t(25, true));
        // Leader has more of epoch 3 than we do: keep everything.
        assert_eq!(truncation_offset(&f, 30, 8, 3, 40), t(30, true));
        // Our epoch 3 never reached the leader; its epoch 1 ended at 12 there, at 10 here.
        assert_eq!(truncation_offset(&f, 30, 8, 1, 12), t(10, true));
        // The leader answers epoch 2, which we never saw: our floor is epoch 1 (ending at 10); cut
        // there and ask again about epoch 1.
        assert_eq!(truncation_offset(&f, 30, 8, 2, 15), t(10, false));
        // Undefined answer: fall back to the high watermark.
        assert_eq!(truncation_offset(&f, 30, 8, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET), t(8, true));
        // A follower that led epoch 3 without writing (entry at its log end 200) asks about 3; the
        // leader (epochs 1, 2 at 200, 4 at 200) answers (2, 200): cut at 200 — which must drop the
        // empty epoch 3 — and ask again about epoch 1, which then agrees.
        let mut f = cache(&[(1, 100), (3, 200)]);
        assert_eq!(truncation_offset(&f, 200, 150, 2, 200), t(200, false));
        f.truncate_from_end(200);
        assert_eq!(f.latest_epoch(), Some(1));
        assert_eq!(truncation_offset(&f, 200, 150, 1, 200), t(200, true));
        // An empty follower has nothing to cut.
        assert_eq!(truncation_offset(&EpochCache::default(), 0, 0, 4, 100), t(0, true));
    }
}
