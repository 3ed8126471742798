//! The classic group membership protocol as a pure state machine (sans-IO).
//!
//! Calls carry the current time (`now_ms`, coordinator milliseconds) and return either an answer
//! now or [`Reply::Wait`]; answers that become ready later (join and sync responses of other
//! members) are queued as [`Delivery`] values the async shell drains with
//! [`Group::take_deliveries`]. Nothing here sleeps, spawns or does I/O, so every rule is unit-tested
//! with plain time values.
//!
//! Parts: [`member`] (one member), [`vote`] (protocol election), `join` / `sync` / `leave`
//! (one request kind each, as `impl Group` blocks), and the transitions shared by them below.

mod join;
mod leave;
pub mod member;
mod stored;
mod sync;
pub mod vote;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::indexmap::IndexMap;
use tracing::debug;

pub use join::JoinParams;
pub use member::Member;
pub use stored::MembershipRecord;
pub use sync::SyncParams;

/// Kafka's group states (the names are what DescribeGroups and ListGroups report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; the group may still own committed offsets.
    Empty,
    /// Waiting for members to (re)join before a new generation.
    PreparingRebalance,
    /// New generation formed; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted; kept only transiently while a deletion is carried out.
    Dead,
}

impl GroupState {
    /// The state's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// One entry of the member list the leader receives in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The member's metadata for the elected protocol.
    pub metadata: Bytes,
}

/// Everything a JoinGroup response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    pub error: Option<ResponseError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Non-empty only for the leader.
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    /// A failed join; `member_id` is echoed (MEMBER_ID_REQUIRED uses it to hand out the new id).
    pub fn error(error: ResponseError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// Everything a SyncGroup response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: ResponseError) -> Self {
        Self { error: Some(error), protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// An answer available now, or "wait: the answer comes as a [`Delivery`] for this member".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<T> {
    Now(T),
    Wait { member_id: String },
}

/// A response that became ready for a member whose request is waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Join { member_id: String, result: JoinResult },
    Sync { member_id: String, result: SyncResult },
}

/// Per-group settings taken from the coordinator config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub members_max: usize,
    pub initial_rebalance_delay_ms: u64,
}

/// One consumer group's membership.
#[derive(Debug)]
pub struct Group {
    id: String,
    state: GroupState,
    /// Bumped each time a join phase completes; fences requests from older generations.
    generation_id: i32,
    /// Set by the first member to join; later members must match it.
    protocol_type: Option<String>,
    /// The elected protocol of the current generation.
    protocol_name: Option<String>,
    leader_id: Option<String>,
    /// In join order: the first member becomes leader when a leader is needed.
    members: IndexMap<String, Member>,
    /// group.instance.id → member id, for static members.
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the time they lapse if never used.
    pending_members: HashMap<String, u64>,
    /// End of the current phase: join deadline (PreparingRebalance) or sync deadline
    /// (CompletingRebalance).
    phase_deadline_ms: Option<u64>,
    /// While the first rebalance of an empty group is delayed: the latest the delay may extend to.
    initial_delay_cap_ms: Option<u64>,
    limits: Limits,
    outbox: Vec<Delivery>,
    /// The membership changed in a way the offsets log must record ([`Group::take_membership_record`]).
    membership_dirty: bool,
}

