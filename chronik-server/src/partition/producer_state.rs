//! Idempotent-producer bookkeeping for one partition: the last batches of each producer id, so a retried
//! batch is answered with its original offset and a gap in sequences is refused. Pure: the partition calls
//! `check` before appending and `record` after, under its lock. Rebuilt from the log's batch headers on
//! open, so the state survives restarts.

use std::collections::{HashMap, VecDeque};

/// How many recent batches per producer are remembered for duplicate detection (Kafka keeps 5, matching
/// `max.in.flight.requests.per.connection` ≤ 5 for idempotent producers).
pub const PRODUCER_BATCHES_REMEMBERED: usize = 5;
/// Producer ids tracked per partition before the least recently used is forgotten.
pub const PRODUCERS_PER_PARTITION_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchRecord {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
    last_offset: i64,
}

#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchRecord>,
    last_touched: u64,
}

/// The verdict on an incoming idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Accept,
    /// Already stored: answer with the original offsets, append nothing.
    Duplicate { base_offset: i64 },
    /// A gap or a reordering: OUT_OF_ORDER_SEQUENCE_NUMBER.
    OutOfOrder { expected: i32 },
    /// An older epoch than the one seen: INVALID_PRODUCER_EPOCH.
    StaleEpoch { current: i16 },
}

#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    clock: u64,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerStates {
    pub fn check(&self, producer_id: i64, epoch: i16, first_seq: i32, last_seq: i32) -> SequenceCheck {
        let Some(entry) = self.producers.get(&producer_id) else {
            return if first_seq == 0 { SequenceCheck::Accept } else { SequenceCheck::OutOfOrder { expected: 0 } };
        };
        if epoch < entry.epoch {
            return SequenceCheck::StaleEpoch { current: entry.epoch };
        }
        if epoch > entry.epoch {
            // A bumped epoch starts its sequences over.
            return if first_seq == 0 { SequenceCheck::Accept } else { SequenceCheck::OutOfOrder { expected: 0 } };
        }
        if let Some(dup) = entry.batches.iter().find(|b| b.first_seq == first_seq && b.last_seq == last_seq) {
            return SequenceCheck::Duplicate { base_offset: dup.base_offset };
        }
        match entry.batches.back() {
            Some(last) if next_seq(last.last_seq) == first_seq => SequenceCheck::Accept,
            Some(last) => SequenceCheck::OutOfOrder { expected: next_seq(last.last_seq) },
            None => SequenceCheck::Accept,
        }
    }

    /// Remembers a batch that was appended at `base_offset..=last_offset`.
    pub fn record(&mut self, producer_id: i64, epoch: i16, first_seq: i32, last_seq: i32, base_offset: i64, last_offset: i64) {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.producers.entry(producer_id).or_insert_with(|| ProducerEntry {
            epoch,
            batches: VecDeque::with_capacity(PRODUCER_BATCHES_REMEMBERED),
            last_touched: clock,
        });
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_touched = clock;
        if entry.batches.len() == PRODUCER_BATCHES_REMEMBERED {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchRecord { first_seq, last_seq, base_offset, last_offset });
        if self.producers.len() > PRODUCERS_PER_PARTITION_MAX {
            self.evict_oldest();
        }
    }

    /// Forgets batches at or after `offset` (the log was truncated there).
    pub fn truncate_from(&mut self, offset: i64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset < offset);
        }
        self.producers.retain(|_, e| !e.batches.is_empty());
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    fn evict_oldest(&mut self) {
        if let Some((&pid, _)) = self.producers.iter().min_by_key(|(_, e)| e.last_touched) {
            self.producers.remove(&pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SequenceCheck::*;

    #[test]
    fn in_order_duplicate_gap_and_epochs() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(1, 0, 0, 4), Accept);
        s.record(1, 0, 0, 4, 100, 104);
        assert_eq!(s.check(1, 0, 5, 9), Accept);
        s.record(1, 0, 5, 9, 105, 109);
        // A retry of either remembered batch gets its original offset.
        assert_eq!(s.check(1, 0, 0, 4), Duplicate { base_offset: 100 });
        assert_eq!(s.check(1, 0, 5, 9), Duplicate { base_offset: 105 });
        // A gap is refused.
        assert_eq!(s.check(1, 0, 12, 13), OutOfOrder { expected: 10 });
        // The next batch in order is accepted.
        assert_eq!(s.check(1, 0, 10, 10), Accept);
        // A newer epoch restarts at 0; then the older epoch is fenced.
        assert_eq!(s.check(1, 1, 0, 0), Accept);
        s.record(1, 1, 0, 0, 110, 110);
        assert_eq!(s.check(1, 0, 1, 1), StaleEpoch { current: 1 });
        assert_eq!(s.check(1, 2, 3, 3), OutOfOrder { expected: 0 });
        // Unknown producers must start at 0.
        assert_eq!(s.check(2, 0, 7, 7), OutOfOrder { expected: 0 });
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.record(9, 0, i, i, 10 + i64::from(i), 10 + i64::from(i));
        }
        assert_eq!(s.check(9, 0, 6, 6), Duplicate { base_offset: 16 });
        assert_eq!(s.check(9, 0, 2, 2), Duplicate { base_offset: 12 });
        assert_eq!(s.check(9, 0, 1, 1), OutOfOrder { expected: 7 });
    }

    #[test]
    fn truncation_forgets_batches() {
        let mut s = ProducerStates::default();
        s.record(3, 0, 0, 0, 0, 0);
        s.record(3, 0, 1, 1, 1, 1);
        s.truncate_from(1);
        assert_eq!(s.check(3, 0, 1, 1), Accept);
        s.truncate_from(0);
        assert!(s.is_empty());
    }
}
