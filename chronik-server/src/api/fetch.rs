//! Fetch with long polling. Reads whole batches below each partition's high watermark as zero-copy
//! slices of the mapped segments; answers at once when `min_bytes` are available, else waits until data
//! arrives or `max_wait_ms` (capped by `fetch_wait_ms_max`) passes. `max_bytes` and each partition's
//! `partition_max_bytes` are honoured except that the first batch of the response is always whole
//! (KIP-74), so a consumer can never stall on a batch larger than its limits.
//!
//! Fetch sessions (KIP-227, v7+): the request's session id and epoch are decided by
//! [`crate::fetch_session::cache`] — a sessionless full fetch, a full fetch that opens a session (its id
//! goes back in the response), an incremental fetch, or a top-level FETCH_SESSION_ID_NOT_FOUND /
//! INVALID_FETCH_SESSION_EPOCH. An incremental fetch reads (and long-polls, `min_bytes` counted) over
//! all of the session's partitions, and answers only those with records, an error, or offsets the
//! fetcher has not been told ([`crate::fetch_session::session`]). The session lock is never held across the wait.
//!
//! The response is encoded by [`super::fetch_response`], which sends record data as slices of the
//! mapped segments instead of copying it into the response buffer.
//!
//! Two kinds of fetcher: consumers (`replica_id` < 0) read below the high watermark and only from the
//! leader (a follower answers NOT_LEADER_OR_FOLLOWER), and from v9 a `current_leader_epoch` they name
//! must be the leader's (older: FENCED_LEADER_EPOCH, newer: UNKNOWN_LEADER_EPOCH; KIP-320); followers
//! (`replica_id` = their broker id, on the wal port) read up to the log end, their fetch offset tells
//! the leader how far they have stored, and their long poll wakes on any append rather than on
//! high-watermark moves.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use tokio::time::Instant;

use chronik_raft::MetadataState;

use crate::fetch_session::cache::FetchPlan;
use crate::partition::Partition;
use crate::fetch_session::session::NO_SESSION_ID;
use crate::broker::Broker;
use crate::wire::context::{server_error_reply, DispatchError, Reply, RequestContext};

struct Collected {
    response: FetchResponse,
    bytes: usize,
    any_error: bool,
}