impl Group {
    pub fn new(id: impl Into<String>, limits: Limits) -> Self {
        Self {
            id: id.into(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: IndexMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            phase_deadline_ms: None,
            initial_delay_cap_ms: None,
            limits,
            outbox: Vec::new(),
            membership_dirty: false,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn state(&self) -> GroupState {
        self.state
    }
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }
    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }
    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.get(member_id)
    }
    /// No members and no half-joined members: the group may be deleted.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    /// Responses that became ready since the last call.
    pub fn take_deliveries(&mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.outbox)
    }

    /// Marks the group deleted (the caller checked it is empty).
    pub fn mark_dead(&mut self) {
        self.state = GroupState::Dead;
    }

    /// Time passes: expire sessions and half-joined ids, end phases whose deadline passed.
    pub fn tick(&mut self, now_ms: u64) {
        self.pending_members.retain(|_, expires_ms| *expires_ms > now_ms);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_expired(now_ms))
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in expired {
            debug!(group = %self.id, member = %member_id, "session expired");
            self.remove_member(&member_id, now_ms);
        }
        let deadline_passed = self.phase_deadline_ms.is_some_and(|d| now_ms >= d);
        match self.state {
            GroupState::PreparingRebalance => self.maybe_complete_join(now_ms),
            GroupState::CompletingRebalance if deadline_passed => {
                // The leader (or someone) never sent SyncGroup: drop whoever did not, so the
                // group does not hang in CompletingRebalance forever.
                let lagging: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| !m.awaiting_sync)
                    .map(|m| m.member_id.clone())
                    .collect();
                for member_id in lagging {
                    debug!(group = %self.id, member = %member_id, "no SyncGroup within the rebalance timeout");
                    self.remove_member(&member_id, now_ms);
                }
            }
            _ => {}
        }
    }

    /// The member proved it is alive.
    fn touch(&mut self, member_id: &str, now_ms: u64) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.last_seen_ms = now_ms;
        }
    }

    /// Members and half-joined members counted against `members_max`.
    fn size(&self) -> usize {
        self.members.len() + self.pending_members.len()
    }

    fn rebalance_timeout_ms(&self) -> u64 {
        self.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0)
    }

    /// Whether a member with these protocols can be in this group alongside the others
    /// (`exclude` is the joining member itself when it is already in).
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)], exclude: &str) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        let mut others = self.members.values().filter(|m| m.member_id != exclude).peekable();
        if others.peek().is_none() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members.values().filter(|m| m.member_id != exclude).all(|m| m.supports(name))
            })
    }

    /// The JoinGroup answer for `member_id` in the current generation.
    fn current_join_result(&self, member_id: &str) -> JoinResult {
        let leader = self.leader_id.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    /// Adds a new member (awaiting its join response) and moves the group toward a rebalance.
    fn add_member(&mut self, member: Member, now_ms: u64) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members.insert(instance.clone(), member.member_id.clone());
        }
        self.members.insert(member.member_id.clone(), member);
        match self.state {
            GroupState::Empty => {
                // Kafka's InitialDelayedJoin: give a starting fleet time to arrive.
                let rebalance_ms = self.rebalance_timeout_ms();
                let delay_ms = self.limits.initial_rebalance_delay_ms.min(rebalance_ms);
                self.state = GroupState::PreparingRebalance;
                self.initial_delay_cap_ms = Some(now_ms + rebalance_ms);
                self.phase_deadline_ms = Some(now_ms + delay_ms);
            }
            GroupState::PreparingRebalance => {
                if let Some(cap_ms) = self.initial_delay_cap_ms {
                    let extended_ms = now_ms + self.limits.initial_rebalance_delay_ms;
                    self.phase_deadline_ms = Some(extended_ms.min(cap_ms));
                }
            }
            GroupState::CompletingRebalance | GroupState::Stable => self.prepare_rebalance(now_ms),
            GroupState::Dead => {}
        }
        self.maybe_complete_join(now_ms);
    }

    /// Starts a join phase: members must rejoin within the rebalance timeout.
    fn prepare_rebalance(&mut self, now_ms: u64) {
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if member.awaiting_sync {
                    member.awaiting_sync = false;
                    member.last_seen_ms = now_ms;
                    self.outbox.push(Delivery::Sync {
                        member_id: member.member_id.clone(),
                        result: SyncResult::error(ResponseError::RebalanceInProgress),
                    });
                }
            }
        }
        debug!(group = %self.id, generation = self.generation_id, "preparing rebalance");
        self.state = GroupState::PreparingRebalance;
        self.initial_delay_cap_ms = None;
        self.phase_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
    }

    /// Ends the join phase when everyone rejoined or the deadline passed (during the initial
    /// delay only the deadline counts).
    fn maybe_complete_join(&mut self, now_ms: u64) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let deadline_passed = self.phase_deadline_ms.is_none_or(|d| now_ms >= d);
        let all_joined =
            self.members.values().all(|m| m.awaiting_join) && self.pending_members.is_empty();
        let done = if self.initial_delay_cap_ms.is_some() { deadline_passed } else { all_joined || deadline_passed };
        if done {
            self.complete_join(now_ms);
        }
    }

    /// Forms the next generation from the members that rejoined.
    fn complete_join(&mut self, now_ms: u64) {
        // Dynamic members that did not rejoin are gone; static ones keep their place until their
        // session expires (Kafka keeps them so a restarting static member causes no rebalance).
        let absent: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in &absent {
            self.forget_member(member_id);
        }
        self.initial_delay_cap_ms = None;
        self.generation_id += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader_id = None;
            self.phase_deadline_ms = None;
            self.membership_changed();
            debug!(group = %self.id, generation = self.generation_id, "group is empty");
            return;
        }
        self.protocol_name = vote::select_protocol(self.members.values());
        let leader_rejoined = self
            .leader_id
            .as_ref()
            .and_then(|id| self.members.get(id))
            .is_some_and(|m| m.awaiting_join);
        if !leader_rejoined {
            self.leader_id = self
                .members
                .values()
                .find(|m| m.awaiting_join)
                .or_else(|| self.members.values().next())
                .map(|m| m.member_id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        self.phase_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
        debug!(group = %self.id, generation = self.generation_id, protocol = ?self.protocol_name,
               members = self.members.len(), "join phase complete");
        let joined: Vec<String> =
            self.members.values().filter(|m| m.awaiting_join).map(|m| m.member_id.clone()).collect();
        for member_id in joined {
            let result = self.current_join_result(&member_id);
            if let Some(member) = self.members.get_mut(&member_id) {
                member.awaiting_join = false;
                member.last_seen_ms = now_ms;
            }
            self.outbox.push(Delivery::Join { member_id, result });
        }
    }

    /// Drops a member from the tables and answers its waiting requests; no state transition.
    fn forget_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.shift_remove(member_id)?;
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if member.awaiting_join {
            self.outbox.push(Delivery::Join {
                member_id: member_id.to_string(),
                result: JoinResult::error(ResponseError::UnknownMemberId, member_id),
            });
        }
        if member.awaiting_sync {
            self.outbox.push(Delivery::Sync {
                member_id: member_id.to_string(),
                result: SyncResult::error(ResponseError::UnknownMemberId),
            });
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        Some(member)
    }

    /// Removes a member (left or expired) and rebalances the rest.
    fn remove_member(&mut self, member_id: &str, now_ms: u64) {
        if self.forget_member(member_id).is_none() {
            return;
        }
        if matches!(self.state, GroupState::Stable | GroupState::CompletingRebalance) {
            self.prepare_rebalance(now_ms);
        }
        // The others may all have rejoined already; a rebalance with nobody left completes at
        // once, to Empty.
        self.maybe_complete_join(now_ms);
    }

    /// Finds the member a request speaks for, checking static membership fencing.
    fn resolve_member(&self, member_id: &str, group_instance_id: Option<&str>) -> Result<&Member, ResponseError> {
        if let Some(instance) = group_instance_id {
            if let Some(known) = self.static_members.get(instance) {
                if known != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
            }
        }
        self.members.get(member_id).ok_or(ResponseError::UnknownMemberId)
    }

    /// Validates an OffsetCommit's generation and member against the group (Kafka's rules);
    /// a valid commit also counts as a sign of life.
    pub fn validate_commit(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now_ms: u64,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            // A "simple" commit from a client managing its own partitions.
            return Ok(());
        }
        self.resolve_member(member_id, group_instance_id)?;
        if generation_id != self.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        if self.state == GroupState::CompletingRebalance {
            // The member has its new generation but not yet its assignment.
            return Err(ResponseError::RebalanceInProgress);
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.last_seen_ms = now_ms;
        }
        Ok(())
    }
}
