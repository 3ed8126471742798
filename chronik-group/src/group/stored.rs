//! A group's membership as the offsets log keeps it: what to store after a rebalance completes, and
//! how a new coordinator rebuilds the group from it so its members carry on (no rejoin).
//!
//! The decisions: a record is due when a generation gets its assignment (SyncGroup of the leader),
//! when a static member is replaced without a rebalance, and (a tombstone) when the group runs out
//! of members. A loaded group is Stable at the stored generation, each member with its stored
//! assignment and a fresh session (as Kafka does on load): members that come back just heartbeat;
//! members that do not expire by session timeout and the rest rebalance as usual.

use tracing::debug;

use super::{Group, GroupState, Limits, Member};
use crate::offsets::membership::{StoredGroup, StoredMember};

/// A change of membership to write to the offsets log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipRecord {
    /// The group's members, generation and assignments now.
    Store(StoredGroup),
    /// The group has no members any more (its committed offsets stay).
    Clear,
}

impl Group {
    /// The membership record due since the last call, if any (the shell appends it).
    pub fn take_membership_record(&mut self) -> Option<MembershipRecord> {
        if !std::mem::take(&mut self.membership_dirty) {
            return None;
        }
        Some(match self.state {
            GroupState::Stable => MembershipRecord::Store(self.stored(chronik_wal::now_ms())),
            _ if self.members.is_empty() => MembershipRecord::Clear,
            // A rebalance began before the shell took the record: the next completed one is stored.
            _ => return None,
        })
    }

    /// Marks the membership as changed in a way a new coordinator must know.
    pub(super) fn membership_changed(&mut self) {
        self.membership_dirty = true;
    }

    /// The group as stored: generation, elected protocol, leader, members with their assignments.
    pub fn stored(&self, state_timestamp_ms: i64) -> StoredGroup {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        StoredGroup {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader_id: self.leader_id.clone(),
            state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: i32::try_from(m.rebalance_timeout_ms).unwrap_or(i32::MAX),
                    session_timeout_ms: i32::try_from(m.session_timeout_ms).unwrap_or(i32::MAX),
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Rebuilds a group from its stored membership on a new coordinator at `now_ms`: Stable at the
    /// stored generation when it has members and an elected protocol, Empty (keeping the
    /// generation) otherwise. Every member's session starts now. Members beyond `members_max` are
    /// dropped (their next call gets UNKNOWN_MEMBER_ID and they rejoin).
    pub fn from_stored(id: impl Into<String>, stored: StoredGroup, limits: Limits, now_ms: u64) -> Self {
        let mut group = Group::new(id, limits);
        group.generation_id = stored.generation_id;
        let Some(protocol) = stored.protocol_name.filter(|_| !stored.members.is_empty()) else {
            debug!(group = %group.id, generation = group.generation_id, "loaded group has no members");
            return group;
        };
        let protocol_type = stored.protocol_type;
        for m in stored.members.into_iter().take(limits.members_max) {
            if let Some(instance) = &m.group_instance_id {
                group.static_members.insert(instance.clone(), m.member_id.clone());
            }
            let member = Member {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: u64::try_from(m.session_timeout_ms).unwrap_or(0),
                rebalance_timeout_ms: u64::try_from(m.rebalance_timeout_ms).unwrap_or(0),
                protocol_type: protocol_type.clone(),
                // Only the elected protocol's metadata is stored; a rejoin sends them all again.
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                awaiting_join: false,
                awaiting_sync: false,
                last_seen_ms: now_ms,
            };
            group.members.insert(m.member_id, member);
        }
        group.protocol_type = Some(protocol_type);
        group.protocol_name = Some(protocol);
        group.leader_id = stored.leader_id.filter(|l| group.members.contains_key(l));
        if group.leader_id.is_none() {
            group.leader_id = group.members.keys().next().cloned();
        }
        group.state = GroupState::Stable;
        debug!(group = %group.id, generation = group.generation_id, members = group.members.len(), "group loaded");
        group
    }
}