/// Reads `topics` (the request's, or a session's) with the limits of `req`.
fn collect(broker: &Broker, req: &FetchRequest, topics_in: &[FetchTopic]) -> Collected {
    let replica = req.replica_id.0;
    let state = broker.meta.state();
    let now_ms = chronik_wal::now_ms();
    let now = std::time::Instant::now();
    let mut remaining = usize::try_from(req.max_bytes).unwrap_or(0);
    let mut total = 0usize;
    let mut any_error = false;
    let mut topics = Vec::with_capacity(topics_in.len());
    for t in topics_in {
        let name = t.topic.0.as_str();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for fp in &t.partitions {
            let mut pd = PartitionData::default()
                .with_partition_index(fp.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(BrokerId(-1))
                .with_records(Some(Bytes::new()));
            let Some(p) = broker.partitions.get(name, fp.partition) else {
                any_error = true;
                partitions.push(pd.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            let mut limit = usize::try_from(fp.partition_max_bytes).unwrap_or(0).min(remaining);
            let record = state.topics.get(name).and_then(|t| t.partitions.get(usize::try_from(fp.partition).unwrap_or(usize::MAX)));
            // A replica a move is adding, not yet in sync: its catch-up is throttled and measured.
            let catching_up = replica >= 0 && crate::broker::catch_up::catching_up(&state, name, fp.partition, replica);
            if catching_up {
                match broker.catch_up.allowance(replica, now) {
                    Some(0) => {
                        let hw = p.high_watermark();
                        partitions.push(pd.with_high_watermark(hw).with_last_stable_offset(hw).with_log_start_offset(p.log_start_offset()));
                        continue;
                    }
                    Some(allowed) => limit = limit.min(allowed),
                    None => {}
                }
            }
            let read = if replica >= 0 {
                p.replica_read(replica, fp.fetch_offset, fp.current_leader_epoch, limit.max(1), now_ms)
            } else {
                let leads = record.is_some_and(|pm| pm.leader == broker.node_id.0);
                if leads {
                    // v9+ (KIP-320): a consumer naming a stale or future leader epoch is refused.
                    let fenced = if fp.current_leader_epoch >= 0 { p.check_current_leader_epoch(fp.current_leader_epoch).err() } else { None };
                    match fenced {
                        Some(e) => Err(e),
                        None => p.read(fp.fetch_offset, limit.max(1)).map(|r| (r, p.high_watermark())),
                    }
                } else {
                    Err(crate::partition::PartitionError::NotLeader)
                }
            };
            let hw = p.high_watermark();
            pd = pd.with_high_watermark(hw).with_last_stable_offset(hw).with_log_start_offset(p.log_start_offset());
            match read {
                Ok((r, hw)) => {
                    pd = pd.with_high_watermark(hw).with_last_stable_offset(hw);
                    // Over the limits only when it is the response's first data (KIP-74).
                    let fits = r.records.len() <= limit || total == 0;
                    if fits && !r.records.is_empty() {
                        if catching_up {
                            broker.catch_up.sent(name, fp.partition, replica, r.records.len(), now);
                        }
                        total += r.records.len();
                        remaining = remaining.saturating_sub(r.records.len());
                        pd = pd.with_records(Some(r.records));
                    }
                }
                Err(e) => {
                    any_error = true;
                    pd = pd.with_error_code(e.code());
                }
            }
            partitions.push(pd);
        }
        topics.push(FetchableTopicResponse::default().with_topic(t.topic.clone()).with_topic_id(t.topic_id).with_partitions(partitions));
    }
    Collected { response: FetchResponse::default().with_session_id(NO_SESSION_ID).with_responses(topics), bytes: total, any_error }
}

/// Answers one Fetch (after its long poll) as a chunked response frame.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: FetchRequest) -> Result<Reply, DispatchError> {
    let sessions = &broker.fetch_sessions;
    let (response, topics) = match sessions.begin(ctx.version, &req) {
        FetchPlan::Sessionless => (poll(broker, &req, &req.topics).await, None),
        FetchPlan::Open => {
            let mut response = poll(broker, &req, &req.topics).await;
            response.session_id = sessions.open(req.replica_id.0 >= 0, &req.topics, &response);
            (response, None)
        }
        FetchPlan::Incremental { id, topics } => {
            let mut response = poll(broker, &req, &topics).await;
            sessions.answer(id, &mut response);
            response.session_id = id;
            (response, Some(topics))
        }
        FetchPlan::Refuse(e) => {
            tracing::debug!(session_id = req.session_id, epoch = req.session_epoch, error = ?e, "fetch session refused");
            (FetchResponse::default().with_error_code(e.code()).with_session_id(NO_SESSION_ID), None)
        }
    };
    match super::fetch_response::encode(ctx.version, ctx.header.correlation_id, response) {
        Ok(frame) => Ok(Reply::Frame(frame)),
        // The encoder consumed the response: the error answer names the fetched partitions.
        Err(e) => Ok(Reply::Now(Some(server_error_reply(ctx, &requested(topics.as_deref().unwrap_or(&req.topics)), e, &broker.metrics)?))),
    }
}

/// A response listing the partitions of `topics`, with nothing else set.
fn requested(topics: &[FetchTopic]) -> FetchResponse {
    let topics = topics.iter().map(|t| {
        let partitions = t.partitions.iter().map(|p| PartitionData::default().with_partition_index(p.partition));
        FetchableTopicResponse::default().with_topic(t.topic.clone()).with_partitions(partitions.collect())
    });
    FetchResponse::default().with_responses(topics.collect())
}

/// Collects what `req` may read of `topics`, waiting up to its `max_wait_ms` for `min_bytes` over all
/// of them.
async fn poll(broker: &Arc<Broker>, req: &FetchRequest, topics: &[FetchTopic]) -> FetchResponse {
    let wait_max_ms = if req.replica_id.0 >= 0 { broker.config.replica_fetch_wait_ms_max } else { broker.config.fetch_wait_ms_max };
    let wait_ms = u64::try_from(req.max_wait_ms).unwrap_or(0).min(wait_max_ms);
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    if wait_ms == 0 || min_bytes == 0 {
        // Answered at once whatever it finds: nothing to watch.
        return answer(broker, collect(broker, req, topics));
    }
    // Followers wait for appends (they read past the HW); consumers for high-watermark moves.
    let mut changes = if req.replica_id.0 >= 0 { broker.partitions.subscribe_appends() } else { broker.data_changed.subscribe() };
    let handles = Handles::resolve(broker, topics);
    let mut seen = handles.look(broker);
    loop {
        changes.borrow_and_update();
        let c = collect(broker, req, topics);
        if c.bytes >= min_bytes || c.any_error || Instant::now() >= deadline {
            return answer(broker, c);
        }
        loop {
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                return answer(broker, collect(broker, req, topics));
            }
            // Woken by a change anywhere on this broker: collect again only if one of these partitions
            // (or the metadata) changed, not for every append to the thousands of others. `changed()`
            // marked the notification seen before this look, so a change after the look wakes the
            // next wait.
            let now_seen = handles.look(broker);
            if now_seen != seen {
                seen = now_seen;
                break;
            }
        }
    }
}

/// The response of a collect that is final, counted in the metrics.
fn answer(broker: &Broker, c: Collected) -> FetchResponse {
    broker.metrics.fetched(c.bytes);
    c.response
}

/// The partitions of one fetch, looked up once for its long poll.
struct Handles(Vec<Option<Arc<Partition>>>);

/// What a collect's outcome depends on that can change while a fetch waits: the metadata (by identity)
/// and each partition's log end, high watermark, log start and leader epoch.
struct Seen {
    metadata: Arc<MetadataState>,
    partitions: Vec<Option<(i64, i64, i64, Option<i32>)>>,
}

impl PartialEq for Seen {
    fn eq(&self, other: &Seen) -> bool {
        // Held, so the address cannot be reused by a later state while compared.
        Arc::ptr_eq(&self.metadata, &other.metadata) && self.partitions == other.partitions
    }
}

impl Handles {
    fn resolve(broker: &Broker, topics: &[FetchTopic]) -> Handles {
        let all = topics.iter().flat_map(|t| t.partitions.iter().map(move |fp| broker.partitions.get(t.topic.0.as_str(), fp.partition)));
        Handles(all.collect())
    }

    fn look(&self, broker: &Broker) -> Seen {
        let partitions = self.0.iter().map(|p| {
            p.as_ref().map(|p| (p.log_end_offset(), p.high_watermark(), p.log_start_offset(), p.leading_epoch()))
        });
        Seen { metadata: broker.meta.state(), partitions: partitions.collect() }
    }
}
