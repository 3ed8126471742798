//! One fetcher task per leader broker on a follower: it fetches every partition this broker follows
//! from that leader over the leader's wal port, with one Fetch v12 (`replica_id` = this broker) at a
//! time.
//!
//! Per partition, before the first fetch at a leader epoch, it asks the leader OffsetForLeaderEpoch for
//! its own latest epoch and truncates to where the logs agree (`epoch_cache::truncation_offset`). Then
//! each fetch asks from the local durable end (`Partition::replica_fetch_offset`); returned batches
//! are appended verbatim (offsets and epochs as the leader stamped them) and, with
//! `fsync = "always"`, made durable before the next fetch — each partition's append and fsync in one
//! blocking task, every partition of the fetch in parallel — so the next fetch offset, which the leader takes as this replica's log
//! end, only claims durable data.
//! The follower's high watermark becomes min(leader's HW, own durable end).
//!
//! Fetches run in an incremental fetch session per connection (KIP-227, `fetch_session_client`): the
//! first fetch on a connection is full and opens a session on the leader; later ones name only the
//! partitions that are new or whose fetch offset, leader epoch, log start or max bytes changed, and
//! forget the partitions that left the set fetched (unassigned, awaiting truncation, or throttled out).
//! The leader answers only partitions with news, so an idle follower's fetch and its answer carry no
//! partitions at all. A new connection, an abandoned call, or a session error (70/71) starts over with a
//! full fetch. Connection errors are
//! retried with exponential backoff; the assignment arrives over a `watch`, so it is bounded (the
//! latest wins). The decisions (when to truncate, what an answer or a failed write leads to) are
//! plain code in `fetch_rules`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId as WireBrokerId, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::broker::catch_up::catching_up;
use crate::broker::fetchers::Assignment;
use super::client::PeerClient;
use super::error::ReplicationError;
use super::fetch_rules::{after_write, on_answer, partition_max_bytes, AfterWrite, OnAnswer, ReplicaWriteError, TruncationMarks};
use super::fetch_session_client::{Answer, PartitionFetch, SessionClient, SessionRequest};
use crate::broker::Broker;
use crate::ids::{BrokerId, LeaderEpoch, TopicPartition};
use crate::partition::epoch_cache::truncation_offset;
use crate::partition::Partition;

/// Fetch version followers use: the last with topic names (v13 switches to topic ids).
pub const FETCH_VERSION: i16 = 12;
/// OffsetForLeaderEpoch version followers use (v3+ carries the replica id).
pub const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;
/// Most bytes one fetch response may carry, over all partitions.
pub const FETCH_BYTES_MAX: i32 = 16 * 1024 * 1024;
/// Most bytes per partition in one fetch response.
pub const FETCH_PARTITION_BYTES_MAX: i32 = 1024 * 1024;
/// Backoff after a failed connection or call: doubles from the first to the second.
pub const BACKOFF_MIN_MS: u64 = 50;
pub const BACKOFF_MAX_MS: u64 = 2_000;
/// Pause when the leader refused every partition (it has not applied the new epoch yet, or we have not).
pub const REFUSED_RETRY_MS: u64 = 100;
/// A call may take this much longer than the long-poll wait before it counts as lost.
pub const CALL_SLACK_MS: u64 = 5_000;
/// Pause after a fetch whose data this broker could not store (a full disk): the log is unchanged,
/// the next fetch asks for the same offset, and the leader drops this replica from the ISR once it
/// lags `replica_lag_time_max_ms`. Without the pause the fetcher would fetch the same data again and
/// again as fast as the leader sends it.
pub const STORAGE_RETRY_MS: u64 = 1_000;
/// Rounds of OffsetForLeaderEpoch per truncation (each round moves to an older epoch; see KIP-279).
pub const TRUNCATION_ROUNDS_MAX: usize = 16;

/// The blocking task appending and fsyncing one partition's share of a fetch.
type ReplicaWrite = tokio::task::JoinHandle<Result<(), ReplicaWriteError>>;

/// A partition of the assignment that is truncated for its leader epoch and so may be fetched.
#[derive(Clone)]
struct Ready {
    key: TopicPartition,
    epoch: LeaderEpoch,
    partition: Arc<Partition>,
}

