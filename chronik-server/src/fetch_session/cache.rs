//! The broker's fetch sessions (KIP-227): a bounded cache of [`FetchSession`]s by id, the decision
//! what a Fetch request's session id and epoch mean ([`FetchSessionCache::begin`]), and eviction.
//!
//! - epoch -1 (final): a sessionless full fetch; a non-zero session id closes that session.
//! - epoch 0 (initial): closes the named session if any; the request is a full fetch, and once it is
//!   answered a new session holding its partitions is opened ([`FetchSessionCache::open`]); its id
//!   goes back in the response, or 0 when the cache has no room for it.
//! - epoch > 0 (incremental): the session must exist (else FETCH_SESSION_ID_NOT_FOUND) and expect this
//!   epoch (else INVALID_FETCH_SESSION_EPOCH); its partitions are updated, the expected epoch moves on,
//!   and the fetch covers all of the session's partitions. A session left empty is closed and the
//!   request answered without one.
//!
//! Limits, as Kafka's (`max.incremental.fetch.session.cache.slots`,
//! `min.incremental.fetch.session.eviction.ms`): at most `sessions_max` sessions; a session unused for
//! longer than `idle_ms` is dropped (least recently used first). When the cache is full a new session
//! may evict the least valuable established session (older than `idle_ms`): a consumer's before a
//! follower's, then the one with fewest partitions, then the lowest id — and only when the newcomer is
//! worth more (a follower's against a consumer's, or more partitions). A follower's new session may
//! also evict a consumer's session of any age. Sessions live in this broker's memory only: after a
//! restart every fetcher gets FETCH_SESSION_ID_NOT_FOUND once and starts over with a full fetch.

