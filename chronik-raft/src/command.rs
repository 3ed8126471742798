//! The commands replicated through the metadata log and the answers `apply` gives to them.
//!
//! Commands state the desired result rather than a delta where they can (a create names the topic id,
//! a register carries the full node), so that a command retried after a lost `ForwardToLeader` or a
//! leader change is answered again instead of being applied twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::BrokerNode;

/// A change to the cluster metadata. Applied by [`crate::MetadataState::apply`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum MetaCommand {
    /// Insert a broker or update its addresses; a registered broker is live (unfenced). A broker
    /// registers itself at every start with a fresh `incarnation` and waits until it has applied that
    /// record, so its metadata then holds everything committed before it (see `BrokerRecord`);
    /// `None` (the controller unfencing a broker) keeps the recorded incarnation.
    RegisterBroker {
        id: i32,
        node: BrokerNode,
        #[serde(default)]
        incarnation: Option<u64>,
    },
    /// Mark a broker fenced (its session expired). Unknown ids are refused.
    FenceBroker { id: i32 },
    /// Drop a broker that left the cluster (after its removal from the Raft membership) and remember
    /// its id as removed: a node that comes back with it is refused, never silently re-admitted.
    /// Removing a removed id again is answered `Ok`.
    RemoveBroker { id: i32 },
    /// Mark a broker as leaving (`draining`: it gets no new replicas or leaderships and the rebalancer
    /// moves what it holds elsewhere; the controller removes it from the membership once it holds
    /// nothing) or take the mark back. Unknown ids are refused.
    SetDraining { id: i32, draining: bool },
    /// Create a topic with one replica list per partition; a second create of the same name is
    /// answered with [`MetaResponse::TopicAlreadyExists`] and changes nothing.
    CreateTopic {
        name: String,
        topic_id: [u8; 16],
        replicas: Vec<Vec<i32>>,
        configs: BTreeMap<String, String>,
    },
    /// Remove a topic and all its partitions.
    DeleteTopic { name: String },
    /// Append partitions (one replica list each) to an existing topic.
    CreatePartitions { name: String, new_replicas: Vec<Vec<i32>> },
    /// Set a partition's leader (-1 for none) and ISR. Applied only while the partition is still at
    /// `expected_partition_epoch` (the epoch the change was computed from), so a decision made on an
    /// older view — a leader's ISR change racing a failover, a controller waking from a pause — is
    /// refused. A new leader must be in the current ISR (no unclean election). Any change bumps the
    /// partition epoch; a leader change also bumps the leader epoch.
    SetPartitionState {
        topic: String,
        partition: i32,
        leader: i32,
        isr: Vec<i32>,
        expected_partition_epoch: i32,
    },
    /// Record the cluster id; the first one written wins and later ones change nothing.
    InitClusterId { cluster_id: String },
    /// Hand a broker a block of producer ids no other block overlaps.
    AllocateProducerIds { broker: i32, count: i64 },
    /// Start moving a partition to `target` replicas (data first): the replica list becomes `target`
    /// followed by the replicas that will leave; the new ones fetch and join the ISR as followers do.
    /// Refused while another move of the partition runs, or on a stale partition epoch. `by_user`: asked
    /// for by a Kafka admin client (AlterPartitionReassignments), not planned by the rebalancer; the
    /// partition is then marked `user_placed` and the automatic rebalancer leaves its placement alone
    /// until the next membership change or explicit rebalance (see `controller/rebalance.rs`).
    StartReassignment {
        topic: String,
        partition: i32,
        target: Vec<i32>,
        expected_partition_epoch: i32,
        #[serde(default)]
        by_user: bool,
    },
    /// Finish a move once every target replica is in the ISR: the leaving replicas go, in the same
    /// step as the ISR shrinks to the target; leadership moves to the target's first in-sync replica
    /// if the leader leaves.
    CompleteReassignment { topic: String, partition: i32, expected_partition_epoch: i32 },
    /// Give up a move: the replicas that were being added go, the old list stays.
    CancelReassignment { topic: String, partition: i32, expected_partition_epoch: i32 },
    /// Preferred leader election asked for by a client (ElectLeaders): the first replica becomes leader
    /// if it is registered, not fenced and in the ISR at the moment the entry is applied. Decided by
    /// `apply` itself from the applied state (not from a view of the broker that received the request),
    /// so any broker may write it; it bumps the leader and partition epochs like any leader change, so
    /// ISR changes computed on the old epoch are refused. Answers [`MetaResponse::ElectionNotNeeded`]
    /// when the preferred replica leads already, [`MetaResponse::PreferredLeaderNotAvailable`] when it
    /// cannot lead now.
    ElectPreferredLeader { topic: String, partition: i32 },
    /// A controller decision (fencing, unfencing, failover, ISR or leader changes) made by the metadata
    /// leader of Raft term `term`. Applied only when its log entry belongs to that same term: a leader
    /// that was paused or cut off and still believes it leads cannot get a decision from its old view
    /// applied, neither through its own log (such entries never commit once a newer term exists) nor by
    /// a forward to the new leader (the entry would carry the new term).
    Decided { term: u64, decision: Box<MetaCommand> },
}

/// The outcome of applying one [`MetaCommand`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum MetaResponse {
    /// Applied.
    Ok,
    /// The topic was created with this id.
    TopicCreated { topic_id: [u8; 16] },
    /// A topic of that name exists; nothing was applied.
    TopicAlreadyExists,
    /// The named topic does not exist; nothing was applied.
    UnknownTopic,
    /// The partition part of the command is invalid (count not larger, bad replica list, partition
    /// out of range, leader not in ISR, ...); nothing was applied.
    InvalidPartitions(String),
    /// The cluster id recorded in the metadata (answer to `InitClusterId`: the first id written wins).
    ClusterId(String),
    /// A block of producer ids `[first, first + count)`.
    ProducerIdBlock { first: i64, count: i64 },
    /// The command is malformed in another way (bad topic name or id, negative broker id, unknown
    /// broker, bad producer id count); nothing was applied.
    InvalidRequest(String),
    /// A controller decision of term `decided_in` reached the log in term `entry_term`; nothing was
    /// applied.
    StaleTerm { decided_in: u64, entry_term: u64 },
    /// ElectPreferredLeader: the preferred replica leads already; nothing was applied.
    ElectionNotNeeded,
    /// ElectPreferredLeader: the preferred replica is fenced, unknown or not in the ISR; nothing was
    /// applied.
    PreferredLeaderNotAvailable(String),
}
