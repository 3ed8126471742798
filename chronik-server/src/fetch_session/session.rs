//! One incremental fetch session (KIP-227): the partitions a fetcher reads from this broker, with what
//! it last asked for and what it was last told about each, so that neither side has to repeat an
//! unchanged partition.
//!
//! A session is opened by a full fetch (epoch 0) and then driven by incremental fetches carrying the
//! next epoch: each names only the partitions that are new or whose request changed (their fetch offset
//! after a read, mostly) and the partitions to forget; the broker fetches over all of the session's
//! partitions and answers only those with something to say ([`FetchSession::must_answer`]). The cache
//! of sessions, their ids and their eviction are [`super::cache`]; the I/O is
//! `api::fetch`. Pure code: no clock, no locks.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{FetchResponse, TopicName};

/// Session id of a request outside a session, and of a response that opens or keeps none.
pub const NO_SESSION_ID: i32 = 0;
/// Epoch of a full request that asks for a new session.
pub const INITIAL_EPOCH: i32 = 0;
/// Epoch of a full request that wants no session (and closes the one it names).
pub const FINAL_EPOCH: i32 = -1;

/// A partition of a session, by topic name (the Fetch versions served, 4–12, name topics).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: TopicName,
    pub partition: i32,
}

/// What the session remembers of one partition.
#[derive(Clone, Debug)]
struct CachedPartition {
    /// The fetcher's last request for it (fetch offset, limits, epochs): an incremental request that
    /// does not name the partition fetches it with these.
    request: FetchPartition,
    /// The high watermark the fetcher was last told; -1 after an error, so the partition is answered
    /// again once the error clears.
    high_watermark: i64,
    /// The last stable offset the fetcher was last told.
    last_stable_offset: i64,
    /// The log start offset the fetcher was last told.
    log_start_offset: i64,
    /// Key in [`FetchSession::order`].
    position: u64,
}

/// One fetcher's session.
#[derive(Debug)]
pub struct FetchSession {
    pub id: i32,
    /// Opened by a follower (`replica_id` ≥ 0): only another follower's session may evict it while it
    /// is young (Kafka's rule: replication matters more than one consumer's request size).
    pub privileged: bool,
    /// The epoch the next incremental request must carry.
    pub next_epoch: i32,
    pub created_ms: u64,
    pub last_used_ms: u64,
    partitions: HashMap<TopicPartition, CachedPartition>,
    /// The fetch order. A partition that returned records moves to the back, so under `max_bytes`
    /// every partition gets its turn at the front.
    order: BTreeMap<u64, TopicPartition>,
    next_position: u64,
}

/// The epoch after `epoch` (1 after `i32::MAX`: 0 and -1 mean full requests).
pub fn next_epoch(epoch: i32) -> i32 {
    if (INITIAL_EPOCH..i32::MAX).contains(&epoch) {
        epoch + 1
    } else {
        1
    }
}

impl FetchSession {
    /// A session holding the partitions of a full request and what its `response` told the fetcher.
    pub fn open(id: i32, privileged: bool, topics: &[FetchTopic], response: &FetchResponse, now_ms: u64) -> FetchSession {
        let mut session = FetchSession {
            id,
            privileged,
            next_epoch: next_epoch(INITIAL_EPOCH),
            created_ms: now_ms,
            last_used_ms: now_ms,
            partitions: HashMap::new(),
            order: BTreeMap::new(),
            next_position: 0,
        };
        session.update(topics, &[]);
        for (tp, pd) in answered(response) {
            if let Some(cached) = session.partitions.get_mut(&tp) {
                cached.remember(pd);
            }
        }
        session
    }

