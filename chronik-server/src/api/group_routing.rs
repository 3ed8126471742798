//! Which broker coordinates consumer groups, and the NOT_COORDINATOR answers of a broker that does not.
//!
//! A single node coordinates every group. In a cluster, every group is coordinated by the metadata
//! Raft leader (the controller) until committed offsets live in a replicated internal topic; a
//! controller change moves the coordinator, and the new one serves the offsets it has stored itself.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic};
use kafka_protocol::messages::*;

use crate::broker::Broker;

/// The broker id coordinating groups now, if any.
pub fn coordinator_id(broker: &Broker) -> Option<i32> {
    if !broker.config.is_cluster() {
        return Some(broker.node_id);
    }
    broker.meta.status().leader_id.map(|id| id as i32)
}

pub fn is_coordinator(broker: &Broker) -> bool {
    coordinator_id(broker) == Some(broker.node_id)
}

const NOT_COORDINATOR: i16 = ResponseError::NotCoordinator.code();

pub fn join_group() -> JoinGroupResponse {
    JoinGroupResponse::default().with_error_code(NOT_COORDINATOR).with_generation_id(-1)
}
pub fn sync_group() -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(NOT_COORDINATOR)
}
pub fn heartbeat() -> HeartbeatResponse {
    HeartbeatResponse::default().with_error_code(NOT_COORDINATOR)
}
pub fn leave_group() -> LeaveGroupResponse {
    LeaveGroupResponse::default().with_error_code(NOT_COORDINATOR)
}
pub fn offset_commit(req: &OffsetCommitRequest) -> OffsetCommitResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(NOT_COORDINATOR))
                .collect();
            OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
pub fn offset_fetch(req: &OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone()).with_error_code(NOT_COORDINATOR))
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    if version >= 2 {
        return OffsetFetchResponse::default().with_error_code(NOT_COORDINATOR);
    }
    // v1 has no top-level error: every asked partition carries it.
    let topics = req
        .topics
        .iter()
        .flatten()
        .map(|t| {
            let partitions = t
                .partition_indexes
                .iter()
                .map(|p| OffsetFetchResponsePartition::default().with_partition_index(*p).with_committed_offset(-1).with_error_code(NOT_COORDINATOR))
                .collect();
            OffsetFetchResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
pub fn describe_groups(req: &DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .iter()
        .map(|g| DescribedGroup::default().with_group_id(g.clone()).with_error_code(NOT_COORDINATOR))
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
pub fn delete_groups(req: &DeleteGroupsRequest) -> DeleteGroupsResponse {
    let results = req
        .groups_names
        .iter()
        .map(|g| DeletableGroupResult::default().with_group_id(g.clone()).with_error_code(NOT_COORDINATOR))
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