struct Fetcher {
    broker: Arc<Broker>,
    leader: BrokerId,
    conn: Option<PeerClient>,
    /// The fetch session on `conn`: reset with every new connection, so the first fetch on it is full.
    session: SessionClient,
    /// The epoch each partition was last truncated for; absent or different means truncate first.
    marks: TruncationMarks,
    /// The last step's partitions when every assigned one was ready, reused while nothing they were
    /// built from changed: with thousands of partitions, building them is most of a step's work.
    ready: Option<ReadyCache>,
}

/// `Ready` partitions as built for `assignment`, with the partition manager at `generation` (so the
/// handles are still the open logs) and no truncation outstanding (forgotten on every `redo`).
struct ReadyCache {
    assignment: Assignment,
    generation: u64,
    ready: Arc<[Ready]>,
}

/// Runs until the assignment sender is dropped (this broker follows nothing from `leader` any more).
pub async fn run(broker: Arc<Broker>, leader: BrokerId, mut assignment: watch::Receiver<Assignment>) {
    let mut f = Fetcher { broker, leader, conn: None, session: SessionClient::default(), marks: TruncationMarks::default(), ready: None };
    let mut marked: Option<Assignment> = None;
    let mut backoff_ms = BACKOFF_MIN_MS;
    info!(leader = leader.0, "replica fetcher started");
    loop {
        let current = assignment.borrow_and_update().clone();
        if current.is_empty() {
            if assignment.changed().await.is_err() {
                break;
            }
            continue;
        }
        if !marked.as_ref().is_some_and(|m| Arc::ptr_eq(m, &current)) {
            f.marks.keep_assigned(&current);
            marked = Some(current.clone());
        }
        match f.step(&current, &mut assignment).await {
            Ok(progress) => {
                backoff_ms = BACKOFF_MIN_MS;
                if !progress {
                    tokio::time::sleep(Duration::from_millis(REFUSED_RETRY_MS)).await;
                }
            }
            Err(e) => {
                debug!(leader = leader.0, error = %e, backoff_ms, "replica fetch failed; reconnecting");
                f.drop_connection();
                tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                backoff_ms = (backoff_ms * 2).min(BACKOFF_MAX_MS);
            }
        }
        if assignment.has_changed().is_err() {
            break;
        }
    }
    info!(leader = leader.0, "replica fetcher stopped");
}

impl Fetcher {
    /// Closes the connection; the fetch session starts over on the next one (the leader may or may
    /// not have applied the last request sent on this one).
    fn drop_connection(&mut self) {
        self.conn = None;
        self.session.reset();
    }

    async fn connection(&mut self) -> Result<&mut PeerClient, ReplicationError> {
        if self.conn.is_none() {
            self.session.reset();
            let state = self.broker.meta.state();
            let addr = state
                .brokers
                .get(&self.leader.0)
                .map(|b| b.node.wal_addr.clone())
                .filter(|a| !a.is_empty())
                .ok_or(ReplicationError::NoAddress { leader: self.leader })?;
            let client_id = format!("chronik-replica-{}", self.broker.node_id);
            self.conn = Some(PeerClient::connect(self.leader, &addr, client_id).await?);
        }
        self.conn.as_mut().ok_or(ReplicationError::NoAddress { leader: self.leader })
    }