use std::collections::{BTreeSet, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::{FetchRequest, FetchResponse};

use super::session::{FetchSession, FINAL_EPOCH, INITIAL_EPOCH, NO_SESSION_ID};

/// Default `fetch_sessions_max`: Kafka's default number of session slots per broker.
pub const FETCH_SESSIONS_MAX_DEFAULT: usize = 1000;
/// Default `fetch_session_idle_ms`: Kafka's `min.incremental.fetch.session.eviction.ms`.
pub const FETCH_SESSION_IDLE_MS_DEFAULT: u64 = 120_000;

/// How a Fetch request is to be served, decided by [`FetchCache::begin`].
#[derive(Debug)]
pub enum FetchPlan {
    /// A full fetch of the request's partitions, answered with session id 0.
    Sessionless,
    /// A full fetch of the request's partitions; then [`FetchCache::open`] a session for them.
    Open,
    /// An incremental fetch over all these partitions of session `id`, answered with only the
    /// partitions that have news ([`FetchCache::answer`]).
    Incremental { id: i32, topics: Vec<FetchTopic> },
    /// Answer with this top-level error and session id 0, no partitions.
    Refuse(ResponseError),
}

/// The sessions and their indexes. Pure: the caller passes the time and holds the lock
/// ([`FetchSessionCache`]).
#[derive(Debug)]
pub struct FetchCache {
    sessions: HashMap<i32, FetchSession>,
    /// (last used ms, id): least recently used first.
    lru: BTreeSet<(u64, i32)>,
    sessions_max: usize,
    idle_ms: u64,
    /// Sessions evicted or dropped idle since start.
    pub evictions: u64,
}

impl FetchCache {
    pub fn new(sessions_max: usize, idle_ms: u64) -> FetchCache {
        FetchCache { sessions: HashMap::new(), lru: BTreeSet::new(), sessions_max, idle_ms, evictions: 0 }
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Partitions held by all sessions.
    pub fn partitions(&self) -> usize {
        self.sessions.values().map(FetchSession::len).sum()
    }

    pub fn get(&self, id: i32) -> Option<&FetchSession> {
        self.sessions.get(&id)
    }

    /// Decides how `req` (Fetch v`version`) is served, applying its session changes.
    pub fn begin(&mut self, version: i16, req: &FetchRequest, now_ms: u64) -> FetchPlan {
        self.drop_idle(now_ms);
        // Sessions exist from v7; older requests carry neither id nor epoch.
        if version < 7 {
            return FetchPlan::Sessionless;
        }
        if req.session_epoch == FINAL_EPOCH || req.session_epoch == INITIAL_EPOCH {
            if req.session_id != NO_SESSION_ID {
                self.remove(req.session_id);
            }
            let wants_session = req.session_epoch == INITIAL_EPOCH && self.sessions_max > 0 && !req.topics.is_empty();
            return if wants_session { FetchPlan::Open } else { FetchPlan::Sessionless };
        }
        let Some(session) = self.sessions.get_mut(&req.session_id) else {
            return FetchPlan::Refuse(ResponseError::FetchSessionIdNotFound);
        };
        if session.next_epoch != req.session_epoch {
            return FetchPlan::Refuse(ResponseError::InvalidFetchSessionEpoch);
        }
        session.update(&req.topics, &req.forgotten_topics_data);
        if session.is_empty() {
            self.remove(req.session_id);
            return FetchPlan::Sessionless;
        }
        session.next_epoch = super::session::next_epoch(session.next_epoch);
        let topics = session.fetch_topics();
        self.touch(req.session_id, now_ms);
        FetchPlan::Incremental { id: req.session_id, topics }
    }

    /// Opens a session for the answered full fetch `topics` → `response`, when there is room or a
    /// less valuable session to evict. Returns its id, or 0 for none. `random` draws candidate ids.
    pub fn open(&mut self, privileged: bool, topics: &[FetchTopic], response: &FetchResponse, now_ms: u64, random: &mut impl FnMut() -> i32) -> i32 {
        let size: usize = topics.iter().map(|t| t.partitions.len()).sum();
        if size == 0 || self.sessions_max == 0 {
            return NO_SESSION_ID;
        }
        self.drop_idle(now_ms);
        if self.sessions.len() >= self.sessions_max {
            match self.eviction_candidate(privileged, size, now_ms) {
                Some(victim) => {
                    self.remove(victim);
                    self.evictions += 1;
                }
                None => return NO_SESSION_ID,
            }
        }
        let id = loop {
            let id = random();
            if id > NO_SESSION_ID && !self.sessions.contains_key(&id) {
                break id;
            }
        };
        self.sessions.insert(id, FetchSession::open(id, privileged, topics, response, now_ms));
        self.lru.insert((now_ms, id));
        id
    }

    /// Reduces the response to an incremental fetch of session `id` to what the fetcher must hear. A
    /// session evicted while the fetch waited leaves the response whole (every partition is news to
    /// a fetcher that starts over).
    pub fn answer(&mut self, id: i32, response: &mut FetchResponse, now_ms: u64) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.answer_incremental(response);
            self.touch(id, now_ms);
        }
    }

    /// Drops the sessions unused for longer than `idle_ms`.
    fn drop_idle(&mut self, now_ms: u64) {
        while let Some(&(used, id)) = self.lru.first() {
            if now_ms.saturating_sub(used) <= self.idle_ms {
                break;
            }
            self.remove(id);
            self.evictions += 1;
        }
    }

    /// The session a newcomer (`privileged`, `size` partitions) may evict from a full cache: the least
    /// valuable evictable one, if the newcomer is worth more (see the module comment).
    fn eviction_candidate(&self, privileged: bool, size: usize, now_ms: u64) -> Option<i32> {
        let established = |s: &FetchSession| now_ms.saturating_sub(s.created_ms) > self.idle_ms;
        let least = self
            .sessions
            .values()
            .filter(|s| established(s) || (privileged && !s.privileged))
            .min_by_key(|s| (s.privileged, s.len(), s.id))?;
        ((privileged, size) > (least.privileged, least.len())).then_some(least.id)
    }

    fn touch(&mut self, id: i32, now_ms: u64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            self.lru.remove(&(s.last_used_ms, id));
            s.last_used_ms = now_ms;
            self.lru.insert((now_ms, id));
        }
    }

    fn remove(&mut self, id: i32) {
        if let Some(s) = self.sessions.remove(&id) {
            self.lru.remove(&(s.last_used_ms, id));
        }
    }
}

