//! What to answer when a handler's response cannot be encoded at the request's version (a field set
//! that the version lacks, a null where the version wants a value): a broker bug, but the client should
//! still get an answer it understands rather than a closed connection it retries forever.
//!
//! [`ServerErrorResponse::server_error`] keeps only what identifies each entry (topic names, partition
//! indexes, group ids, member ids), puts UNKNOWN_SERVER_ERROR in every error code the version carries —
//! the top-level one where there is one, else each entry's — and leaves every other field at its
//! default, which every version can encode. `kafka::dispatch` logs the failure at `error`, counts it
//! (`chronik_response_encode_errors_total`) and sends this instead.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Encodable;

/// The error code of a fallback answer.
const UNKNOWN_SERVER_ERROR: i16 = ResponseError::UnknownServerError.code();

/// A response that can be re-stated as "the broker failed" at a given version.
pub trait ServerErrorResponse: Encodable {
    /// This response reduced to its keys with UNKNOWN_SERVER_ERROR, encodable at `version`.
    fn server_error(&self, version: i16) -> Self;
}

impl ServerErrorResponse for ProduceResponse {
    fn server_error(&self, _version: i16) -> Self {
        use produce_response::{PartitionProduceResponse, TopicProduceResponse};
        let topics = self.responses.iter().map(|t| {
            let partitions = t.partition_responses.iter().map(|p| {
                PartitionProduceResponse::default().with_index(p.index).with_error_code(UNKNOWN_SERVER_ERROR)
            });
            TopicProduceResponse::default().with_name(t.name.clone()).with_partition_responses(partitions.collect())
        });
        ProduceResponse::default().with_responses(topics.collect())
    }
}

impl ServerErrorResponse for FetchResponse {
    fn server_error(&self, version: i16) -> Self {
        use fetch_response::{FetchableTopicResponse, PartitionData};
        let topics = self.responses.iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                PartitionData::default().with_partition_index(p.partition_index).with_error_code(UNKNOWN_SERVER_ERROR)
            });
            FetchableTopicResponse::default().with_topic(t.topic.clone()).with_partitions(partitions.collect())
        });
        let resp = FetchResponse::default().with_responses(topics.collect());
        // The top-level error exists from v7 (fetch sessions).
        if version >= 7 {
            resp.with_error_code(UNKNOWN_SERVER_ERROR)
        } else {
            resp
        }
    }
}

impl ServerErrorResponse for ListOffsetsResponse {
    fn server_error(&self, _version: i16) -> Self {
        use list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
        let topics = self.topics.iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(UNKNOWN_SERVER_ERROR)
            });
            ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions.collect())
        });
        ListOffsetsResponse::default().with_topics(topics.collect())
    }
}

impl ServerErrorResponse for MetadataResponse {
    fn server_error(&self, _version: i16) -> Self {
        use metadata_response::MetadataResponseTopic;
        let topics = self
            .topics
            .iter()
            .map(|t| MetadataResponseTopic::default().with_name(t.name.clone()).with_error_code(UNKNOWN_SERVER_ERROR));
        MetadataResponse::default().with_topics(topics.collect())
    }
}

impl ServerErrorResponse for OffsetCommitResponse {
    fn server_error(&self, _version: i16) -> Self {
        use offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
        let topics = self.topics.iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(UNKNOWN_SERVER_ERROR)
            });
            OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions.collect())
        });
        OffsetCommitResponse::default().with_topics(topics.collect())
    }
}

impl ServerErrorResponse for OffsetFetchResponse {
    fn server_error(&self, version: i16) -> Self {
        use offset_fetch_response::{OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic};
        if version >= 8 {
            let groups = self.groups.iter().map(|g| {
                OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone()).with_error_code(UNKNOWN_SERVER_ERROR)
            });
            return OffsetFetchResponse::default().with_groups(groups.collect());
        }
        if version >= 2 {
            return OffsetFetchResponse::default().with_error_code(UNKNOWN_SERVER_ERROR);
        }
        // v1 has only per-partition errors.
        let topics = self.topics.iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                OffsetFetchResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(UNKNOWN_SERVER_ERROR)
            });
            OffsetFetchResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions.collect())
        });
        OffsetFetchResponse::default().with_topics(topics.collect())
    }
}