    /// Partitions in the session.
    pub fn len(&self) -> usize {
        self.partitions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    /// Applies an incremental request: its partitions are added or their request updated, then the
    /// forgotten ones are removed.
    pub fn update(&mut self, topics: &[FetchTopic], forgotten: &[ForgottenTopic]) {
        for t in topics {
            for fp in &t.partitions {
                let tp = TopicPartition { topic: t.topic.clone(), partition: fp.partition };
                match self.partitions.get_mut(&tp) {
                    Some(cached) => cached.request = fp.clone(),
                    None => {
                        let position = self.next_position;
                        self.next_position += 1;
                        self.order.insert(position, tp.clone());
                        let cached = CachedPartition {
                            request: fp.clone(),
                            high_watermark: -1,
                            last_stable_offset: -1,
                            log_start_offset: -1,
                            position,
                        };
                        self.partitions.insert(tp, cached);
                    }
                }
            }
        }
        for t in forgotten {
            for &partition in &t.partitions {
                if let Some(cached) = self.partitions.remove(&TopicPartition { topic: t.topic.clone(), partition }) {
                    self.order.remove(&cached.position);
                }
            }
        }
    }

    /// The whole session as the topics of a fetch, in fetch order (consecutive partitions of one topic
    /// share an entry, so a topic can appear more than once).
    pub fn fetch_topics(&self) -> Vec<FetchTopic> {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for tp in self.order.values() {
            let Some(cached) = self.partitions.get(tp) else { continue };
            match topics.last_mut() {
                Some(last) if last.topic == tp.topic => last.partitions.push(cached.request.clone()),
                _ => topics.push(FetchTopic::default().with_topic(tp.topic.clone()).with_partitions(vec![cached.request.clone()])),
            }
        }
        topics
    }

    /// Reduces the response to an incremental fetch to the partitions the fetcher must hear about
    /// ([`Self::must_answer`]), remembers what they say, and moves those that returned records to the
    /// back of the fetch order. Partitions the session does not hold are answered as they are.
    pub fn answer_incremental(&mut self, response: &mut FetchResponse) {
        for topic in &mut response.responses {
            let name = topic.topic.clone();
            topic.partitions.retain(|pd| {
                let tp = TopicPartition { topic: name.clone(), partition: pd.partition_index };
                let Some(cached) = self.partitions.get_mut(&tp) else { return true };
                if !cached.must_answer(pd) {
                    return false;
                }
                cached.remember(pd);
                if records_len(pd) > 0 {
                    self.order.remove(&cached.position);
                    cached.position = self.next_position;
                    self.next_position += 1;
                    self.order.insert(cached.position, tp);
                }
                true
            });
        }
        response.responses.retain(|t| !t.partitions.is_empty());
    }
}

impl CachedPartition {
    /// Whether an incremental response must carry this partition: it has records, an error, or a high
    /// watermark, last stable offset or log start offset the fetcher has not been told.
    fn must_answer(&self, pd: &PartitionData) -> bool {
        records_len(pd) > 0
            || pd.error_code != 0
            || pd.high_watermark != self.high_watermark
            || pd.last_stable_offset != self.last_stable_offset
            || pd.log_start_offset != self.log_start_offset
            || pd.preferred_read_replica.0 >= 0
    }