/// The broker's [`FetchCache`] behind its lock (held only to decide and to update, never across a
/// wait), on a monotonic clock, with ids drawn at random so that a restarted broker does not hand out
/// the ids its fetchers still remember.
pub struct FetchSessionCache {
    cache: parking_lot::Mutex<FetchCache>,
    /// Origin of the cache's clock (milliseconds since).
    started: std::time::Instant,
}

impl FetchSessionCache {
    pub fn new(sessions_max: usize, idle_ms: u64) -> FetchSessionCache {
        FetchSessionCache { cache: parking_lot::Mutex::new(FetchCache::new(sessions_max, idle_ms)), started: std::time::Instant::now() }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn begin(&self, version: i16, req: &FetchRequest) -> FetchPlan {
        let now_ms = self.now_ms();
        self.cache.lock().begin(version, req, now_ms)
    }

    pub fn open(&self, privileged: bool, topics: &[FetchTopic], response: &FetchResponse) -> i32 {
        let now_ms = self.now_ms();
        let mut random = || i32::from_be_bytes(uuid::Uuid::new_v4().as_bytes()[..4].try_into().unwrap_or([0; 4])) & i32::MAX;
        self.cache.lock().open(privileged, topics, response, now_ms, &mut random)
    }

    pub fn answer(&self, id: i32, response: &mut FetchResponse) {
        let now_ms = self.now_ms();
        self.cache.lock().answer(id, response, now_ms);
    }

    /// (open sessions, partitions they hold, sessions evicted or dropped idle since start), for metrics.
    pub fn stats(&self) -> (usize, usize, u64) {
        let cache = self.cache.lock();
        (cache.len(), cache.partitions(), cache.evictions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch_session::session::tests::{answer, fetch_topic, forget, listed, response};

    const IDLE_MS: u64 = 120_000;

    fn request(id: i32, epoch: i32, topics: Vec<FetchTopic>) -> FetchRequest {
        FetchRequest::default().with_session_id(id).with_session_epoch(epoch).with_topics(topics)
    }

    /// Ids 1, 2, 3, … as the "random" draw.
    fn counter() -> impl FnMut() -> i32 {
        let mut next = 0;
        move || {
            next += 1;
            next
        }
    }

    /// Opens a consumer's (or follower's) session of `size` partitions of topic `t` at `now_ms`.
    fn open(cache: &mut FetchCache, t: &str, size: i32, privileged: bool, now_ms: u64, ids: &mut impl FnMut() -> i32) -> i32 {
        let parts: Vec<(i32, i64)> = (0..size).map(|p| (p, 0)).collect();
        let topics = vec![fetch_topic(t, &parts)];
        let req = request(0, INITIAL_EPOCH, topics.clone());
        assert!(matches!(cache.begin(12, &req, now_ms), FetchPlan::Open));
        let resp = response(vec![(t, (0..size).map(|p| answer(p, 0, 0, 0)).collect())]);
        cache.open(privileged, &topics, &resp, now_ms, ids)
    }

    fn incremental(cache: &mut FetchCache, id: i32, epoch: i32, now_ms: u64) -> FetchPlan {
        cache.begin(12, &request(id, epoch, vec![]), now_ms)
    }

    #[test]
    fn final_epoch_and_old_versions_are_sessionless_and_close_the_named_session() {
        let mut cache = FetchCache::new(10, IDLE_MS);
        let mut ids = counter();
        assert!(matches!(cache.begin(6, &request(0, INITIAL_EPOCH, vec![fetch_topic("a", &[(0, 0)])]), 0), FetchPlan::Sessionless));
        assert!(matches!(cache.begin(12, &request(0, FINAL_EPOCH, vec![fetch_topic("a", &[(0, 0)])]), 0), FetchPlan::Sessionless));
        let id = open(&mut cache, "a", 2, false, 0, &mut ids);
        assert_eq!((id, cache.len()), (1, 1));
        assert!(matches!(cache.begin(12, &request(id, FINAL_EPOCH, vec![]), 5), FetchPlan::Sessionless));
        assert!(cache.is_empty());
        assert!(matches!(incremental(&mut cache, id, 1, 6), FetchPlan::Refuse(ResponseError::FetchSessionIdNotFound)));
    }

    #[test]
    fn incremental_epochs_and_errors() {
        let mut cache = FetchCache::new(10, IDLE_MS);
        let mut ids = counter();
        let id = open(&mut cache, "a", 2, false, 0, &mut ids);
        assert!(matches!(incremental(&mut cache, 77, 1, 1), FetchPlan::Refuse(ResponseError::FetchSessionIdNotFound)));
        assert!(matches!(incremental(&mut cache, id, 2, 1), FetchPlan::Refuse(ResponseError::InvalidFetchSessionEpoch)));
        let FetchPlan::Incremental { id: got, topics } = incremental(&mut cache, id, 1, 2) else { panic!("not incremental") };
        assert_eq!((got, topics.len(), topics[0].partitions.len()), (id, 1, 2));
        // Epoch 1 again (a retried request): refused, the session expects 2.
        assert!(matches!(incremental(&mut cache, id, 1, 3), FetchPlan::Refuse(ResponseError::InvalidFetchSessionEpoch)));
        // An incremental request adds a partition and moves another's offset.
        let req = request(id, 2, vec![fetch_topic("b", &[(4, 9)]), fetch_topic("a", &[(1, 30)])]);
        let FetchPlan::Incremental { topics, .. } = cache.begin(12, &req, 4) else { panic!("not incremental") };
        let all: Vec<String> = topics.iter().flat_map(|t| t.partitions.iter().map(move |p| format!("{}-{}@{}", t.topic.0, p.partition, p.fetch_offset))).collect();
        assert_eq!(all, ["a-0@0", "a-1@30", "b-4@9"]);
        assert_eq!(cache.get(id).map(|s| s.next_epoch), Some(3));
        assert_eq!(cache.partitions(), 3);
    }

    #[test]
    fn an_incremental_answer_lists_only_changed_partitions() {
        let mut cache = FetchCache::new(10, IDLE_MS);
        let mut ids = counter();
        let id = open(&mut cache, "a", 3, false, 0, &mut ids);
        assert!(matches!(incremental(&mut cache, id, 1, 1), FetchPlan::Incremental { .. }));
        let mut resp = response(vec![("a", vec![answer(0, 0, 0, 0), answer(1, 5, 200, 0), answer(2, 0, 0, 6)])]);
        cache.answer(id, &mut resp, 2);
        assert_eq!(listed(&resp), ["a-1", "a-2"]);
    }

    #[test]
    fn initial_epoch_replaces_the_named_session() {
        let mut cache = FetchCache::new(10, IDLE_MS);
        let mut ids = counter();
        let first = open(&mut cache, "a", 1, false, 0, &mut ids);
        let req = request(first, INITIAL_EPOCH, vec![fetch_topic("a", &[(0, 0)])]);
        assert!(matches!(cache.begin(12, &req, 1), FetchPlan::Open));
        assert!(cache.get(first).is_none());
        let second = cache.open(false, &req.topics, &response(vec![("a", vec![answer(0, 0, 0, 0)])]), 1, &mut ids);
        assert_ne!(second, first);
        assert_eq!(cache.len(), 1);
        // An initial request without partitions opens nothing.
        assert!(matches!(cache.begin(12, &request(0, INITIAL_EPOCH, vec![]), 2), FetchPlan::Sessionless));
    }

    #[test]
    fn forgetting_every_partition_closes_the_session() {
        let mut cache = FetchCache::new(10, IDLE_MS);
        let mut ids = counter();
        let id = open(&mut cache, "a", 2, false, 0, &mut ids);
        let req = request(id, 1, vec![]).with_forgotten_topics_data(vec![forget("a", &[0, 1])]);
        assert!(matches!(cache.begin(12, &req, 1), FetchPlan::Sessionless));
        assert!(cache.is_empty());
    }

    #[test]
    fn idle_sessions_are_dropped_least_recently_used_first() {
        let mut cache = FetchCache::new(10, IDLE_MS);
        let mut ids = counter();
        let old = open(&mut cache, "a", 1, false, 0, &mut ids);
        let kept = open(&mut cache, "b", 1, false, 0, &mut ids);
        assert!(matches!(incremental(&mut cache, kept, 1, IDLE_MS), FetchPlan::Incremental { .. }));
        assert!(matches!(incremental(&mut cache, kept, 2, IDLE_MS + 1), FetchPlan::Incremental { .. }));
        assert!(cache.get(old).is_none());
        assert_eq!((cache.len(), cache.evictions), (1, 1));
        assert!(matches!(incremental(&mut cache, old, 1, IDLE_MS + 2), FetchPlan::Refuse(ResponseError::FetchSessionIdNotFound)));
    }

    #[test]
    fn a_full_cache_evicts_the_smallest_established_session_for_a_bigger_one() {
        let mut cache = FetchCache::new(2, IDLE_MS);
        let mut ids = counter();
        let small = open(&mut cache, "a", 1, false, 0, &mut ids);
        let big = open(&mut cache, "b", 5, false, 0, &mut ids);
        // Both young: nothing may be evicted, the newcomer gets no session.
        assert_eq!(open(&mut cache, "c", 9, false, 10, &mut ids), NO_SESSION_ID);
        // Both kept in use until they are established (older than IDLE_MS).
        let later = IDLE_MS + 50;
        for (epoch, t) in [(1, IDLE_MS / 2), (2, later)] {
            assert!(matches!(incremental(&mut cache, small, epoch, t), FetchPlan::Incremental { .. }));
            assert!(matches!(incremental(&mut cache, big, epoch, t), FetchPlan::Incremental { .. }));
        }
        // Not bigger than the smallest (1 partition): refused.
        assert_eq!(open(&mut cache, "c", 1, false, later, &mut ids), NO_SESSION_ID);
        let third = open(&mut cache, "c", 2, false, later, &mut ids);
        assert_ne!(third, NO_SESSION_ID);
        assert!(cache.get(small).is_none() && cache.get(big).is_some());
        assert_eq!(cache.evictions, 1);
        // The newcomer is young now, and the big one is bigger than another 2-partition session.
        assert_eq!(open(&mut cache, "d", 2, false, later, &mut ids), NO_SESSION_ID);
    }

    #[test]
    fn a_followers_session_evicts_a_young_consumer_session() {
        let mut cache = FetchCache::new(2, IDLE_MS);
        let mut ids = counter();
        let follower = open(&mut cache, "a", 1, true, 0, &mut ids);
        let consumer = open(&mut cache, "b", 50, false, 0, &mut ids);
        let second = open(&mut cache, "c", 1, true, 10, &mut ids);
        assert_ne!(second, NO_SESSION_ID);
        assert!(cache.get(consumer).is_none() && cache.get(follower).is_some());
        // Two young follower sessions: a third follower cannot evict either.
        assert_eq!(open(&mut cache, "d", 100, true, 20, &mut ids), NO_SESSION_ID);
        // A disabled cache opens nothing.
        let mut off = FetchCache::new(0, IDLE_MS);
        assert!(matches!(off.begin(12, &request(0, INITIAL_EPOCH, vec![fetch_topic("a", &[(0, 0)])]), 0), FetchPlan::Sessionless));
    }
}
