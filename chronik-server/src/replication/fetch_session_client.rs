//! The follower's side of an incremental fetch session (KIP-227), apart from its I/O (`fetcher.rs`):
//! like Kafka's `FetchSessionHandler`, it turns what the fetcher wants to fetch now into a full or an
//! incremental request and digests the leader's answer.
//!
//! - A full request (epoch 0) names every wanted partition. It is sent first, after any reset (a new
//!   connection, an abandoned call, a top-level error such as FETCH_SESSION_ID_NOT_FOUND (70) or
//!   INVALID_FETCH_SESSION_EPOCH (71), an incremental answer naming a partition outside the session)
//!   and while the leader answers with session id 0 (it keeps no session for us). After a reset the
//!   full request carries the old session id, so the leader closes that session as it opens the new
//!   one.
//! - Once the leader answered a full request with a session id, requests are incremental (epoch 1,
//!   2, …, wrapping to 1): they name only partitions that are new or whose fetch offset, leader epoch,
//!   log start offset or max bytes changed since they were last sent, and forget the partitions that
//!   left the wanted set. The leader fetches over the whole session and answers only partitions with
//!   news, so a partition missing from an incremental answer is unchanged — neither an error nor a
//!   refusal.
//!
//! What was sent is recorded when the request is built; a request whose answer is lost (error,
//! abandoned call) resets the session, so the record never claims more than the leader holds. Pure
//! code: no clock, no I/O.

use std::collections::BTreeMap;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::fetch_session::session::{next_epoch, INITIAL_EPOCH, NO_SESSION_ID};
use crate::ids::{LeaderEpoch, TopicPartition};

/// What a partition's fetch asks: the fields of a request partition that the leader's session keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionFetch {
    pub fetch_offset: i64,
    pub leader_epoch: LeaderEpoch,
    pub log_start_offset: i64,
    pub max_bytes: i32,
}

impl PartitionFetch {
    fn wire(&self, partition: i32) -> FetchPartition {
        FetchPartition::default()
            .with_partition(partition)
            .with_current_leader_epoch(self.leader_epoch.0)
            .with_fetch_offset(self.fetch_offset)
            .with_log_start_offset(self.log_start_offset)
            .with_partition_max_bytes(self.max_bytes)
    }
}

/// The session part of one fetch request.
#[derive(Debug, Default)]
pub struct SessionRequest {
    pub session_id: i32,
    pub session_epoch: i32,
    /// The partitions to name, grouped by topic.
    pub topics: Vec<FetchTopic>,
    /// The partitions the leader's session must drop.
    pub forgotten: Vec<ForgottenTopic>,
}

impl SessionRequest {
    pub fn is_full(&self) -> bool {
        self.session_epoch == INITIAL_EPOCH
    }

    /// Partitions named in the request.
    pub fn named(&self) -> usize {
        self.topics.iter().map(|t| t.partitions.len()).sum()
    }
}

/// What an answer means for the fetcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Apply the answered partitions; `unchanged` more partitions of the session were left out
    /// because nothing about them changed (always 0 for a full request).
    Apply { unchanged: usize },
    /// The leader refused the request as a whole or answered inconsistently: ignore the answer; the
    /// next request is full. `retry_now` is true when this request was incremental (a full one cannot
    /// be refused for its session, so asking again at once cannot loop).
    StartOver { retry_now: bool },
}

/// One leader connection's fetch session as the follower sees it.
#[derive(Debug, Default)]
pub struct SessionClient {
    /// The leader's id for the session; 0 for none.
    id: i32,
    /// The epoch of the next request; 0 (full) until the leader has opened a session.
    next_epoch: i32,
    /// What the leader's session holds for each partition, as of the last request built.
    sent: BTreeMap<TopicPartition, PartitionFetch>,
    /// The epoch of the request awaiting its answer, if any.
    in_flight: Option<i32>,
}

impl SessionClient {
    /// The session id the leader gave (0 for none).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Forgets the session's state: the next request is full, and closes the old session on the
    /// leader. Called on a new connection and after an abandoned or failed call.
    pub fn reset(&mut self) {
        self.next_epoch = INITIAL_EPOCH;
        self.sent.clear();
        self.in_flight = None;
    }