    /// Records what the fetcher was told; after an error the high watermark is forgotten, so the
    /// partition is answered again once the error clears.
    fn remember(&mut self, pd: &PartitionData) {
        self.high_watermark = if pd.error_code != 0 { -1 } else { pd.high_watermark };
        self.last_stable_offset = pd.last_stable_offset;
        self.log_start_offset = pd.log_start_offset;
    }
}

fn records_len(pd: &PartitionData) -> usize {
    pd.records.as_ref().map_or(0, |r| r.len())
}

/// Every partition a response answers, with its topic.
fn answered(response: &FetchResponse) -> impl Iterator<Item = (TopicPartition, &PartitionData)> {
    response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |pd| (TopicPartition { topic: t.topic.clone(), partition: pd.partition_index }, pd)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::FetchableTopicResponse;
    use kafka_protocol::protocol::StrBytes;

    pub fn name(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.to_string()))
    }

    /// A request topic: `(partition, fetch offset)` pairs.
    pub fn fetch_topic(topic: &str, parts: &[(i32, i64)]) -> FetchTopic {
        let parts = parts.iter().map(|&(p, offset)| FetchPartition::default().with_partition(p).with_fetch_offset(offset).with_partition_max_bytes(1 << 20));
        FetchTopic::default().with_topic(name(topic)).with_partitions(parts.collect())
    }

    pub fn forget(topic: &str, parts: &[i32]) -> ForgottenTopic {
        ForgottenTopic::default().with_topic(name(topic)).with_partitions(parts.to_vec())
    }

    /// A partition's answer: high watermark, records length, error.
    pub fn answer(p: i32, hw: i64, records: usize, error: i16) -> PartitionData {
        PartitionData::default()
            .with_partition_index(p)
            .with_error_code(error)
            .with_high_watermark(hw)
            .with_last_stable_offset(hw)
            .with_log_start_offset(0)
            .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
            .with_records(Some(Bytes::from(vec![0u8; records])))
    }

    pub fn response(topics: Vec<(&str, Vec<PartitionData>)>) -> FetchResponse {
        let topics = topics.into_iter().map(|(t, parts)| FetchableTopicResponse::default().with_topic(name(t)).with_partitions(parts));
        FetchResponse::default().with_responses(topics.collect())
    }

    /// `topic-partition` of every partition a response carries, in order.
    pub fn listed(resp: &FetchResponse) -> Vec<String> {
        resp.responses.iter().flat_map(|t| t.partitions.iter().map(move |p| format!("{}-{}", t.topic.0, p.partition_index))).collect()
    }

    fn order(s: &FetchSession) -> Vec<String> {
        s.fetch_topics().iter().flat_map(|t| t.partitions.iter().map(move |p| format!("{}-{}@{}", t.topic.0, p.partition, p.fetch_offset))).collect()
    }

    fn opened() -> FetchSession {
        let topics = [fetch_topic("a", &[(0, 0), (1, 0)]), fetch_topic("b", &[(0, 5)])];
        let full = response(vec![("a", vec![answer(0, 10, 0, 0), answer(1, 3, 0, 0)]), ("b", vec![answer(0, 7, 0, 0)])]);
        FetchSession::open(9, false, &topics, &full, 1_000)
    }

    #[test]
    fn open_holds_the_full_requests_partitions_and_expects_epoch_1() {
        let s = opened();
        assert_eq!((s.id, s.next_epoch, s.len()), (9, 1, 3));
        assert_eq!(order(&s), ["a-0@0", "a-1@0", "b-0@5"]);
    }

    #[test]
    fn incremental_adds_updates_and_forgets() {
        let mut s = opened();
        s.update(&[fetch_topic("a", &[(1, 3)]), fetch_topic("c", &[(2, 0)])], &[forget("b", &[0]), forget("zz", &[4])]);
        assert_eq!(order(&s), ["a-0@0", "a-1@3", "c-2@0"]);
        s.update(&[], &[forget("a", &[0, 1]), forget("c", &[2])]);
        assert!(s.is_empty());
        assert!(s.fetch_topics().is_empty());
    }

    #[test]
    fn incremental_answer_carries_only_partitions_with_news() {
        let mut s = opened();
        // a-0 unchanged; a-1 has records; b-0's high watermark moved.
        let mut resp = response(vec![("a", vec![answer(0, 10, 0, 0), answer(1, 3, 100, 0)]), ("b", vec![answer(0, 8, 0, 0)])]);
        s.answer_incremental(&mut resp);
        assert_eq!(listed(&resp), ["a-1", "b-0"]);
        // The same state again: b-0 was told 8 and has nothing new; a-1 still has records to give.
        let mut resp = response(vec![("a", vec![answer(0, 10, 0, 0), answer(1, 3, 100, 0)]), ("b", vec![answer(0, 8, 0, 0)])]);
        s.answer_incremental(&mut resp);
        assert_eq!(listed(&resp), ["a-1"]);
        // Nothing changed at all: an empty topic list.
        let mut resp = response(vec![("a", vec![answer(0, 10, 0, 0), answer(1, 3, 0, 0)]), ("b", vec![answer(0, 8, 0, 0)])]);
        s.answer_incremental(&mut resp);
        assert!(resp.responses.is_empty(), "{:?}", listed(&resp));
    }

    #[test]
    fn log_start_and_stable_offsets_count_as_news() {
        let mut s = opened();
        let mut moved = answer(0, 10, 0, 0);
        moved.log_start_offset = 4;
        let mut lso = answer(1, 3, 0, 0);
        lso.last_stable_offset = 2;
        let mut resp = response(vec![("a", vec![moved, lso])]);
        s.answer_incremental(&mut resp);
        assert_eq!(listed(&resp), ["a-0", "a-1"]);
    }

    #[test]
    fn an_error_is_always_answered_and_the_partition_again_once_it_clears() {
        let mut s = opened();
        let not_leader = 6;
        for _ in 0..2 {
            let mut resp = response(vec![("a", vec![answer(0, 10, 0, not_leader), answer(1, 3, 0, 0)])]);
            s.answer_incremental(&mut resp);
            assert_eq!(listed(&resp), ["a-0"]);
        }
        // Cleared, same high watermark as before the error: answered once, then quiet.
        let mut resp = response(vec![("a", vec![answer(0, 10, 0, 0)])]);
        s.answer_incremental(&mut resp);
        assert_eq!(listed(&resp), ["a-0"]);
        let mut resp = response(vec![("a", vec![answer(0, 10, 0, 0)])]);
        s.answer_incremental(&mut resp);
        assert!(resp.responses.is_empty());
    }

    #[test]
    fn partitions_that_returned_records_move_to_the_back() {
        let mut s = opened();
        let mut resp = response(vec![("a", vec![answer(0, 11, 50, 0), answer(1, 4, 0, 0)])]);
        s.answer_incremental(&mut resp);
        // a-1 answered (new high watermark) but without records: it keeps its place.
        assert_eq!(order(&s), ["a-1@0", "b-0@5", "a-0@0"]);
        let topics = s.fetch_topics();
        assert_eq!(topics.iter().map(|t| t.topic.0.to_string()).collect::<Vec<_>>(), ["a", "b", "a"]);
    }

    #[test]
    fn epochs_wrap_to_1() {
        assert_eq!(next_epoch(0), 1);
        assert_eq!(next_epoch(41), 42);
        assert_eq!(next_epoch(i32::MAX), 1);
    }
}
