//! JoinGroup: entering a group, or rejoining it for a rebalance.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use tracing::debug;

use super::{vote, Delivery, Group, GroupState, JoinResult, Member, Reply, SyncResult};

/// A JoinGroup request, validated for group id and session timeout by the caller.
#[derive(Debug, Clone)]
pub struct JoinParams {
    /// Empty for a member that has no id yet.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED with its id (KIP-394),
    /// so a client that times out and retries cannot leave orphan members behind.
    pub require_known_member_id: bool,
}

impl Group {
    /// Handles a JoinGroup. `Wait` means the answer arrives as a delivery when the join phase ends.
    pub fn join(&mut self, params: JoinParams, now_ms: u64) -> Reply<JoinResult> {
        if self.state == GroupState::Dead {
            return Reply::Now(JoinResult::error(ResponseError::CoordinatorNotAvailable, &params.member_id));
        }
        if !self.supports_protocols(&params.protocol_type, &params.protocols, &params.member_id) {
            return Reply::Now(JoinResult::error(ResponseError::InconsistentGroupProtocol, &params.member_id));
        }
        if params.member_id.is_empty() {
            return self.join_unknown(params, now_ms);
        }
        if self.pending_members.remove(&params.member_id).is_some() {
            let member_id = params.member_id.clone();
            self.add_member(new_member(member_id.clone(), params, now_ms), now_ms);
            return Reply::Wait { member_id };
        }
        if let Err(error) = self.resolve_member(&params.member_id, params.group_instance_id.as_deref()) {
            return Reply::Now(JoinResult::error(error, &params.member_id));
        }
        let member_id = params.member_id.clone();
        self.join_existing(&member_id, params, now_ms)
    }

    /// A join without a member id: a new member, or a static member coming back.
    fn join_unknown(&mut self, params: JoinParams, now_ms: u64) -> Reply<JoinResult> {
        if let Some(instance) = &params.group_instance_id {
            if let Some(existing) = self.static_members.get(instance).cloned() {
                return self.replace_static_member(existing, params, now_ms);
            }
        }
        if self.size() >= self.limits.members_max {
            return Reply::Now(JoinResult::error(ResponseError::GroupMaxSizeReached, ""));
        }
        let member_id = format!("{}-{}", params.client_id, Uuid::new_v4());
        if params.group_instance_id.is_none() && params.require_known_member_id {
            let expires_ms = now_ms + params.session_timeout_ms;
            self.pending_members.insert(member_id.clone(), expires_ms);
            return Reply::Now(JoinResult::error(ResponseError::MemberIdRequired, &member_id));
        }
        self.add_member(new_member(member_id.clone(), params, now_ms), now_ms);
        Reply::Wait { member_id }
    }

    /// A known static member joining without a member id: a restart, or a second process using the
    /// same `group.instance.id`. As in Kafka (KIP-345) it gets a new member id and takes the old one's
    /// place, assignment included; the old id is fenced (its parked requests and every later call
    /// get FENCED_INSTANCE_ID). In a Stable group whose elected protocol does not change, no
    /// rebalance happens: the answer names the current generation and the previous leader id, so a
    /// replaced leader does not compute a new assignment, and the member's SyncGroup returns its old
    /// assignment.
    fn replace_static_member(&mut self, old_id: String, params: JoinParams, now_ms: u64) -> Reply<JoinResult> {
        let Some(index) = self.members.get_index_of(&old_id) else {
            return Reply::Now(JoinResult::error(ResponseError::UnknownMemberId, ""));
        };
        let new_id = format!("{}-{}", params.client_id, Uuid::new_v4());
        let previous_leader = self.leader_id.clone().unwrap_or_default();
        let Some((_, mut member)) = self.members.shift_remove_index(index) else {
            return Reply::Now(JoinResult::error(ResponseError::UnknownMemberId, ""));
        };
        if member.awaiting_join {
            self.outbox.push(Delivery::Join { member_id: old_id.clone(), result: JoinResult::error(ResponseError::FencedInstanceId, &old_id) });
        }
        if member.awaiting_sync {
            self.outbox.push(Delivery::Sync { member_id: old_id.clone(), result: SyncResult::error(ResponseError::FencedInstanceId) });
        }
        if self.leader_id.as_deref() == Some(old_id.as_str()) {
            self.leader_id = Some(new_id.clone());
        }
        if let Some(instance) = &params.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        member.member_id = new_id.clone();
        member.rejoined(params, false, now_ms);
        member.awaiting_sync = false;
        // Same place in the join order as the member it replaces.
        self.members.shift_insert(index, new_id.clone(), member);
        debug!(group = %self.id, old = %old_id, new = %new_id, "static member replaced");
        match self.state {
            GroupState::Stable if vote::select_protocol(self.members.values()) == self.protocol_name => {
                self.membership_changed();
                return Reply::Now(JoinResult {
                    error: None,
                    generation_id: self.generation_id,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    leader: previous_leader,
                    member_id: new_id,
                    members: Vec::new(),
                });
            }
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now_ms),
            GroupState::PreparingRebalance | GroupState::Empty | GroupState::Dead => {}
        }
        if let Some(member) = self.members.get_mut(&new_id) {
            member.awaiting_join = true;
        }
        self.maybe_complete_join(now_ms);
        Reply::Wait { member_id: new_id }
    }

    /// A rejoin of a known member.
    fn join_existing(&mut self, member_id: &str, params: JoinParams, now_ms: u64) -> Reply<JoinResult> {
        let Some(member) = self.members.get(member_id) else {
            return Reply::Now(JoinResult::error(ResponseError::UnknownMemberId, member_id));
        };
        let unchanged = member.same_protocols(&params.protocols);
        let is_leader = self.leader_id.as_deref() == Some(member_id);
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                return Reply::Now(JoinResult::error(ResponseError::UnknownMemberId, member_id));
            }
            GroupState::CompletingRebalance if unchanged => {
                // The member lost our join response: send it again.
                self.touch(member_id, now_ms);
                return Reply::Now(self.current_join_result(member_id));
            }
            GroupState::Stable if unchanged && !is_leader => {
                // Nothing changed for a follower: no need to disturb the group.
                self.touch(member_id, now_ms);
                return Reply::Now(self.current_join_result(member_id));
            }
            GroupState::PreparingRebalance => {}
            GroupState::CompletingRebalance | GroupState::Stable => self.prepare_rebalance(now_ms),
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.rejoined(params, true, now_ms);
        }
        self.maybe_complete_join(now_ms);
        Reply::Wait { member_id: member_id.to_string() }
    }
}

impl Member {
    /// Takes what a JoinGroup of this member says about it now (timeouts, protocols, client).
    fn rejoined(&mut self, params: JoinParams, awaiting_join: bool, now_ms: u64) {
        self.session_timeout_ms = params.session_timeout_ms;
        self.rebalance_timeout_ms = params.rebalance_timeout_ms;
        self.protocols = params.protocols;
        self.client_id = params.client_id;
        self.client_host = params.client_host;
        self.awaiting_join = awaiting_join;
        self.last_seen_ms = now_ms;
    }
}

fn new_member(member_id: String, params: JoinParams, now_ms: u64) -> Member {
    Member {
        member_id,
        group_instance_id: params.group_instance_id,
        client_id: params.client_id,
        client_host: params.client_host,
        session_timeout_ms: params.session_timeout_ms,
        rebalance_timeout_ms: params.rebalance_timeout_ms,
        protocol_type: params.protocol_type,
        protocols: params.protocols,
        assignment: Bytes::new(),
        awaiting_join: true,
        awaiting_sync: false,
        last_seen_ms: now_ms,
    }
}
