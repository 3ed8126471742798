//! JoinGroup v0–7.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::{code, owned, wire, Pending};
use crate::coordinator::{ClientInfo, GroupCoordinator};
use crate::group::{Group, JoinParams, JoinResult, Reply};

/// JoinGroup v4+ gets MEMBER_ID_REQUIRED for a new dynamic member (KIP-394).
const MEMBER_ID_REQUIRED_SINCE_VERSION: i16 = 4;

impl GroupCoordinator {
    /// JoinGroup without client details (member ids become "-" + uuid); prefer
    /// [`GroupCoordinator::join_group_from`] where the request header's client id is at hand.
    pub async fn join_group(&self, req: JoinGroupRequest, version: i16) -> JoinGroupResponse {
        self.join_group_from(req, version, &ClientInfo::default()).await
    }

    /// JoinGroup; `client` is the request header's client id and the peer address.
    pub async fn join_group_from(&self, req: JoinGroupRequest, version: i16, client: &ClientInfo) -> JoinGroupResponse {
        self.ensure_ticker();
        let group_id = owned(&req.group_id);
        let member_id = owned(&req.member_id);
        if group_id.is_empty() {
            return response(JoinResult::error(ResponseError::InvalidGroupId, &member_id), version);
        }
        if let Some(error) = self.not_serving(&group_id).await {
            return response(JoinResult::error(error, &member_id), version);
        }
        let session_ms = req.session_timeout_ms;
        if session_ms < self.config.session_timeout_ms_min || session_ms > self.config.session_timeout_ms_max {
            return response(JoinResult::error(ResponseError::InvalidSessionTimeout, &member_id), version);
        }
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        let rebalance_ms = if version == 0 || req.rebalance_timeout_ms <= 0 { session_ms } else { req.rebalance_timeout_ms };
        let params = JoinParams {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id.as_ref().map(owned),
            client_id: client.client_id.clone(),
            client_host: client.client_host.clone(),
            session_timeout_ms: u64::from(session_ms.unsigned_abs()),
            rebalance_timeout_ms: u64::from(rebalance_ms.unsigned_abs()),
            protocol_type: owned(&req.protocol_type),
            protocols: req.protocols.iter().map(|p| (owned(&p.name), p.metadata.clone())).collect(),
            require_known_member_id: version >= MEMBER_ID_REQUIRED_SINCE_VERSION,
        };
        let now_ms = self.now_ms();
        let pending = {
            let mut registry = self.registry.lock();
            if !registry.groups.contains_key(&group_id) {
                if !self.make_room(&mut registry) {
                    return response(JoinResult::error(ResponseError::GroupMaxSizeReached, &member_id), version);
                }
                registry.groups.insert(group_id.clone(), Group::new(group_id.clone(), self.limits()));
            }
            let reply = match registry.groups.get_mut(&group_id) {
                Some(group) => group.join(params, now_ms),
                // Inserted just above under the same lock.
                None => Reply::Now(JoinResult::error(ResponseError::CoordinatorNotAvailable, &member_id)),
            };
            let pending = match reply {
                Reply::Now(result) => Pending::Now(result),
                Reply::Wait { member_id } => Pending::Wait(registry.wait_join(&group_id, member_id)),
            };
            self.after_change(&mut registry, &group_id);
            pending
        };
        let result = match pending {
            Pending::Now(result) => result,
            // Dropped: the member left, or sent a newer JoinGroup that took this one's place.
            Pending::Wait(rx) => rx.await.unwrap_or_else(|_| JoinResult::error(ResponseError::UnknownMemberId, &member_id)),
        };
        response(result, version)
    }
}

fn response(result: JoinResult, version: i16) -> JoinGroupResponse {
    let mut resp = JoinGroupResponse::default();
    resp.error_code = code(result.error);
    resp.generation_id = result.generation_id;
    if version >= 7 {
        resp.protocol_type = result.protocol_type.map(wire);
        resp.protocol_name = result.protocol_name.map(wire);
    } else {
        // Not nullable before v7.
        resp.protocol_name = Some(wire(result.protocol_name.unwrap_or_default()));
    }
    resp.leader = wire(result.leader);
    resp.member_id = wire(result.member_id);
    resp.members = result
        .members
        .into_iter()
        .map(|m| {
            let mut member = JoinGroupResponseMember::default();
            member.member_id = wire(m.member_id);
            if version >= 5 {
                member.group_instance_id = m.group_instance_id.map(wire);
            }
            member.metadata = m.metadata;
            member
        })
        .collect();
    resp
}