    /// The request for `wanted` (every partition to fetch now, with what to ask for each), and
    /// records it as sent.
    pub fn build(&mut self, wanted: BTreeMap<TopicPartition, PartitionFetch>) -> SessionRequest {
        let epoch = self.next_epoch;
        self.in_flight = Some(epoch);
        let full = epoch == INITIAL_EPOCH;
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (key, fetch) in &wanted {
            if !full && self.sent.get(key) == Some(fetch) {
                continue;
            }
            match topics.last_mut() {
                Some(last) if last.topic.0.as_str() == key.topic => last.partitions.push(fetch.wire(key.partition)),
                _ => topics.push(FetchTopic::default().with_topic(topic_name(&key.topic)).with_partitions(vec![fetch.wire(key.partition)])),
            }
        }
        let mut forgotten: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        if !full {
            for key in self.sent.keys().filter(|k| !wanted.contains_key(*k)) {
                forgotten.entry(key.topic.as_str()).or_default().push(key.partition);
            }
        }
        let forgotten = forgotten
            .into_iter()
            .map(|(t, mut parts)| {
                parts.sort_unstable();
                ForgottenTopic::default().with_topic(topic_name(t)).with_partitions(parts)
            })
            .collect();
        self.sent = wanted;
        SessionRequest { session_id: self.id, session_epoch: epoch, topics, forgotten }
    }