impl ServerErrorResponse for FindCoordinatorResponse {
    fn server_error(&self, version: i16) -> Self {
        use find_coordinator_response::Coordinator;
        if version >= 4 {
            let coordinators = self.coordinators.iter().map(|c| {
                Coordinator::default().with_key(c.key.clone()).with_node_id(BrokerId(-1)).with_port(-1).with_error_code(UNKNOWN_SERVER_ERROR)
            });
            return FindCoordinatorResponse::default().with_coordinators(coordinators.collect());
        }
        FindCoordinatorResponse::default().with_node_id(BrokerId(-1)).with_port(-1).with_error_code(UNKNOWN_SERVER_ERROR)
    }
}

impl ServerErrorResponse for JoinGroupResponse {
    fn server_error(&self, _version: i16) -> Self {
        JoinGroupResponse::default().with_member_id(self.member_id.clone()).with_error_code(UNKNOWN_SERVER_ERROR)
    }
}

impl ServerErrorResponse for HeartbeatResponse {
    fn server_error(&self, _version: i16) -> Self {
        HeartbeatResponse::default().with_error_code(UNKNOWN_SERVER_ERROR)
    }
}

impl ServerErrorResponse for LeaveGroupResponse {
    fn server_error(&self, _version: i16) -> Self {
        LeaveGroupResponse::default().with_error_code(UNKNOWN_SERVER_ERROR)
    }
}

impl ServerErrorResponse for SyncGroupResponse {
    fn server_error(&self, _version: i16) -> Self {
        SyncGroupResponse::default().with_error_code(UNKNOWN_SERVER_ERROR)
    }
}

impl ServerErrorResponse for DescribeGroupsResponse {
    fn server_error(&self, _version: i16) -> Self {
        use describe_groups_response::DescribedGroup;
        let groups = self
            .groups
            .iter()
            .map(|g| DescribedGroup::default().with_group_id(g.group_id.clone()).with_error_code(UNKNOWN_SERVER_ERROR));
        DescribeGroupsResponse::default().with_groups(groups.collect())
    }
}

impl ServerErrorResponse for ListGroupsResponse {
    fn server_error(&self, _version: i16) -> Self {
        ListGroupsResponse::default().with_error_code(UNKNOWN_SERVER_ERROR)
    }
}

impl ServerErrorResponse for DeleteGroupsResponse {
    fn server_error(&self, _version: i16) -> Self {
        use delete_groups_response::DeletableGroupResult;
        let results = self
            .results
            .iter()
            .map(|g| DeletableGroupResult::default().with_group_id(g.group_id.clone()).with_error_code(UNKNOWN_SERVER_ERROR));
        DeleteGroupsResponse::default().with_results(results.collect())
    }
}

impl ServerErrorResponse for ApiVersionsResponse {
    fn server_error(&self, _version: i16) -> Self {
        ApiVersionsResponse::default().with_api_keys(self.api_keys.clone()).with_error_code(UNKNOWN_SERVER_ERROR)
    }
}

impl ServerErrorResponse for CreateTopicsResponse {
    fn server_error(&self, _version: i16) -> Self {
        use create_topics_response::CreatableTopicResult;
        let topics = self
            .topics
            .iter()
            .map(|t| CreatableTopicResult::default().with_name(t.name.clone()).with_error_code(UNKNOWN_SERVER_ERROR));
        CreateTopicsResponse::default().with_topics(topics.collect())
    }
}

