//! Produce. Per partition, never failing the whole request for one partition: the request's own
//! checks (acks, internal topic, hosted here, `max.message.bytes`), then the leader write path of
//! `partition::leader_write` — split and check the v2 batches, check leadership and (acks=-1) the
//! in-sync count, check the idempotent producer's sequence, stamp offsets and append the bytes
//! verbatim — all in request order on the connection. Committing the append (`acks` 1: fsynced
//! here; -1: also stored by every ISR member) happens after, concurrently with later requests, by
//! the request's timeout; the response is sent in order.

use std::sync::Arc;
use std::time::Duration;

use chronik_wal::split_batches;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use tokio::sync::oneshot;

use super::str_bytes;
use crate::broker::Broker;
use crate::metrics::ProduceStage;
use crate::wire::context::{Deferred, DispatchError, Reply, RequestContext};
use crate::partition::{Acks, LeaderWrite, MinInsyncReplicas, Partition, PartitionError};

/// Kafka's "no log append time" marker (timestamps are the producer's CreateTime).
const NO_TIMESTAMP: i64 = -1;

/// One partition's outcome before durability is awaited.
struct Pending {
    topic_index: usize,
    response: PartitionProduceResponse,
    /// The partition and the write to commit before answering.
    wait: Option<(Arc<Partition>, LeaderWrite)>,
}