    /// Truncates what needs it, then one fetch in the connection's fetch session. Ok(false) when
    /// nothing could be fetched: every partition was refused, or none is ready. A change of
    /// the assignment while the fetch long-polls (a new topic, a new leader epoch) abandons it and its
    /// connection: otherwise new partitions would wait up to `replica_fetch_wait_ms_max` to start
    /// replicating, and acks=all produce to them with it (seen: 400 ms after each topic creation).
    async fn step(&mut self, assignment: &Assignment, changes: &mut watch::Receiver<Assignment>) -> Result<bool, ReplicationError> {
        let all = self.ready_partitions(assignment).await?;
        // Replicas this broker is catching up on (a move adds them) share its inbound throttle: left
        // out of the fetch while it is spent, asked for at most what it allows otherwise.
        let state = self.broker.meta.state();
        let me = self.broker.node_id;
        let throttled: Vec<TopicPartition> =
            all.iter().filter(|r| catching_up(&state, &r.key.topic, r.key.partition, me.0)).map(|r| r.key.clone()).collect();
        let allowance = if throttled.is_empty() { None } else { self.broker.catch_up.inbound_allowance(Instant::now()) };
        let unthrottled: Vec<Ready>;
        let ready: &[Ready] = if allowance == Some(0) {
            unthrottled = all.iter().filter(|r| !throttled.contains(&r.key)).cloned().collect();
            &unthrottled
        } else {
            &all
        };
        if ready.is_empty() {
            return Ok(false);
        }
        let wait = self.broker.config.replica_fetch_wait_ms_max;
        let timeout = Duration::from_millis(wait + CALL_SLACK_MS);
        // Connect first: a new connection resets the session, and the request depends on it.
        self.connection().await?;
        let wanted: BTreeMap<TopicPartition, PartitionFetch> = ready
            .iter()
            .map(|Ready { key, epoch, partition: p }| {
                let fetch = PartitionFetch {
                    fetch_offset: p.replica_fetch_offset(),
                    leader_epoch: *epoch,
                    log_start_offset: p.log_start_offset(),
                    max_bytes: partition_max_bytes(throttled.contains(key), allowance),
                };
                (key.clone(), fetch)
            })
            .collect();
        let session = self.session.build(wanted);
        let req = self.fetch_request(session);
        let conn = self.connection().await?;
        let result = tokio::select! {
            resp = conn.call(ApiKey::Fetch, FETCH_VERSION, &req, timeout) => resp,
            _ = changes.changed() => {
                // The answer to the abandoned call must not be read as the next call's, and the
                // leader may or may not have applied it to the session.
                self.drop_connection();
                return Ok(true);
            }
        };
        let resp: FetchResponse = result?;
        let partitions = resp.responses.iter().flat_map(|t| t.partitions.iter().map(move |pd| (t.topic.0.as_str(), pd.partition_index)));
        let unchanged = match self.session.answered(resp.error_code, resp.session_id, partitions) {
            Answer::Apply { unchanged } => unchanged,
            Answer::StartOver { retry_now } => {
                debug!(leader = self.leader.0, code = resp.error_code, session_id = req.session_id, epoch = req.session_epoch,
                    "fetch session refused or inconsistent; next fetch is full");
                return Ok(retry_now);
            }
        };
        if allowance.is_some() {
            let received: usize = resp
                .responses
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |pd| (t.topic.0.as_str(), pd)))
                .filter(|(t, pd)| throttled.iter().any(|k| k.is(t, pd.partition_index)))
                .map(|(_, pd)| pd.records.as_ref().map_or(0, |r| r.len()))
                .sum();
            self.broker.catch_up.received(received);
        }
        // A partition an incremental answer leaves out is unchanged: it neither progressed nor was
        // refused, and an answer with none after the long poll is the normal idle case.
        let any_ok = self.apply(resp, &ready).await?;
        Ok(any_ok || unchanged > 0)
    }

    /// The partitions of `assignment` that may be fetched: open here and truncated for their epoch
    /// (truncating those that need it first). Reused from the last step while valid ([`ReadyCache`]).
    async fn ready_partitions(&mut self, assignment: &Assignment) -> Result<Arc<[Ready]>, ReplicationError> {
        // Read before the lookups: a partition added or removed meanwhile makes the next step rebuild.
        let generation = self.broker.partitions.generation();
        if let Some(c) = &self.ready {
            if Arc::ptr_eq(&c.assignment, assignment) && c.generation == generation {
                return Ok(c.ready.clone());
            }
        }
        self.ready = None;
        let mut ready: Vec<Ready> = Vec::with_capacity(assignment.len());
        for (key, epoch) in assignment.iter() {
            let Some(p) = self.broker.partitions.get(&key.topic, key.partition) else { continue };
            if self.marks.needed(key, *epoch) {
                if !self.truncate(&p, *epoch).await? {
                    continue;
                }
                self.marks.done(key.clone(), *epoch);
            }
            ready.push(Ready { key: key.clone(), epoch: *epoch, partition: p });
        }
        let ready: Arc<[Ready]> = ready.into();
        if ready.len() == assignment.len() {
            self.ready = Some(ReadyCache { assignment: assignment.clone(), generation, ready: ready.clone() });
        }
        Ok(ready)
    }

    /// Truncate `key` again before its next fetch.
    fn redo(&mut self, key: &TopicPartition) {
        self.marks.redo(key);
        self.ready = None;
    }

    fn fetch_request(&self, session: SessionRequest) -> FetchRequest {
        let wait_ms = i32::try_from(self.broker.config.replica_fetch_wait_ms_max).unwrap_or(i32::MAX);
        FetchRequest::default()
            .with_replica_id(WireBrokerId(self.broker.node_id.0))
            .with_max_wait_ms(wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(FETCH_BYTES_MAX)
            .with_session_id(session.session_id)
            .with_session_epoch(session.session_epoch)
            .with_topics(session.topics)
            .with_forgotten_topics_data(session.forgotten)
    }

    /// Appends what the leader sent and learns its high watermark. Ok(false) when every partition
    /// was refused.
    async fn apply(&mut self, resp: FetchResponse, ready: &[Ready]) -> Result<bool, ReplicationError> {
        let mut any_ok = false;
        // `ready` is in key order (built from the assignment, a BTreeMap, by filtering): an answered
        // partition is found by binary search, without a map per fetch.
        debug_assert!(ready.windows(2).all(|w| w[0].key < w[1].key));
        let find = |topic: &str, partition: i32| {
            ready.binary_search_by(|r| (r.key.topic.as_str(), r.key.partition).cmp(&(topic, partition))).ok().map(|i| &ready[i])
        };
        // Partitions that answered, with the leader's high watermark and, when the leader sent
        // records, the blocking task that appends them and makes them durable.
        let mut learned: Vec<(Arc<Partition>, i64, Option<ReplicaWrite>)> = Vec::new();
        for t in resp.responses {
            let topic = t.topic.0.as_str();
            for pd in t.partitions {
                let Some(Ready { key, epoch, partition: p }) = find(topic, pd.partition_index) else {
                    continue;
                };
                let (index, epoch) = (key.partition, *epoch);
                match on_answer(pd.error_code, p.log_end_offset(), pd.log_start_offset) {
                    OnAnswer::Append => {}
                    OnAnswer::RestartAt(start) => {
                        let (p2, leader) = (p.clone(), self.leader);
                        let restarted = tokio::task::spawn_blocking(move || p2.restart_at(start, leader, epoch))
                            .await
                            .map_err(|e| ReplicationError::Task(e.to_string()))?;
                        if let Err(source) = restarted {
                            // A stale fetcher (role changed) or a disk error: truncate again first.
                            warn!(leader = leader.0, topic, partition = index, error = %source, "restarting the log at the leader's log start failed");
                            self.redo(key);
                        }
                        continue;
                    }
                    OnAnswer::Truncate => {
                        warn!(leader = self.leader.0, topic, partition = index, log_end = p.log_end_offset(),
                            leader_log_start = pd.log_start_offset, "fetch offset out of range on the leader; truncating again");
                        self.redo(key);
                        continue;
                    }
                    OnAnswer::Wait => {
                        debug!(leader = self.leader.0, topic, partition = index, code = pd.error_code, "leader refused replica fetch");
                        continue;
                    }
                }
                any_ok = true;
                // Append and fsync in one blocking task per partition, every partition of the fetch
                // side by side: one thread hop per partition and one round of parallel fsyncs.
                let write = pd.records.filter(|r| !r.is_empty()).map(|records| {
                    let (p2, leader) = (p.clone(), self.leader);
                    tokio::task::spawn_blocking(move || {
                        p2.append_replicated(&records, leader, epoch).map_err(ReplicaWriteError::Append)?;
                        p2.sync_replicated().map_err(ReplicaWriteError::Sync)
                    })
                });
                learned.push((p.clone(), pd.high_watermark, write));
            }
        }
        let mut storage_failed = false;
        for (p, hw, write) in learned {
            let result = match write {
                Some(write) => write.await.map_err(|e| ReplicationError::Task(e.to_string()))?,
                None => Ok(()),
            };
            let outcome = after_write(&result);
            if let Err(source) = &result {
                match outcome {
                    AfterWrite::PauseAndRetry => {
                        // Nothing of the failed batch was stored (the partition logs the start and
                        // the end of a spell without space).
                        debug!(leader = self.leader.0, topic = %p.topic, partition = p.index, error = %source, "replicated append failed on storage");
                    }
                    AfterWrite::Truncate => {
                        debug!(leader = self.leader.0, topic = %p.topic, partition = p.index, error = %source, "replicated append refused");
                    }
                    AfterWrite::NotDurable => {
                        warn!(leader = self.leader.0, topic = %p.topic, partition = p.index, error = %source, "fsync of replicated data failed");
                    }
                    AfterWrite::Stored => {}
                }
            }
            match outcome {
                AfterWrite::PauseAndRetry => storage_failed = true,
                AfterWrite::Truncate => self.redo(&TopicPartition::new(p.topic.as_str(), p.index)),
                AfterWrite::Stored | AfterWrite::NotDurable => {}
            }
            if !outcome.learns_high_watermark() {
                continue;
            }
            // The follower's high watermark is capped at its durable end, and its next fetch offset
            // follows the durable end too.
            p.set_follower_high_watermark(hw);
        }
        if storage_failed {
            tokio::time::sleep(Duration::from_millis(STORAGE_RETRY_MS)).await;
        }
        Ok(any_ok)
    }

    /// Cuts `p` to where its log agrees with the leader's at `epoch`. Ok(false): the leader refused
    /// (not leader yet, epoch mismatch) — try again later.
    async fn truncate(&mut self, p: &Arc<Partition>, epoch: LeaderEpoch) -> Result<bool, ReplicationError> {
        let leader = self.leader;
        for _ in 0..TRUNCATION_ROUNDS_MAX {
            let cache = p.epoch_cache();
            let Some(latest) = cache.latest_epoch() else {
                return Ok(true);
            };
            let req = OffsetForLeaderEpochRequest::default().with_replica_id(WireBrokerId(self.broker.node_id.0)).with_topics(vec![
                OffsetForLeaderTopic::default().with_topic(TopicName(StrBytes::from_string(p.topic.clone()))).with_partitions(vec![
                    OffsetForLeaderPartition::default()
                        .with_partition(p.index)
                        .with_current_leader_epoch(epoch.0)
                        .with_leader_epoch(latest),
                ]),
            ]);
            let timeout = Duration::from_millis(CALL_SLACK_MS);
            let resp: OffsetForLeaderEpochResponse =
                self.connection().await?.call(ApiKey::OffsetForLeaderEpoch, OFFSET_FOR_LEADER_EPOCH_VERSION, &req, timeout).await?;
            let Some(answer) = resp.topics.into_iter().flat_map(|t| t.partitions).find(|a| a.partition == p.index) else {
                return Ok(false);
            };
            if answer.error_code != 0 {
                debug!(leader = leader.0, topic = %p.topic, partition = p.index, code = answer.error_code, "OffsetForLeaderEpoch refused");
                return Ok(false);
            }
            let t = truncation_offset(&cache, p.log_end_offset(), p.high_watermark(), answer.leader_epoch, answer.end_offset);
            let p2 = p.clone();
            tokio::task::spawn_blocking(move || p2.truncate_to(t.offset, leader, epoch))
                .await
                .map_err(|e| ReplicationError::Task(e.to_string()))?
                .map_err(|source| ReplicationError::Partition { topic: p.topic.clone(), partition: p.index, source })?;
            if t.done {
                debug!(leader = leader.0, topic = %p.topic, partition = p.index, epoch = epoch.0, log_end = p.log_end_offset(), "follower log agrees with the leader");
                return Ok(true);
            }
        }
        warn!(leader = leader.0, topic = %p.topic, partition = p.index, "truncation did not converge; retrying");
        Ok(false)
    }
}