impl ServerErrorResponse for DeleteTopicsResponse {
    fn server_error(&self, _version: i16) -> Self {
        use delete_topics_response::DeletableTopicResult;
        let topics = self
            .responses
            .iter()
            .map(|t| DeletableTopicResult::default().with_name(t.name.clone()).with_error_code(UNKNOWN_SERVER_ERROR));
        DeleteTopicsResponse::default().with_responses(topics.collect())
    }
}

impl ServerErrorResponse for CreatePartitionsResponse {
    fn server_error(&self, _version: i16) -> Self {
        use create_partitions_response::CreatePartitionsTopicResult;
        let results = self
            .results
            .iter()
            .map(|t| CreatePartitionsTopicResult::default().with_name(t.name.clone()).with_error_code(UNKNOWN_SERVER_ERROR));
        CreatePartitionsResponse::default().with_results(results.collect())
    }
}

impl ServerErrorResponse for InitProducerIdResponse {
    fn server_error(&self, _version: i16) -> Self {
        InitProducerIdResponse::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_error_code(UNKNOWN_SERVER_ERROR)
    }
}

impl ServerErrorResponse for DescribeConfigsResponse {
    fn server_error(&self, _version: i16) -> Self {
        use describe_configs_response::DescribeConfigsResult;
        let results = self.results.iter().map(|r| {
            DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_code(UNKNOWN_SERVER_ERROR)
        });
        DescribeConfigsResponse::default().with_results(results.collect())
    }
}

impl ServerErrorResponse for DescribeClusterResponse {
    fn server_error(&self, _version: i16) -> Self {
        DescribeClusterResponse::default().with_error_code(UNKNOWN_SERVER_ERROR)
    }
}

impl ServerErrorResponse for OffsetForLeaderEpochResponse {
    fn server_error(&self, _version: i16) -> Self {
        use offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
        let topics = self.topics.iter().map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| EpochEndOffset::default().with_partition(p.partition).with_error_code(UNKNOWN_SERVER_ERROR));
            OffsetForLeaderTopicResult::default().with_topic(t.topic.clone()).with_partitions(partitions.collect())
        });
        OffsetForLeaderEpochResponse::default().with_topics(topics.collect())
    }
}

impl ServerErrorResponse for AlterPartitionReassignmentsResponse {
    fn server_error(&self, _version: i16) -> Self {
        AlterPartitionReassignmentsResponse::default().with_error_code(UNKNOWN_SERVER_ERROR)
    }
}

impl ServerErrorResponse for ListPartitionReassignmentsResponse {
    fn server_error(&self, _version: i16) -> Self {
        ListPartitionReassignmentsResponse::default().with_error_code(UNKNOWN_SERVER_ERROR)
    }
}

impl ServerErrorResponse for ElectLeadersResponse {
    fn server_error(&self, version: i16) -> Self {
        use elect_leaders_response::{PartitionResult, ReplicaElectionResult};
        let topics = self.replica_election_results.iter().map(|t| {
            let partitions = t.partition_result.iter().map(|p| PartitionResult::default().with_partition_id(p.partition_id).with_error_code(UNKNOWN_SERVER_ERROR));
            ReplicaElectionResult::default().with_topic(t.topic.clone()).with_partition_result(partitions.collect())
        });
        let resp = ElectLeadersResponse::default().with_replica_election_results(topics.collect());
        // The top-level error exists from v1.
        if version >= 1 {
            resp.with_error_code(UNKNOWN_SERVER_ERROR)
        } else {
            resp
        }
    }
}

impl ServerErrorResponse for DescribeLogDirsResponse {
    fn server_error(&self, version: i16) -> Self {
        use describe_log_dirs_response::DescribeLogDirsResult;
        let dirs = self.results.iter().map(|d| DescribeLogDirsResult::default().with_log_dir(d.log_dir.clone()).with_error_code(UNKNOWN_SERVER_ERROR));
        let resp = DescribeLogDirsResponse::default().with_results(dirs.collect());
        // The top-level error exists from v3.
        if version >= 3 {
            resp.with_error_code(UNKNOWN_SERVER_ERROR)
        } else {
            resp
        }
    }
}