pub fn handle(broker: &Arc<Broker>, ctx: RequestContext, req: ProduceRequest) -> Result<Reply, DispatchError> {
    let acks = req.acks;
    let mut topics: Vec<TopicProduceResponse> = Vec::with_capacity(req.topic_data.len());
    let mut pending: Vec<Pending> = Vec::new();
    let state = broker.meta.state();
    for (ti, t) in req.topic_data.into_iter().enumerate() {
        topics.push(TopicProduceResponse::default().with_name(t.name.clone()).with_topic_id(t.topic_id));
        let topic_name = t.name.0.as_str();
        let topic_meta = state.topics.get(topic_name);
        for p in t.partition_data {
            let base = PartitionProduceResponse::default()
                .with_index(p.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(NO_TIMESTAMP)
                .with_log_start_offset(-1);
            let fail = |code: ResponseError, message: String| Pending {
                topic_index: ti,
                response: base.clone().with_error_code(code.code()).with_error_message(Some(str_bytes(&message))),
                wait: None,
            };
            if !(-1..=1).contains(&acks) {
                pending.push(fail(ResponseError::InvalidRequiredAcks, format!("acks must be 0, 1 or -1, got {acks}")));
                continue;
            }
            if crate::groups::offsets_topic::is_internal(topic_name) {
                pending.push(fail(ResponseError::InvalidTopicException, format!("{topic_name} is internal: only the broker writes it")));
                continue;
            }
            let (Some(tm), Some(partition)) = (topic_meta, broker.partitions.get(topic_name, p.index)) else {
                pending.push(fail(ResponseError::UnknownTopicOrPartition, format!("{topic_name}-{} is not hosted here", p.index)));
                continue;
            };
            let Some(pm) = tm.partitions.get(p.index as usize) else {
                pending.push(fail(ResponseError::UnknownTopicOrPartition, "no such partition".into()));
                continue;
            };
            if pm.leader != broker.node_id.0 {
                pending.push(fail(ResponseError::NotLeaderOrFollower, format!("leader is broker {}", pm.leader)));
                continue;
            }
            let Some(records) = p.records else {
                pending.push(fail(ResponseError::CorruptMessage, "no records".into()));
                continue;
            };
            let topic_config = broker.partitions.topic_config(&tm.configs);
            let size_max = topic_config.max_message_bytes;
            let required = if acks == -1 { Acks::All(MinInsyncReplicas::of_topic(&topic_config)) } else { Acks::Leader };
            let lag_max_ms = i64::try_from(broker.config.replica_lag_time_max_ms).unwrap_or(i64::MAX);
            let write = |records: &bytes::Bytes| {
                let batches = split_batches(records)?;
                if let Some(b) = batches.iter().find(|b| b.len() as i64 > size_max) {
                    return Err(PartitionError::MessageTooLarge { size: b.len(), max: i32::try_from(size_max).unwrap_or(i32::MAX) });
                }
                // The batches are written from the request buffer as they are; the log stamps offsets
                // and epoch while writing (no copy of the batch).
                partition.append_as_leader(&batches, pm.leader_epoch, required, chronik_wal::now_ms(), lag_max_ms)
            };
            match write(&records) {
                Ok(write) => {
                    broker.metrics.produced(records.len());
                    let response = base
                        .clone()
                        .with_base_offset(write.base_offset().unwrap_or(-1))
                        .with_log_start_offset(partition.log_start_offset());
                    pending.push(Pending { topic_index: ti, response, wait: Some((partition.clone(), write)) });
                }
                Err(e) => {
                    tracing::debug!(topic = topic_name, partition = p.index, error = %e, "produce refused");
                    pending.push(Pending {
                        topic_index: ti,
                        response: base.with_error_code(e.code()).with_error_message(Some(str_bytes(&e.to_string()))),
                        wait: None,
                    });
                }
            }
        }
    }
    let appended_at = tokio::time::Instant::now();
    broker.metrics.produce_stage(ProduceStage::Append, ctx.started.elapsed());
    if acks == 0 {
        // No response. A failed partition closes the connection, as Kafka does, so the client notices
        // (refreshes metadata, reconnects) instead of losing records silently.
        if let Some(failed) = pending.iter().find(|p| p.response.error_code != 0) {
            return Err(DispatchError::AcksZeroFailed { code: failed.response.error_code });
        }
        // Durability still advances the high watermark in the background.
        for p in pending {
            if let Some((partition, write)) = p.wait {
                tokio::spawn(async move {
                    if let Err(e) = partition.make_durable(write.end_offset).await {
                        tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "fsync failed");
                    }
                });
            }
        }
        return Ok(Reply::Now(None));
    }
    let (tx, rx) = oneshot::channel();
    let timeout = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0).max(1));
    let deadline = tokio::time::Instant::now() + timeout;
    // Every partition's wait starts now and they run side by side: awaited one after another, a
    // request for six partitions would pay six fsyncs in a row (seen as a p99 of 11 ms at 200,000
    // records/s on one node). Each wait ends by the request's deadline.
    let waits: Vec<_> = pending
        .into_iter()
        .map(|p| {
            let metrics = broker.clone();
            let done = p.wait.map(|(partition, write)| {
                tokio::spawn(async move {
                    let committed = partition.commit(&write, deadline).await?;
                    let m = &metrics.metrics;
                    m.produce_stage(ProduceStage::Durable, committed.durable_at.saturating_duration_since(appended_at));
                    if matches!(write.acks, Acks::All(_)) {
                        m.produce_stage(ProduceStage::Replicated, committed.durable_at.elapsed());
                    }
                    Ok::<(), PartitionError>(())
                })
            });
            (p.topic_index, p.response, done)
        })
        .collect();
    let broker = broker.clone();
    tokio::spawn(async move {
        for (topic_index, mut response, done) in waits {
            let failed = |response: PartitionProduceResponse, e: &dyn std::fmt::Display, code: i16| {
                response.with_error_code(code).with_error_message(Some(str_bytes(&e.to_string())))
            };
            if let Some(done) = done {
                response = match done.await {
                    Ok(Ok(())) => response,
                    // A timeout is answered with the code alone.
                    Ok(Err(PartitionError::TimedOut { .. })) => response.with_error_code(ResponseError::RequestTimedOut.code()),
                    Ok(Err(e)) => failed(response, &e, e.code()),
                    // The wait task panicked or was cancelled: the outcome is unknown.
                    Err(e) => failed(response, &e, ResponseError::UnknownServerError.code()),
                };
            }
            if let Some(t) = topics.get_mut(topic_index) {
                t.partition_responses.push(response);
            }
        }
        let body = ProduceResponse::default().with_responses(topics);
        broker.metrics.observe(ApiKey::Produce, ctx.started.elapsed());
        // An encode failure is answered with UNKNOWN_SERVER_ERROR; `None` (no answer, the connection
        // closes) only if even that cannot be encoded, which `encode` has logged.
        let encoded = ctx.encode(&body, &broker.metrics).ok().map(|frame| Deferred { frame, ready: std::time::Instant::now() });
        let _ = tx.send(encoded);
    });
    Ok(Reply::Later(rx))
}
