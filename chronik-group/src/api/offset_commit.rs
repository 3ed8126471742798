//! OffsetCommit v2–8: validate generation and member, then commit durably (one batch, fsynced).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use tracing::warn;

use super::owned;
use crate::config::OFFSET_METADATA_BYTES_MAX;
use crate::coordinator::GroupCoordinator;
use crate::offsets::{CommittedOffset, TopicPartition};

/// The committed leader epoch is sent from v6 on.
const LEADER_EPOCH_SINCE_VERSION: i16 = 6;

impl GroupCoordinator {
    pub async fn offset_commit(&self, req: OffsetCommitRequest, version: i16) -> OffsetCommitResponse {
        self.ensure_ticker();
        let group_id = owned(&req.group_id);
        let group_error = if group_id.is_empty() {
            Some(ResponseError::InvalidGroupId)
        } else {
            match self.not_serving(&group_id).await {
                Some(error) => Some(error),
                None => self.check_commit(&req),
            }
        };
        // Per partition: Some(error) is decided; None is to be committed.
        let mut decided: Vec<Vec<Option<ResponseError>>> = Vec::with_capacity(req.topics.len());
        let mut to_commit = Vec::new();
        let commit_time_ms = chronik_wal::now_ms();
        for topic in &req.topics {
            let mut errors = Vec::with_capacity(topic.partitions.len());
            for p in &topic.partitions {
                let metadata_bytes = p.committed_metadata.as_ref().map_or(0, |m| m.len());
                let error = if group_error.is_some() {
                    group_error
                } else if !(self.partition_exists)(topic.name.as_str(), p.partition_index) {
                    Some(ResponseError::UnknownTopicOrPartition)
                } else if metadata_bytes > OFFSET_METADATA_BYTES_MAX {
                    Some(ResponseError::OffsetMetadataTooLarge)
                } else {
                    let committed = CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: if version >= LEADER_EPOCH_SINCE_VERSION { p.committed_leader_epoch } else { -1 },
                        metadata: p.committed_metadata.as_ref().map(owned),
                        commit_timestamp_ms: commit_time_ms,
                    };
                    to_commit.push((TopicPartition { topic: owned(&topic.name), partition: p.partition_index }, committed));
                    None
                };
                errors.push(error);
            }
            decided.push(errors);
        }
        let storage_error = if to_commit.is_empty() {
            None
        } else {
            match self.offsets.commit(&group_id, to_commit).await {
                Ok(()) => None,
                Err(e) => {
                    warn!(group = %group_id, error = %e, "offset commit failed");
                    // Retriable: the client looks the coordinator up again (or waits) and retries.
                    Some(e.response_error())
                }
            }
        };
        let mut resp = OffsetCommitResponse::default();
        resp.topics = req
            .topics
            .iter()
            .zip(decided)
            .map(|(topic, errors)| {
                let mut out = OffsetCommitResponseTopic::default();
                out.name = topic.name.clone();
                out.partitions = topic
                    .partitions
                    .iter()
                    .zip(errors)
                    .map(|(p, error)| {
                        let mut part = OffsetCommitResponsePartition::default();
                        part.partition_index = p.partition_index;
                        part.error_code = error.or(storage_error).map_or(0, |e| e.code());
                        part
                    })
                    .collect();
                out
            })
            .collect();
        resp
    }

    /// Kafka's group-level commit rules; a commit for a group we do not know is fine only as a
    /// "simple" commit (generation < 0).
    fn check_commit(&self, req: &OffsetCommitRequest) -> Option<ResponseError> {
        let now_ms = self.now_ms();
        let mut registry = self.registry.lock();
        match registry.groups.get_mut(req.group_id.as_str()) {
            Some(group) => group
                .validate_commit(
                    req.member_id.as_str(),
                    req.group_instance_id.as_ref().map(|s| s.as_str()),
                    req.generation_id_or_member_epoch,
                    now_ms,
                )
                .err(),
            None if req.generation_id_or_member_epoch < 0 => None,
            None => Some(ResponseError::IllegalGeneration),
        }
    }
}