    /// Digests the answer to the last request built: its top-level error code, its session id and the
    /// partitions it answers.
    pub fn answered<'a>(&mut self, error_code: i16, session_id: i32, partitions: impl Iterator<Item = (&'a str, i32)>) -> Answer {
        let Some(epoch) = self.in_flight.take() else {
            // No request awaits an answer (the caller lost track): trust nothing.
            self.reset();
            return Answer::StartOver { retry_now: false };
        };
        let full = epoch == INITIAL_EPOCH;
        if error_code != 0 {
            // FETCH_SESSION_ID_NOT_FOUND: the leader has no such session (restarted, evicted it);
            // anything else: close the session we name and open a new one.
            if error_code == kafka_protocol::error::ResponseError::FetchSessionIdNotFound.code() {
                self.id = NO_SESSION_ID;
            }
            self.reset();
            return Answer::StartOver { retry_now: !full };
        }
        let mut answered = 0usize;
        for (topic, partition) in partitions {
            if !self.sent.contains_key(&TopicPartition::new(topic, partition)) {
                if full {
                    continue;
                }
                // An incremental answer about a partition outside the session: the two sides disagree.
                self.reset();
                return Answer::StartOver { retry_now: true };
            }
            answered += 1;
        }
        let unchanged = if full { 0 } else { self.sent.len().saturating_sub(answered) };
        self.id = session_id;
        if session_id == NO_SESSION_ID {
            // No session (the leader's cache is full, or it keeps none): every request stays full.
            self.next_epoch = INITIAL_EPOCH;
            self.sent.clear();
        } else {
            self.next_epoch = next_epoch(epoch);
        }
        Answer::Apply { unchanged }
    }
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::error::ResponseError;

    fn key(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn fetch(offset: i64) -> PartitionFetch {
        PartitionFetch { fetch_offset: offset, leader_epoch: LeaderEpoch(1), log_start_offset: 0, max_bytes: 1 << 20 }
    }

    /// `topic-partition@offset` of every partition a request names, then `-topic-partition` of every
    /// partition it forgets.
    fn shown(r: &SessionRequest) -> Vec<String> {
        let named = r.topics.iter().flat_map(|t| t.partitions.iter().map(move |p| format!("{}-{}@{}", t.topic.0, p.partition, p.fetch_offset)));
        let forgotten = r.forgotten.iter().flat_map(|t| t.partitions.iter().map(move |p| format!("-{}-{}", t.topic.0, p)));
        named.chain(forgotten).collect()
    }

    fn wanted(parts: &[(&str, i32, i64)]) -> BTreeMap<TopicPartition, PartitionFetch> {
        parts.iter().map(|&(t, p, o)| (key(t, p), fetch(o))).collect()
    }

    /// A client whose session 7 holds a-0@0, a-1@0, b-0@5 and expects epoch 1.
    fn opened() -> SessionClient {
        let mut c = SessionClient::default();
        let r = c.build(wanted(&[("a", 0, 0), ("a", 1, 0), ("b", 0, 5)]));
        assert_eq!((r.session_id, r.session_epoch), (0, 0));
        assert_eq!(shown(&r), ["a-0@0", "a-1@0", "b-0@5"]);
        let answer = c.answered(0, 7, [("a", 0), ("a", 1), ("b", 0)].into_iter());
        assert_eq!(answer, Answer::Apply { unchanged: 0 });
        c
    }

    #[test]
    fn after_a_full_fetch_only_changes_are_sent_and_epochs_count_up() {
        let mut c = opened();
        // Nothing changed: an empty incremental request.
        let r = c.build(wanted(&[("a", 0, 0), ("a", 1, 0), ("b", 0, 5)]));
        assert_eq!((r.session_id, r.session_epoch, r.named()), (7, 1, 0));
        assert!(r.forgotten.is_empty());
        // Nothing answered after the long poll: three unchanged partitions, not a refusal.
        assert_eq!(c.answered(0, 7, std::iter::empty()), Answer::Apply { unchanged: 3 });
        // a-1 moved on, c-2 is new, b-0 left.
        let r = c.build(wanted(&[("a", 0, 0), ("a", 1, 4), ("c", 2, 0)]));
        assert_eq!((r.session_epoch, shown(&r)), (2, vec!["a-1@4".to_string(), "c-2@0".into(), "-b-0".into()]));
        assert_eq!(c.answered(0, 7, [("a", 1)].into_iter()), Answer::Apply { unchanged: 2 });
        assert_eq!(c.build(wanted(&[("a", 0, 0), ("a", 1, 4), ("c", 2, 0)])).session_epoch, 3);
    }

    #[test]
    fn every_field_the_leader_keeps_counts_as_a_change() {
        let changes: [fn(&mut PartitionFetch); 4] = [
            |f| f.fetch_offset += 1,
            |f| f.leader_epoch = LeaderEpoch(2),
            |f| f.log_start_offset = 3,
            |f| f.max_bytes = 10,
        ];
        for change in changes {
            let mut c = opened();
            let mut w = wanted(&[("a", 0, 0), ("a", 1, 0), ("b", 0, 5)]);
            if let Some(f) = w.get_mut(&key("b", 0)) {
                change(f);
            }
            let r = c.build(w.clone());
            assert_eq!(r.named(), 1);
            assert_eq!(r.topics[0].topic.0.as_str(), "b");
        }
    }

    #[test]
    fn session_errors_start_over_with_a_full_fetch() {
        for (code, id_after) in [(ResponseError::FetchSessionIdNotFound.code(), 0), (ResponseError::InvalidFetchSessionEpoch.code(), 7)] {
            let mut c = opened();
            let w = wanted(&[("a", 0, 0), ("a", 1, 2), ("b", 0, 5)]);
            c.build(w.clone());
            assert_eq!(c.answered(code, 0, std::iter::empty()), Answer::StartOver { retry_now: true });
            // Full again, naming the old session (so the leader closes it) unless it is unknown there.
            let r = c.build(w.clone());
            assert_eq!((r.session_id, r.session_epoch, r.named()), (id_after, 0, 3), "code {code}");
            assert!(r.forgotten.is_empty());
            // A full request refused: no immediate retry.
            assert_eq!(c.answered(code, 0, std::iter::empty()), Answer::StartOver { retry_now: false });
        }
    }

    #[test]
    fn a_reset_after_a_lost_answer_sends_everything_again() {
        let mut c = opened();
        let w = wanted(&[("a", 0, 3), ("a", 1, 0), ("b", 0, 5)]);
        assert_eq!(c.build(w.clone()).named(), 1);
        // The call was abandoned (or the connection failed): the leader may or may not have applied it.
        c.reset();
        let r = c.build(w.clone());
        assert_eq!((r.session_id, r.session_epoch, r.named()), (7, 0, 3));
        assert_eq!(c.answered(0, 9, [("a", 0), ("a", 1), ("b", 0)].into_iter()), Answer::Apply { unchanged: 0 });
        let r = c.build(w.clone());
        assert_eq!((r.session_id, r.session_epoch, r.named()), (9, 1, 0));
    }

    #[test]
    fn without_a_session_every_request_is_full() {
        let mut c = SessionClient::default();
        let w = wanted(&[("a", 0, 0), ("a", 1, 0)]);
        c.build(w.clone());
        assert_eq!(c.answered(0, 0, [("a", 0), ("a", 1)].into_iter()), Answer::Apply { unchanged: 0 });
        let r = c.build(w.clone());
        assert_eq!((r.session_id, r.session_epoch, r.named()), (0, 0, 2));
        // A full answer that leaves a partition out is not read as "unchanged".
        assert_eq!(c.answered(0, 0, [("a", 0)].into_iter()), Answer::Apply { unchanged: 0 });
    }

    #[test]
    fn an_incremental_answer_about_a_stranger_starts_over() {
        let mut c = opened();
        c.build(wanted(&[("a", 0, 0), ("a", 1, 0)]));
        // b-0 was just forgotten; an answer about it means the leader did not apply the request.
        assert_eq!(c.answered(0, 7, [("b", 0)].into_iter()), Answer::StartOver { retry_now: true });
        let r = c.build(wanted(&[("a", 0, 0), ("a", 1, 0)]));
        assert_eq!((r.session_id, r.session_epoch, r.named()), (7, 0, 2));
    }

    #[test]
    fn an_answer_without_a_request_is_not_trusted() {
        let mut c = opened();
        assert_eq!(c.answered(0, 7, std::iter::empty()), Answer::StartOver { retry_now: false });
        assert_eq!(c.build(wanted(&[("a", 0, 0)])).session_epoch, 0);
    }

    #[test]
    fn epochs_wrap_to_1_not_to_a_full_request() {
        let mut c = opened();
        c.next_epoch = i32::MAX;
        let w = wanted(&[("a", 0, 0), ("a", 1, 0), ("b", 0, 5)]);
        assert_eq!(c.build(w.clone()).session_epoch, i32::MAX);
        c.answered(0, 7, std::iter::empty());
        assert_eq!(c.build(w).session_epoch, 1);
    }

    /// The leader's session (`fetch_session::session`) driven by this client's requests holds exactly
    /// what the client thinks it sent, through random changes of the wanted set.
    #[test]
    fn the_leaders_session_follows_the_client() {
        use crate::fetch_session::session::FetchSession;
        use kafka_protocol::messages::FetchResponse;
        for seed in 0..200u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut c = SessionClient::default();
            let mut leader: Option<FetchSession> = None;
            let mut w: BTreeMap<TopicPartition, PartitionFetch> = BTreeMap::new();
            for _ in 0..40 {
                for _ in 0..rng.usize(0..4) {
                    let k = key(["a", "b", "c"][rng.usize(0..3)], rng.i32(0..4));
                    if rng.bool() {
                        w.insert(k, fetch(rng.i64(0..3)));
                    } else {
                        w.remove(&k);
                    }
                }
                if w.is_empty() {
                    continue;
                }
                let r = c.build(w.clone());
                let session = match (r.is_full(), leader.as_mut()) {
                    (true, _) | (false, None) => {
                        leader = Some(FetchSession::open(7, true, &r.topics, &FetchResponse::default(), 0));
                        leader.as_mut()
                    }
                    (false, Some(s)) => {
                        s.update(&r.topics, &r.forgotten);
                        Some(s)
                    }
                };
                let held: BTreeMap<(String, i32), i64> = session
                    .map(|s| s.fetch_topics())
                    .unwrap_or_default()
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(move |p| ((t.topic.0.to_string(), p.partition), p.fetch_offset)))
                    .collect();
                let expected: BTreeMap<(String, i32), i64> = w.iter().map(|(k, f)| ((k.topic.clone(), k.partition), f.fetch_offset)).collect();
                assert_eq!(held, expected, "seed {seed}");
                if rng.u8(0..10) == 0 {
                    c.reset();
                } else {
                    c.answered(0, 7, std::iter::empty());
                }
            }
        }
    }
}
