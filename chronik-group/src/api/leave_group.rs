//! LeaveGroup v0–4 (v3+ batches several members, possibly named by group instance id).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::{owned, wire};
use crate::coordinator::GroupCoordinator;

const BATCHED_SINCE_VERSION: i16 = 3;

impl GroupCoordinator {
    pub async fn leave_group(&self, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
        self.ensure_ticker();
        let mut resp = LeaveGroupResponse::default();
        let group_id = owned(&req.group_id);
        if group_id.is_empty() {
            resp.error_code = ResponseError::InvalidGroupId.code();
            return resp;
        }
        if let Some(error) = self.not_serving(&group_id).await {
            resp.error_code = error.code();
            return resp;
        }
        let leaving: Vec<(String, Option<String>)> = if version >= BATCHED_SINCE_VERSION {
            req.members.iter().map(|m| (owned(&m.member_id), m.group_instance_id.as_ref().map(owned))).collect()
        } else {
            vec![(owned(&req.member_id), None)]
        };
        let now_ms = self.now_ms();
        let results: Vec<Result<(), ResponseError>> = {
            let mut registry = self.registry.lock();
            let results = match registry.groups.get_mut(&group_id) {
                Some(group) => leaving
                    .iter()
                    .map(|(member_id, instance)| group.leave(member_id, instance.as_deref(), now_ms))
                    .collect(),
                None => leaving.iter().map(|_| Err(ResponseError::UnknownMemberId)).collect(),
            };
            self.after_change(&mut registry, &group_id);
            results
        };
        if version >= BATCHED_SINCE_VERSION {
            resp.members = leaving
                .into_iter()
                .zip(results)
                .map(|((member_id, instance), result)| {
                    let mut member = MemberResponse::default();
                    member.member_id = wire(member_id);
                    member.group_instance_id = instance.map(wire);
                    member.error_code = result.err().map_or(0, |e| e.code());
                    member
                })
                .collect();
        } else if let Some(Err(error)) = results.into_iter().next() {
            resp.error_code = error.code();
        }
        resp
    }
}
