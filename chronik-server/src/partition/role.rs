//! What this broker is for one partition: leader (with what it knows of its followers, in
//! `ReplicaState`) or follower of a given leader at a given epoch. Set from the applied metadata by
//! `replication::roles` through `Partition::become_leader` / `become_follower` (`replica.rs`).

use super::replica_state::ReplicaState;
use crate::ids::{BrokerId, LeaderEpoch};

/// What this broker is for one partition.
#[derive(Debug, Clone)]
pub enum Role {
    Leader(ReplicaState),
    /// Fetching from `leader` (`-1`: no leader, nothing to fetch) at `leader_epoch`.
    Follower { leader: BrokerId, leader_epoch: LeaderEpoch },
}

impl Role {
    /// Where a partition stands after open, before the metadata says otherwise: the only ISR member,
    /// as a single node is.
    pub(super) fn initial(node_id: i32) -> Role {
        Role::Leader(ReplicaState::new(node_id, -1, 0, vec![node_id], vec![node_id], 0))
    }

    /// The epoch this replica leads at, if it leads.
    pub fn leader_epoch(&self) -> Option<i32> {
        match self {
            Role::Leader(s) => Some(s.leader_epoch),
            Role::Follower { .. } => None,
        }
    }

    /// The leader's state, if this replica leads.
    pub fn as_leader(&self) -> Option<&ReplicaState> {
        match self {
            Role::Leader(s) => Some(s),
            Role::Follower { .. } => None,
        }
    }
}
