//! Produce. Per partition, never failing the whole request for one partition: frame-check the v2
//! batches, check the idempotent producer's sequence, stamp offsets and append the bytes verbatim —
//! all in request order on the connection. Waiting for the fsync that makes the append durable
//! (`acks` 1 or -1) happens after, concurrently with later requests; the response is sent in order.
//! `acks=1` waits for the leader's own fsync; `acks=-1` also waits until the high watermark passes the
//! batch (every ISR member stored it), failing with NOT_ENOUGH_REPLICAS before the append when the ISR
//! is below `min.insync.replicas`, NOT_ENOUGH_REPLICAS_AFTER_APPEND when it shrank below it meanwhile,
//! and REQUEST_TIMED_OUT when the request's timeout passes first.

use std::sync::Arc;
use std::time::Duration;

use chronik_wal::split_batches;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use tokio::sync::oneshot;

use super::str_bytes;
use crate::broker::Broker;
use crate::kafka::dispatch::{DispatchError, Reply, RequestContext};
use crate::partition::topic::topic_config_i64;
use crate::partition::{AppendResult, Partition, PartitionError};

/// Kafka's "no log append time" marker (timestamps are the producer's CreateTime).
const NO_TIMESTAMP: i64 = -1;

/// One partition's outcome before durability is awaited.
struct Pending {
    topic_index: usize,
    response: PartitionProduceResponse,
    /// The partition and the end offset that must become durable before answering.
    wait: Option<(Arc<Partition>, i64)>,
    /// acks=all: the leader epoch the batch was appended in and the ISR size required.
    replicate: Option<(i32, usize)>,
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
                replicate: None,
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
            if pm.leader != broker.node_id || partition.leading_epoch() != Some(pm.leader_epoch) {
                pending.push(fail(ResponseError::NotLeaderOrFollower, format!("leader is broker {}", pm.leader)));
                continue;
            }
            let min_isr = topic_config_i64(&tm.configs, "min.insync.replicas", i64::from(broker.config.min_insync_replicas));
            let lag_max_ms = i64::try_from(broker.config.replica_lag_time_max_ms).unwrap_or(i64::MAX);
            let in_sync = partition.in_sync_count(crate::server::now_ms(), lag_max_ms).unwrap_or(0).min(pm.isr.len());
            if acks == -1 && (in_sync as i64) < min_isr {
                let message = format!("{in_sync} in-sync replicas (ISR {:?}), min.insync.replicas {min_isr}", pm.isr);
                pending.push(fail(ResponseError::NotEnoughReplicas, message));
                continue;
            }
            let Some(records) = p.records else {
                pending.push(fail(ResponseError::CorruptMessage, "no records".into()));
                continue;
            };
            let size_max = topic_config_i64(&tm.configs, "max.message.bytes", i64::from(broker.config.message_bytes_max));
            match append_partition(&partition, records, size_max, pm.leader_epoch) {
                Ok((results, bytes)) => {
                    broker.metrics.produced(bytes);
                    let base_offset = match results.first() {
                        Some(AppendResult::Appended { base_offset, .. }) | Some(AppendResult::Duplicate { base_offset }) => *base_offset,
                        None => -1,
                    };
                    let end = results
                        .iter()
                        .filter_map(|r| match r {
                            AppendResult::Appended { last_offset, .. } => Some(*last_offset + 1),
                            AppendResult::Duplicate { .. } => None,
                        })
                        .max();
                    let response = base.clone().with_base_offset(base_offset).with_log_start_offset(partition.log_start_offset());
                    // A duplicate is answered once its original is durable too.
                    let end = end.unwrap_or_else(|| partition.log_end_offset());
                    let replicate = (acks == -1).then(|| (pm.leader_epoch, usize::try_from(min_isr).unwrap_or(usize::MAX)));
                    pending.push(Pending { topic_index: ti, response, wait: Some((partition.clone(), end)), replicate });
                }
                Err(e) => {
                    tracing::debug!(topic = topic_name, partition = p.index, error = %e, "produce refused");
                    pending.push(Pending {
                        topic_index: ti,
                        response: base.with_error_code(e.code()).with_error_message(Some(str_bytes(&e.to_string()))),
                        wait: None,
                        replicate: None,
                    });
                }
            }
        }
    }
    if acks == 0 {
        // No response. A failed partition closes the connection, as Kafka does, so the client notices
        // (refreshes metadata, reconnects) instead of losing records silently.
        if let Some(failed) = pending.iter().find(|p| p.response.error_code != 0) {
            return Err(DispatchError::AcksZeroFailed { code: failed.response.error_code });
        }
        // Durability still advances the high watermark in the background.
        for p in pending {
            if let Some((partition, end)) = p.wait {
                tokio::spawn(async move {
                    if let Err(e) = partition.make_durable(end).await {
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
            let done = p.wait.map(|(partition, end)| {
                tokio::spawn(async move {
                    let durable = async {
                        partition.make_durable(end).await?;
                        match p.replicate {
                            Some((epoch, min_isr)) => partition.wait_replicated(end, epoch, min_isr).await,
                            None => Ok(()),
                        }
                    };
                    tokio::time::timeout_at(deadline, durable).await
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
                    Ok(Ok(Ok(()))) => response,
                    Ok(Ok(Err(e))) => failed(response, &e, e.code()),
                    Ok(Err(_elapsed)) => response.with_error_code(ResponseError::RequestTimedOut.code()),
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
        let encoded = ctx.encode(&body, &broker.metrics).ok();
        let _ = tx.send(encoded);
    });
    Ok(Reply::Later(rx))
}

fn append_partition(partition: &Partition, records: bytes::Bytes, size_max: i64, leader_epoch: i32) -> Result<(Vec<AppendResult>, usize), PartitionError> {
    let views = split_batches(&records)?;
    if let Some(v) = views.iter().find(|v| v.len() as i64 > size_max) {
        return Err(PartitionError::MessageTooLarge { size: v.len(), max: i32::try_from(size_max).unwrap_or(i32::MAX) });
    }
    // The batches are written from the request buffer as they are; the log stamps offsets and epoch
    // while writing (no copy of the batch).
    Ok((partition.append(&views, leader_epoch)?, records.len()))
}
