//! Fetch with long polling. Reads whole batches below each partition's high watermark as zero-copy
//! slices of the mapped segments; answers at once when `min_bytes` are available, else waits until data
//! arrives or `max_wait_ms` (capped by `fetch_wait_ms_max`) passes. `max_bytes` and each partition's
//! `partition_max_bytes` are honoured except that the first batch of the response is always whole
//! (KIP-74), so a consumer can never stall on a batch larger than its limits.
//! Fetch sessions (KIP-227) are not kept: every response has session id 0, which tells the client to
//! keep sending full requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use tokio::time::Instant;

use crate::broker::Broker;
use crate::kafka::dispatch::RequestContext;

struct Collected {
    response: FetchResponse,
    bytes: usize,
    any_error: bool,
}

fn collect(broker: &Broker, req: &FetchRequest) -> Collected {
    let mut remaining = usize::try_from(req.max_bytes).unwrap_or(0);
    let mut total = 0usize;
    let mut any_error = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
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
            let hw = p.high_watermark();
            pd = pd.with_high_watermark(hw).with_last_stable_offset(hw).with_log_start_offset(p.log_start_offset());
            let limit = usize::try_from(fp.partition_max_bytes).unwrap_or(0).min(remaining);
            match p.read(fp.fetch_offset, limit.max(1)) {
                Ok(r) => {
                    // Over the limits only when it is the response's first data (KIP-74).
                    let fits = r.records.len() <= limit || total == 0;
                    if fits && !r.records.is_empty() {
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
    Collected { response: FetchResponse::default().with_session_id(0).with_responses(topics), bytes: total, any_error }
}

pub async fn handle(broker: &Arc<Broker>, _ctx: &RequestContext, req: FetchRequest) -> FetchResponse {
    let wait_ms = u64::try_from(req.max_wait_ms).unwrap_or(0).min(broker.config.fetch_wait_ms_max);
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let mut changes = broker.data_changed.subscribe();
    loop {
        changes.borrow_and_update();
        let c = collect(broker, &req);
        if c.bytes >= min_bytes || c.any_error || Instant::now() >= deadline {
            broker.metrics.fetched(c.bytes);
            return c.response;
        }
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            let c = collect(broker, &req);
            broker.metrics.fetched(c.bytes);
            return c.response;
        }
    }
}
