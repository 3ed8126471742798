//! SyncGroup v0–5.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::{code, owned, wire, Pending};
use crate::coordinator::GroupCoordinator;
use crate::group::{Reply, SyncParams, SyncResult};

/// SyncGroup v5 carries (and returns) the protocol type and name.
const PROTOCOL_FIELDS_SINCE_VERSION: i16 = 5;

impl GroupCoordinator {
    pub async fn sync_group(&self, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
        self.ensure_ticker();
        let group_id = owned(&req.group_id);
        if group_id.is_empty() {
            return response(SyncResult::error(ResponseError::InvalidGroupId), version);
        }
        if let Some(error) = self.not_serving(&group_id).await {
            return response(SyncResult::error(error), version);
        }
        let with_protocol = version >= PROTOCOL_FIELDS_SINCE_VERSION;
        let params = SyncParams {
            member_id: owned(&req.member_id),
            group_instance_id: req.group_instance_id.as_ref().map(owned),
            generation_id: req.generation_id,
            protocol_type: if with_protocol { req.protocol_type.as_ref().map(owned) } else { None },
            protocol_name: if with_protocol { req.protocol_name.as_ref().map(owned) } else { None },
            assignments: req.assignments.iter().map(|a| (owned(&a.member_id), a.assignment.clone())).collect(),
        };
        let now_ms = self.now_ms();
        let pending = {
            let mut registry = self.registry.lock();
            let reply = match registry.groups.get_mut(&group_id) {
                Some(group) => group.sync(params, now_ms),
                None => Reply::Now(SyncResult::error(ResponseError::UnknownMemberId)),
            };
            let pending = match reply {
                Reply::Now(result) => Pending::Now(result),
                Reply::Wait { member_id } => Pending::Wait(registry.wait_sync(&group_id, member_id)),
            };
            self.after_change(&mut registry, &group_id);
            pending
        };
        let result = match pending {
            Pending::Now(result) => result,
            Pending::Wait(rx) => rx.await.unwrap_or_else(|_| SyncResult::error(ResponseError::UnknownMemberId)),
        };
        response(result, version)
    }
}

fn response(result: SyncResult, version: i16) -> SyncGroupResponse {
    let mut resp = SyncGroupResponse::default();
    resp.error_code = code(result.error);
    if version >= PROTOCOL_FIELDS_SINCE_VERSION {
        resp.protocol_type = result.protocol_type.map(wire);
        resp.protocol_name = result.protocol_name.map(wire);
    }
    resp.assignment = result.assignment;
    resp
}
