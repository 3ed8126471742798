//! OffsetForLeaderEpoch (v2–4): where a given leader epoch ends in this leader's log (KIP-101/279).
//! A follower asks it of a new leader before fetching, to find where to truncate; clients ask it to
//! validate their position after a leader change (KIP-320). Answered from the partition's leader-epoch
//! cache; only the leader answers, and a `current_leader_epoch` that differs from the leader's is
//! refused with FENCED_LEADER_EPOCH (older) or UNKNOWN_LEADER_EPOCH (newer).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::broker::Broker;
use crate::wire::context::RequestContext;
use crate::partition::epoch_cache::{UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};

pub fn handle(broker: &Arc<Broker>, _ctx: &RequestContext, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let name = t.topic.0.as_str();
            let partitions = t
                .partitions
                .iter()
                .map(|op| {
                    let base = EpochEndOffset::default()
                        .with_partition(op.partition)
                        .with_leader_epoch(UNDEFINED_EPOCH)
                        .with_end_offset(UNDEFINED_EPOCH_OFFSET);
                    let Some(p) = broker.partitions.get(name, op.partition) else {
                        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    match p.end_offset_for_epoch(op.current_leader_epoch, op.leader_epoch) {
                        Ok((epoch, end)) => base.with_leader_epoch(epoch).with_end_offset(end),
                        Err(e) => base.with_error_code(e.code()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
