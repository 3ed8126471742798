//! LeaveGroup: a member (or a static instance) leaves and the rest rebalance.

use kafka_protocol::error::ResponseError;

use super::Group;

impl Group {
    /// Removes one leaving member, named by member id and/or (v3+) group instance id.
    pub fn leave(&mut self, member_id: &str, group_instance_id: Option<&str>, now_ms: u64) -> Result<(), ResponseError> {
        let target = match group_instance_id {
            Some(instance) => {
                let known = self.static_members.get(instance).ok_or(ResponseError::UnknownMemberId)?;
                if !member_id.is_empty() && known != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                known.clone()
            }
            None => member_id.to_string(),
        };
        if self.pending_members.remove(&target).is_some() {
            return Ok(());
        }
        if !self.members.contains_key(&target) {
            return Err(ResponseError::UnknownMemberId);
        }
        tracing::debug!(group = %self.id, member = %target, "member left");
        self.remove_member(&target, now_ms);
        Ok(())
    }
}
