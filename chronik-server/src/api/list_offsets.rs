//! ListOffsets (v1–7): earliest (-2), latest (-1, the high watermark), max timestamp (-3, v7) and by
//! timestamp. Timestamp lookups resolve to the first batch whose largest timestamp reaches the target.
//! Only the leader answers clients (its high watermark is the one that counts); a follower says
//! NOT_LEADER_OR_FOLLOWER, as Kafka does. From v4 (KIP-320) the answer carries the leader epoch and a
//! request's `current_leader_epoch`, when given, must be the leader's: older is FENCED_LEADER_EPOCH,
//! newer UNKNOWN_LEADER_EPOCH. Earlier versions have neither field.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::broker::Broker;
use crate::wire::context::RequestContext;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// First version whose partitions carry the leader epoch.
const LEADER_EPOCH_SINCE_VERSION: i16 = 4;
/// First version that accepts the max-timestamp query (KIP-734).
const MAX_TIMESTAMP_SINCE_VERSION: i16 = 7;

pub fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let state = broker.meta.state();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.as_str();
            let partitions = t
                .partitions
                .iter()
                .map(|lp| {
                    let base = ListOffsetsPartitionResponse::default().with_partition_index(lp.partition_index).with_timestamp(-1).with_offset(-1);
                    let Some(p) = broker.partitions.get(name, lp.partition_index) else {
                        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let pm = state.topics.get(name).and_then(|t| t.partitions.get(usize::try_from(lp.partition_index).unwrap_or(usize::MAX)));
                    let epoch = pm.map(|pm| pm.leader_epoch).unwrap_or(-1);
                    if req.replica_id.0 < 0 && pm.is_some_and(|pm| pm.leader != broker.node_id.0) {
                        return base.with_error_code(ResponseError::NotLeaderOrFollower.code());
                    }
                    // v4+: a client that names the leader epoch it knows is fenced if that is stale.
                    if req.replica_id.0 < 0 && lp.current_leader_epoch >= 0 {
                        if let Err(e) = p.check_current_leader_epoch(lp.current_leader_epoch) {
                            return base.with_error_code(e.code());
                        }
                    }
                    let base = if ctx.version >= LEADER_EPOCH_SINCE_VERSION { base.with_leader_epoch(epoch) } else { base };
                    let found = match lp.timestamp {
                        LATEST => Ok(Some((p.high_watermark(), -1))),
                        EARLIEST => Ok(Some((p.log_start_offset(), -1))),
                        MAX_TIMESTAMP if ctx.version >= MAX_TIMESTAMP_SINCE_VERSION => p.max_timestamp_offset(),
                        ts if ts >= 0 => p.offset_for_timestamp(ts),
                        _ => return base.with_error_code(ResponseError::InvalidRequest.code()),
                    };
                    match found {
                        Ok(Some((offset, ts))) => base.with_offset(offset).with_timestamp(ts),
                        Ok(None) => base,
                        Err(e) => base.with_error_code(e.code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
