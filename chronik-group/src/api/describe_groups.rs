//! DescribeGroups v0–5.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{owned, wire};
use crate::coordinator::GroupCoordinator;
use crate::group::GroupState;

const AUTHORIZED_OPERATIONS_SINCE_VERSION: i16 = 3;
const INSTANCE_ID_SINCE_VERSION: i16 = 4;
/// READ (3), DELETE (6) and DESCRIBE (8) as Kafka's AclOperation bit set: with no authorizer,
/// everything a group supports is allowed.
const GROUP_OPERATIONS_ALL: i32 = (1 << 3) | (1 << 6) | (1 << 8);

impl GroupCoordinator {
    pub async fn describe_groups(&self, req: DescribeGroupsRequest, version: i16) -> DescribeGroupsResponse {
        let mut resp = DescribeGroupsResponse::default();
        for id in &req.groups {
            resp.groups.push(self.describe_one(&owned(id), req.include_authorized_operations, version).await);
        }
        resp
    }

    async fn describe_one(&self, id: &str, include_operations: bool, version: i16) -> DescribedGroup {
        let mut out = DescribedGroup::default();
        out.group_id = kafka_protocol::messages::GroupId(wire(id));
        if version >= AUTHORIZED_OPERATIONS_SINCE_VERSION && include_operations {
            out.authorized_operations = GROUP_OPERATIONS_ALL;
        }
        if id.is_empty() {
            out.error_code = ResponseError::InvalidGroupId.code();
            out.group_state = wire(GroupState::Dead.name());
            return out;
        }
        if let Some(error) = self.not_serving(id).await {
            out.error_code = error.code();
            out.group_state = wire(GroupState::Dead.name());
            return out;
        }
        let registry = self.registry.lock();
        let Some(group) = registry.groups.get(id) else {
            // Kafka describes an unknown group as Dead, without error (before v6); one that only
            // has offsets is Empty.
            let state = if self.offsets.has_offsets(id) { GroupState::Empty } else { GroupState::Dead };
            out.group_state = wire(state.name());
            return out;
        };
        let stable = group.state() == GroupState::Stable;
        out.group_state = wire(group.state().name());
        out.protocol_type = wire(group.protocol_type().unwrap_or_default());
        // Like Kafka, the protocol and member metadata/assignments are shown only when Stable.
        let protocol = if stable { group.protocol_name().unwrap_or_default() } else { "" };
        out.protocol_data = wire(protocol);
        out.members = group
            .members()
            .map(|m| {
                let mut member = DescribedGroupMember::default();
                member.member_id = wire(m.member_id.clone());
                if version >= INSTANCE_ID_SINCE_VERSION {
                    member.group_instance_id = m.group_instance_id.clone().map(wire);
                }
                member.client_id = wire(m.client_id.clone());
                member.client_host = wire(m.client_host.clone());
                if stable {
                    member.member_metadata = m.metadata_for(protocol);
                    member.member_assignment = m.assignment.clone();
                }
                member
            })
            .collect();
        out
    }
}
