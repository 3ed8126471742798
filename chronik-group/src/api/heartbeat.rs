//! Heartbeat v0–4.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::owned;
use crate::coordinator::GroupCoordinator;

impl GroupCoordinator {
    pub async fn heartbeat(&self, req: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
        self.ensure_ticker();
        let group_id = owned(&req.group_id);
        let result = if group_id.is_empty() {
            Err(ResponseError::InvalidGroupId)
        } else if let Some(error) = self.not_serving(&group_id).await {
            Err(error)
        } else {
            let now_ms = self.now_ms();
            let mut registry = self.registry.lock();
            let result = match registry.groups.get_mut(&group_id) {
                Some(group) => group.heartbeat(
                    req.member_id.as_str(),
                    req.group_instance_id.as_ref().map(|s| s.as_str()),
                    req.generation_id,
                    now_ms,
                ),
                None => Err(ResponseError::UnknownMemberId),
            };
            self.after_change(&mut registry, &group_id);
            result
        };
        let mut resp = HeartbeatResponse::default();
        resp.error_code = result.err().map_or(0, |e| e.code());
        resp
    }
}
