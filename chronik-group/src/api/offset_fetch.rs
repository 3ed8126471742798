//! OffsetFetch v1–8 (v2+ null topics = everything and a top-level error; v8 several groups).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::{owned, wire};
use crate::coordinator::GroupCoordinator;
use crate::offsets::{CommittedOffset, TopicPartition};
use crate::GroupError;

const MULTI_GROUP_SINCE_VERSION: i16 = 8;
const TOP_LEVEL_ERROR_SINCE_VERSION: i16 = 2;
const LEADER_EPOCH_SINCE_VERSION: i16 = 5;

/// One group's answer, before it is shaped for the version.
struct GroupOffsets {
    error: Option<ResponseError>,
    /// Topic → (partition, committed or None).
    topics: BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>>,
}

impl GroupCoordinator {
    pub async fn offset_fetch(&self, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
        let mut resp = OffsetFetchResponse::default();
        if version >= MULTI_GROUP_SINCE_VERSION {
            for g in &req.groups {
                let wanted = g
                    .topics
                    .as_ref()
                    .map(|topics| topics.iter().map(|t| (owned(&t.name), t.partition_indexes.clone())).collect());
                let answer = self.group_offsets(g.group_id.as_str(), wanted).await;
                resp.groups.push(group_entry(g.group_id.clone(), answer));
            }
            return resp;
        }
        let wanted = req
            .topics
            .as_ref()
            .map(|topics| topics.iter().map(|t| (owned(&t.name), t.partition_indexes.clone())).collect());
        let answer = self.group_offsets(req.group_id.as_str(), wanted.clone()).await;
        if version >= TOP_LEVEL_ERROR_SINCE_VERSION {
            resp.error_code = answer.error.map_or(0, |e| e.code());
        }
        // v1 has no top-level error: a group error is reported on every requested partition.
        let partition_error = if version < TOP_LEVEL_ERROR_SINCE_VERSION { answer.error } else { None };
        let mut topics = answer.topics;
        if let (Some(_), Some(wanted)) = (partition_error, wanted) {
            topics = wanted.into_iter().map(|(t, ps)| (t, ps.into_iter().map(|p| (p, None)).collect())).collect();
        }
        resp.topics = topics
            .into_iter()
            .map(|(name, partitions)| {
                let mut topic = OffsetFetchResponseTopic::default();
                topic.name = TopicName(wire(name));
                topic.partitions = partitions
                    .into_iter()
                    .map(|(index, committed)| {
                        let (offset, epoch, metadata) = fields(committed);
                        let mut p = OffsetFetchResponsePartition::default();
                        p.partition_index = index;
                        p.committed_offset = offset;
                        if version >= LEADER_EPOCH_SINCE_VERSION {
                            p.committed_leader_epoch = epoch;
                        }
                        p.metadata = metadata;
                        p.error_code = partition_error.map_or(0, |e| e.code());
                        p
                    })
                    .collect();
                topic
            })
            .collect();
        resp
    }

    /// Offsets of `group` for `wanted` topics and partitions, or all of them when `None`.
    async fn group_offsets(&self, group: &str, wanted: Option<Vec<(String, Vec<i32>)>>) -> GroupOffsets {
        let mut topics: BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>> = BTreeMap::new();
        if group.is_empty() {
            return GroupOffsets { error: Some(ResponseError::InvalidGroupId), topics };
        }
        // A broker that does not own the group's offsets — or cannot confirm it still leads their
        // partition — answers NOT_COORDINATOR (or COORDINATOR_LOAD_IN_PROGRESS), never "nothing
        // committed".
        if let Some(error) = self.not_serving(group).await {
            return GroupOffsets { error: Some(error), topics };
        }
        let answered = match wanted {
            Some(wanted) => wanted.into_iter().try_for_each(|(topic, partitions)| {
                let keys: Vec<TopicPartition> =
                    partitions.iter().map(|&p| TopicPartition { topic: topic.clone(), partition: p }).collect();
                let found = self.offsets.fetch(group, &keys)?;
                topics.entry(topic).or_default().extend(partitions.into_iter().zip(found));
                Ok::<(), GroupError>(())
            }),
            None => self.offsets.fetch_all(group).map(|all| {
                for (tp, committed) in all {
                    topics.entry(tp.topic).or_default().push((tp.partition, Some(committed)));
                }
            }),
        };
        match answered {
            Ok(()) => GroupOffsets { error: None, topics },
            Err(e) => GroupOffsets { error: Some(e.response_error()), topics: BTreeMap::new() },
        }
    }
}

/// One group's entry of a v8+ response.
fn group_entry(group_id: kafka_protocol::messages::GroupId, answer: GroupOffsets) -> OffsetFetchResponseGroup {
    let mut group = OffsetFetchResponseGroup::default();
    group.group_id = group_id;
    group.error_code = answer.error.map_or(0, |e| e.code());
    group.topics = answer
        .topics
        .into_iter()
        .map(|(name, partitions)| {
            let mut topic = OffsetFetchResponseTopics::default();
            topic.name = TopicName(wire(name));
            topic.partitions = partitions
                .into_iter()
                .map(|(index, committed)| {
                    let (offset, epoch, metadata) = fields(committed);
                    let mut p = OffsetFetchResponsePartitions::default();
                    p.partition_index = index;
                    p.committed_offset = offset;
                    p.committed_leader_epoch = epoch;
                    p.metadata = metadata;
                    p
                })
                .collect();
            topic
        })
        .collect();
    group
}

/// Offset, leader epoch and metadata as the wire wants them (-1, -1, "" when nothing is committed).
fn fields(committed: Option<CommittedOffset>) -> (i64, i32, Option<kafka_protocol::protocol::StrBytes>) {
    match committed {
        Some(c) => (c.offset, c.leader_epoch, Some(wire(c.metadata.unwrap_or_default()))),
        None => (-1, -1, Some(wire(""))),
    }
}
