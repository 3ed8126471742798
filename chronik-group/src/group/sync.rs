//! SyncGroup (the leader hands out assignments) and Heartbeat (liveness, rebalance notice).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::{Delivery, Group, GroupState, Reply, SyncResult};

/// A SyncGroup request.
#[derive(Debug, Clone)]
pub struct SyncParams {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    /// v5+: checked against the group when present.
    pub protocol_type: Option<String>,
    /// v5+: checked against the group when present.
    pub protocol_name: Option<String>,
    /// Sent by the leader only: member id → assignment.
    pub assignments: Vec<(String, Bytes)>,
}

impl Group {
    /// Handles a SyncGroup. Followers `Wait` until the leader's assignment arrives.
    pub fn sync(&mut self, params: SyncParams, now_ms: u64) -> Reply<SyncResult> {
        if self.state == GroupState::Dead {
            return Reply::Now(SyncResult::error(ResponseError::CoordinatorNotAvailable));
        }
        if let Err(error) = self.resolve_member(&params.member_id, params.group_instance_id.as_deref()) {
            return Reply::Now(SyncResult::error(error));
        }
        if params.generation_id != self.generation_id {
            return Reply::Now(SyncResult::error(ResponseError::IllegalGeneration));
        }
        let type_differs = params.protocol_type.is_some() && params.protocol_type != self.protocol_type;
        let name_differs = params.protocol_name.is_some() && params.protocol_name != self.protocol_name;
        if type_differs || name_differs {
            return Reply::Now(SyncResult::error(ResponseError::InconsistentGroupProtocol));
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => Reply::Now(SyncResult::error(ResponseError::UnknownMemberId)),
            GroupState::PreparingRebalance => Reply::Now(SyncResult::error(ResponseError::RebalanceInProgress)),
            GroupState::Stable => {
                self.touch(&params.member_id, now_ms);
                Reply::Now(self.sync_result(&params.member_id))
            }
            GroupState::CompletingRebalance => {
                if let Some(member) = self.members.get_mut(&params.member_id) {
                    member.awaiting_sync = true;
                    member.last_seen_ms = now_ms;
                }
                if self.leader_id.as_deref() == Some(params.member_id.as_str()) {
                    self.apply_assignments(params.assignments, now_ms);
                    Reply::Now(self.sync_result(&params.member_id))
                } else {
                    Reply::Wait { member_id: params.member_id }
                }
            }
        }
    }

    /// The leader's assignment is in: every member gets its part and the group is Stable.
    fn apply_assignments(&mut self, assignments: Vec<(String, Bytes)>, now_ms: u64) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
        }
        for (member_id, assignment) in assignments {
            // Assignments for ids that are not members (any more) are dropped, as Kafka does.
            if let Some(member) = self.members.get_mut(&member_id) {
                member.assignment = assignment;
            }
        }
        self.state = GroupState::Stable;
        self.phase_deadline_ms = None;
        self.membership_changed();
        let waiting: Vec<String> =
            self.members.values().filter(|m| m.awaiting_sync).map(|m| m.member_id.clone()).collect();
        for member_id in waiting {
            let result = self.sync_result(&member_id);
            if let Some(member) = self.members.get_mut(&member_id) {
                member.awaiting_sync = false;
                member.last_seen_ms = now_ms;
            }
            if self.leader_id.as_deref() != Some(member_id.as_str()) {
                self.outbox.push(Delivery::Sync { member_id, result });
            }
        }
    }

    fn sync_result(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default(),
        }
    }

    /// Handles a Heartbeat: refreshes the session and tells the member whether to rejoin.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now_ms: u64,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        self.resolve_member(member_id, group_instance_id)?;
        if generation_id != self.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        self.touch(member_id, now_ms);
        match self.state {
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            // A member may heartbeat between its join and sync responses (Kafka answers NONE).
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
        }
    }
}