impl ServerErrorResponse for AlterReplicaLogDirsResponse {
    fn server_error(&self, _version: i16) -> Self {
        use alter_replica_log_dirs_response::{AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult};
        let topics = self.results.iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                AlterReplicaLogDirPartitionResult::default().with_partition_index(p.partition_index).with_error_code(UNKNOWN_SERVER_ERROR)
            });
            AlterReplicaLogDirTopicResult::default().with_topic_name(t.topic_name.clone()).with_partitions(partitions.collect())
        });
        AlterReplicaLogDirsResponse::default().with_results(topics.collect())
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Decodable, StrBytes};

    use super::*;
    use crate::wire::versions::{is_supported, SUPPORTED};

    fn name(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.to_string()))
    }

    /// A response of type `R` with entries in every list the fallback keeps, encoded as its fallback.
    fn fallback_encodes<R: ServerErrorResponse + Default>(sample: R, version: i16) -> Result<(), String> {
        let mut buf = BytesMut::new();
        sample.server_error(version).encode(&mut buf, version).map_err(|e| e.to_string())
    }

    fn check(api: ApiKey, version: i16) -> Result<(), String> {
        use list_offsets_response::*;
        let topic = name("t");
        match api {
            ApiKey::Produce => fallback_encodes(
                ProduceResponse::default().with_responses(vec![produce_response::TopicProduceResponse::default()
                    .with_name(topic)
                    .with_partition_responses(vec![produce_response::PartitionProduceResponse::default().with_log_start_offset(5)])]),
                version,
            ),
            ApiKey::Fetch => fallback_encodes(
                FetchResponse::default().with_responses(vec![fetch_response::FetchableTopicResponse::default()
                    .with_topic(topic)
                    .with_partitions(vec![fetch_response::PartitionData::default().with_log_start_offset(3)])]),
                version,
            ),
            ApiKey::ListOffsets => fallback_encodes(
                ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
                    .with_name(topic)
                    .with_partitions(vec![ListOffsetsPartitionResponse::default().with_leader_epoch(4)])]),
                version,
            ),
            ApiKey::Metadata => fallback_encodes(
                MetadataResponse::default().with_topics(vec![metadata_response::MetadataResponseTopic::default().with_name(Some(topic))]),
                version,
            ),
            ApiKey::OffsetCommit => fallback_encodes(
                OffsetCommitResponse::default().with_topics(vec![offset_commit_response::OffsetCommitResponseTopic::default()
                    .with_name(topic)
                    .with_partitions(vec![Default::default()])]),
                version,
            ),
            ApiKey::OffsetFetch => fallback_encodes(
                OffsetFetchResponse::default()
                    .with_topics(if version < 8 {
                        vec![offset_fetch_response::OffsetFetchResponseTopic::default().with_name(topic).with_partitions(vec![Default::default()])]
                    } else {
                        vec![]
                    })
                    .with_groups(if version >= 8 { vec![Default::default()] } else { vec![] }),
                version,
            ),
            ApiKey::FindCoordinator => fallback_encodes(
                FindCoordinatorResponse::default().with_coordinators(if version >= 4 { vec![Default::default()] } else { vec![] }),
                version,
            ),
            ApiKey::JoinGroup => fallback_encodes(JoinGroupResponse::default(), version),
            ApiKey::Heartbeat => fallback_encodes(HeartbeatResponse::default(), version),
            ApiKey::LeaveGroup => fallback_encodes(LeaveGroupResponse::default(), version),
            ApiKey::SyncGroup => fallback_encodes(SyncGroupResponse::default(), version),
            ApiKey::DescribeGroups => fallback_encodes(DescribeGroupsResponse::default().with_groups(vec![Default::default()]), version),
            ApiKey::ListGroups => fallback_encodes(ListGroupsResponse::default(), version),
            ApiKey::DeleteGroups => fallback_encodes(DeleteGroupsResponse::default().with_results(vec![Default::default()]), version),
            ApiKey::ApiVersions => fallback_encodes(ApiVersionsResponse::default().with_api_keys(vec![Default::default()]), version),
            ApiKey::CreateTopics => fallback_encodes(CreateTopicsResponse::default().with_topics(vec![Default::default()]), version),
            ApiKey::DeleteTopics => fallback_encodes(DeleteTopicsResponse::default().with_responses(vec![Default::default()]), version),
            ApiKey::CreatePartitions => fallback_encodes(CreatePartitionsResponse::default().with_results(vec![Default::default()]), version),
            ApiKey::InitProducerId => fallback_encodes(InitProducerIdResponse::default(), version),
            ApiKey::DescribeConfigs => fallback_encodes(DescribeConfigsResponse::default().with_results(vec![Default::default()]), version),
            ApiKey::DescribeCluster => fallback_encodes(DescribeClusterResponse::default(), version),
            ApiKey::OffsetForLeaderEpoch => fallback_encodes(
                OffsetForLeaderEpochResponse::default().with_topics(vec![offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default()
                    .with_topic(topic)
                    .with_partitions(vec![Default::default()])]),
                version,
            ),
            ApiKey::AlterPartitionReassignments => fallback_encodes(
                AlterPartitionReassignmentsResponse::default().with_responses(vec![Default::default()]).with_error_message(Some(StrBytes::from_static_str("m"))),
                version,
            ),
            ApiKey::ListPartitionReassignments => {
                fallback_encodes(ListPartitionReassignmentsResponse::default().with_topics(vec![Default::default()]), version)
            }
            ApiKey::ElectLeaders => fallback_encodes(
                ElectLeadersResponse::default().with_replica_election_results(vec![elect_leaders_response::ReplicaElectionResult::default()
                    .with_topic(topic)
                    .with_partition_result(vec![Default::default()])]),
                version,
            ),
            ApiKey::DescribeLogDirs => fallback_encodes(
                DescribeLogDirsResponse::default().with_results(vec![describe_log_dirs_response::DescribeLogDirsResult::default().with_total_bytes(7)]),
                version,
            ),
            ApiKey::AlterReplicaLogDirs => fallback_encodes(
                AlterReplicaLogDirsResponse::default().with_results(vec![alter_replica_log_dirs_response::AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(topic)
                    .with_partitions(vec![Default::default()])]),
                version,
            ),
            other => Err(format!("no fallback sample for {other:?}")),
        }
    }

    /// Every served (API, version) has a fallback that encodes (Produce v0–2 are refused before any
    /// handler runs).
    #[test]
    fn every_served_version_has_an_encodable_fallback() {
        let failures: Vec<String> = SUPPORTED
            .iter()
            .flat_map(|(api, min, max)| (*min..=*max).map(move |v| (*api, v)))
            .filter(|(api, v)| is_supported(*api, *v))
            .filter_map(|(api, v)| check(api, v).err().map(|e| format!("{api:?} v{v}: {e}")))
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }

    /// The case that motivated the fallback: a leader epoch set on a ListOffsets v3 partition.
    #[test]
    fn list_offsets_v3_with_a_leader_epoch_falls_back_to_a_per_partition_error() {
        use list_offsets_response::*;
        let resp = ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
            .with_name(name("t"))
            .with_partitions(vec![ListOffsetsPartitionResponse::default().with_partition_index(1).with_offset(9).with_leader_epoch(2)])]);
        let mut buf = BytesMut::new();
        assert!(resp.encode(&mut buf, 3).is_err(), "v3 has no leader epoch");
        let mut buf = BytesMut::new();
        resp.server_error(3).encode(&mut buf, 3).expect("fallback encodes");
        let back = ListOffsetsResponse::decode(&mut buf.freeze(), 3).expect("fallback decodes");
        let p = &back.topics[0].partitions[0];
        assert_eq!((back.topics[0].name.as_str(), p.partition_index, p.error_code, p.offset), ("t", 1, -1, -1));
    }
}
