//! The metadata state machine as plain data: brokers, topics with their partitions, and the producer
//! id counter, plus the deterministic [`MetadataState::apply`] that every node runs on the same
//! committed commands. No I/O and no openraft here, so the rules are tested with tables of cases.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::command::{MetaCommand, MetaResponse};
use crate::types::BrokerNode;

/// Longest legal topic name, as in Kafka.
pub const TOPIC_NAME_LEN_MAX: usize = 249;
/// Most partitions one topic may have; bounds the size of one command and of the state.
pub const PARTITIONS_PER_TOPIC_MAX: usize = 100_000;
/// Most replicas one partition may have.
pub const REPLICAS_PER_PARTITION_MAX: usize = 64;
/// Largest producer id block one command may allocate.
pub const PRODUCER_ID_BLOCK_MAX: i64 = 1_000_000;
/// "No leader" in a [`PartitionRecord`], as on the Kafka wire.
pub const NO_LEADER: i32 = -1;

/// A broker known to the cluster.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BrokerRecord {
    pub id: i32,
    pub node: BrokerNode,
    /// Fenced brokers lead nothing and are not offered to clients; registering again unfences.
    pub fenced: bool,
    /// Random id of the broker process that registered last. A starting broker waits until its own
    /// incarnation is applied locally before it takes any partition role: Raft applies in log order,
    /// so by then it has also applied the fencing and leader changes made while it was down, and it
    /// never acts as a leader its pre-crash metadata remembers.
    #[serde(default)]
    pub incarnation: Option<u64>,
    /// Leaving the cluster: placed on by nothing new; its replicas move away, then it is removed.
    /// Kept across registrations (a draining broker that restarts is still leaving).
    #[serde(default)]
    pub draining: bool,
}

/// One partition's replica assignment and leadership.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PartitionRecord {
    pub replicas: Vec<i32>,
    /// Current leader, [`NO_LEADER`] when none.
    pub leader: i32,
    /// Bumped on every leader change; followers truncate by it (KIP-101).
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    /// Bumped on every change of leader, ISR or replicas (Kafka's partition epoch). Every change is
    /// computed from one epoch and refused when the partition has moved on since.
    #[serde(default)]
    pub partition_epoch: i32,
    /// A move in progress (see `reassign.rs`): replicas being added (they fetch and must join the
    /// ISR) and replicas that leave once it completes. Both empty when no move runs.
    #[serde(default)]
    pub adding_replicas: Vec<i32>,
    #[serde(default)]
    pub removing_replicas: Vec<i32>,
    /// The replica list the move ends with, in its order (first: the preferred leader).
    #[serde(default)]
    pub target_replicas: Vec<i32>,
    /// The current placement was asked for by a Kafka admin client (AlterPartitionReassignments); the
    /// automatic rebalancer does not move this partition until a membership change or an explicit
    /// rebalance (see `controller/rebalance.rs` in chronik-server). A move the rebalancer starts, and a
    /// cancel, clear it.
    #[serde(default)]
    pub user_placed: bool,
}

/// A topic and its partitions (index = partition id).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TopicRecord {
    pub name: String,
    pub topic_id: [u8; 16],
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<PartitionRecord>,
}

/// The whole replicated cluster metadata.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MetadataState {
    pub brokers: BTreeMap<i32, BrokerRecord>,
    pub topics: BTreeMap<String, TopicRecord>,
    /// First producer id of the next block handed out.
    pub next_producer_id: i64,
    /// The cluster's id, set once by the first broker that starts (Kafka's cluster id).
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// Ids of brokers removed from the cluster; never registered or added again.
    #[serde(default)]
    pub removed_brokers: BTreeSet<i32>,
}

impl MetadataState {
    /// Apply one committed command.
    ///
    /// Deterministic (depends only on `self` and `cmd`), validates inside itself, and never panics:
    /// an invalid command changes nothing and is answered with why, so a bad command cannot stop the
    /// metadata log from being applied.
    pub fn apply(&mut self, cmd: &MetaCommand) -> MetaResponse {
        match cmd {
            MetaCommand::RegisterBroker { id, node, incarnation } => self.register_broker(*id, node, *incarnation),
            MetaCommand::FenceBroker { id } => self.fence_broker(*id),
            MetaCommand::RemoveBroker { id } => self.remove_broker(*id),
            MetaCommand::SetDraining { id, draining } => match self.brokers.get_mut(id) {
                Some(b) => {
                    b.draining = *draining;
                    MetaResponse::Ok
                }
                None => MetaResponse::InvalidRequest(format!("broker {id} is not registered")),
            },
            MetaCommand::CreateTopic { name, topic_id, replicas, configs } => {
                self.create_topic(name, *topic_id, replicas, configs)
            }
            MetaCommand::DeleteTopic { name } => match self.topics.remove(name) {
                Some(_) => MetaResponse::Ok,
                None => MetaResponse::UnknownTopic,
            },
            MetaCommand::CreatePartitions { name, new_replicas } => self.create_partitions(name, new_replicas),
            MetaCommand::SetPartitionState { topic, partition, leader, isr, expected_partition_epoch } => {
                self.set_partition_state(topic, *partition, *leader, isr, *expected_partition_epoch)
            }
            MetaCommand::InitClusterId { cluster_id } => {
                if cluster_id.is_empty() {
                    return MetaResponse::InvalidRequest("empty cluster id".into());
                }
                MetaResponse::ClusterId(self.cluster_id.get_or_insert_with(|| cluster_id.clone()).clone())
            }
            MetaCommand::AllocateProducerIds { broker, count } => self.allocate_producer_ids(*broker, *count),
            MetaCommand::StartReassignment { topic, partition, target, expected_partition_epoch, by_user } => {
                self.start_reassignment(topic, *partition, target, *expected_partition_epoch, *by_user)
            }
            MetaCommand::ElectPreferredLeader { topic, partition } => self.elect_preferred_leader(topic, *partition),
            MetaCommand::CompleteReassignment { topic, partition, expected_partition_epoch } => {
                self.complete_reassignment(topic, *partition, *expected_partition_epoch)
            }
            MetaCommand::CancelReassignment { topic, partition, expected_partition_epoch } => {
                self.cancel_reassignment(topic, *partition, *expected_partition_epoch)
            }
            MetaCommand::Decided { term, .. } => MetaResponse::InvalidRequest(format!(
                "controller decision of term {term} outside a log entry: only apply_entry knows the entry's term"
            )),
        }
    }

    /// Apply the command of a committed log entry written in Raft term `entry_term`. A controller
    /// decision ([`MetaCommand::Decided`]) applies only in the term it was decided in; everything else
    /// as [`MetadataState::apply`].
    pub fn apply_entry(&mut self, entry_term: u64, cmd: &MetaCommand) -> MetaResponse {
        match cmd {
            MetaCommand::Decided { term, decision } => {
                if *term != entry_term {
                    return MetaResponse::StaleTerm { decided_in: *term, entry_term };
                }
                if matches!(**decision, MetaCommand::Decided { .. }) {
                    return MetaResponse::InvalidRequest("nested controller decision".into());
                }
                self.apply(decision)
            }
            other => self.apply(other),
        }
    }

    /// Broker ids that are registered and not fenced.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRecord> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Live brokers that new replicas may be placed on: not draining.
    pub fn placeable_brokers(&self) -> impl Iterator<Item = &BrokerRecord> {
        self.live_brokers().filter(|b| !b.draining)
    }

    /// The partitions (topic, index) with a replica on broker `id` — being added, staying or leaving.
    pub fn replicas_on(&self, id: i32) -> Vec<(String, i32)> {
        let mut out = Vec::new();
        for t in self.topics.values() {
            for (i, p) in t.partitions.iter().enumerate() {
                if p.replicas.contains(&id) || p.adding_replicas.contains(&id) {
                    out.push((t.name.clone(), i as i32));
                }
            }
        }
        out
    }

    fn register_broker(&mut self, id: i32, node: &BrokerNode, incarnation: Option<u64>) -> MetaResponse {
        if id < 0 {
            return MetaResponse::InvalidRequest(format!("broker id {id} is negative"));
        }
        if self.removed_brokers.contains(&id) {
            return MetaResponse::InvalidRequest(removed_message(id));
        }
        let known = self.brokers.get(&id);
        let incarnation = incarnation.or_else(|| known.and_then(|b| b.incarnation));
        let draining = known.is_some_and(|b| b.draining);
        self.brokers.insert(id, BrokerRecord { id, node: node.clone(), fenced: false, incarnation, draining });
        MetaResponse::Ok
    }

    fn remove_broker(&mut self, id: i32) -> MetaResponse {
        if id < 0 {
            return MetaResponse::InvalidRequest(format!("broker id {id} is negative"));
        }
        self.brokers.remove(&id);
        self.removed_brokers.insert(id);
        MetaResponse::Ok
    }

    fn fence_broker(&mut self, id: i32) -> MetaResponse {
        match self.brokers.get_mut(&id) {
            Some(broker) => {
                broker.fenced = true;
                MetaResponse::Ok
            }
            None => MetaResponse::InvalidRequest(format!("broker {id} is not registered")),
        }
    }

    fn create_topic(
        &mut self,
        name: &str,
        topic_id: [u8; 16],
        replicas: &[Vec<i32>],
        configs: &BTreeMap<String, String>,
    ) -> MetaResponse {
        if let Err(why) = validate_topic_name(name) {
            return MetaResponse::InvalidRequest(why);
        }
        if self.topics.contains_key(name) {
            return MetaResponse::TopicAlreadyExists;
        }
        if topic_id == [0; 16] {
            return MetaResponse::InvalidRequest(format!("topic {name}: the zero topic id is reserved"));
        }
        if let Some(other) = self.topics.values().find(|t| t.topic_id == topic_id) {
            return MetaResponse::InvalidRequest(format!("topic {name}: topic id already used by {}", other.name));
        }
        if replicas.is_empty() {
            return MetaResponse::InvalidPartitions(format!("topic {name}: at least one partition is needed"));
        }
        if let Err(why) = self.validate_new_partitions(name, 0, replicas) {
            return MetaResponse::InvalidPartitions(why);
        }
        let partitions = replicas.iter().map(|r| new_partition(r)).collect();
        self.topics.insert(
            name.to_owned(),
            TopicRecord { name: name.to_owned(), topic_id, configs: configs.clone(), partitions },
        );
        MetaResponse::TopicCreated { topic_id }
    }

    fn create_partitions(&mut self, name: &str, new_replicas: &[Vec<i32>]) -> MetaResponse {
        let Some(current) = self.topics.get(name).map(|t| t.partitions.len()) else {
            return MetaResponse::UnknownTopic;
        };
        if new_replicas.is_empty() {
            return MetaResponse::InvalidPartitions(format!(
                "topic {name}: new partition count must be larger than the current {current}"
            ));
        }
        if let Err(why) = self.validate_new_partitions(name, current, new_replicas) {
            return MetaResponse::InvalidPartitions(why);
        }
        if let Some(topic) = self.topics.get_mut(name) {
            topic.partitions.extend(new_replicas.iter().map(|r| new_partition(r)));
        }
        MetaResponse::Ok
    }

    /// Checks replica lists for partitions `first_partition..` of `topic`.
    pub(crate) fn validate_new_partitions(&self, topic: &str, first_partition: usize, lists: &[Vec<i32>]) -> Result<(), String> {
        let total = first_partition.saturating_add(lists.len());
        if total > PARTITIONS_PER_TOPIC_MAX {
            return Err(format!("topic {topic}: {total} partitions exceed the limit {PARTITIONS_PER_TOPIC_MAX}"));
        }
        for (i, replicas) in lists.iter().enumerate() {
            let partition = first_partition + i;
            if replicas.is_empty() {
                return Err(format!("topic {topic} partition {partition}: empty replica list"));
            }
            if replicas.len() > REPLICAS_PER_PARTITION_MAX {
                return Err(format!(
                    "topic {topic} partition {partition}: {} replicas exceed the limit {REPLICAS_PER_PARTITION_MAX}",
                    replicas.len()
                ));
            }
            let mut seen = BTreeSet::new();
            for broker in replicas {
                if !seen.insert(*broker) {
                    return Err(format!("topic {topic} partition {partition}: broker {broker} listed twice"));
                }
                if !self.brokers.contains_key(broker) {
                    return Err(format!("topic {topic} partition {partition}: broker {broker} is not registered"));
                }
            }
        }
        Ok(())
    }

    fn set_partition_state(&mut self, topic: &str, partition: i32, leader: i32, isr: &[i32], expected_epoch: i32) -> MetaResponse {
        let Some(record) = self.topics.get_mut(topic) else {
            return MetaResponse::UnknownTopic;
        };
        let Some(p) = usize::try_from(partition).ok().and_then(|i| record.partitions.get_mut(i)) else {
            return MetaResponse::InvalidPartitions(format!(
                "topic {topic}: partition {partition} does not exist ({} partitions)",
                record.partitions.len()
            ));
        };
        if p.partition_epoch != expected_epoch {
            return MetaResponse::InvalidPartitions(format!(
                "topic {topic} partition {partition}: partition epoch is {}, not the expected {expected_epoch}",
                p.partition_epoch
            ));
        }
        let mut seen = BTreeSet::new();
        for broker in isr {
            if !p.replicas.contains(broker) {
                return MetaResponse::InvalidPartitions(format!(
                    "topic {topic} partition {partition}: ISR member {broker} is not a replica"
                ));
            }
            if !seen.insert(*broker) {
                return MetaResponse::InvalidPartitions(format!(
                    "topic {topic} partition {partition}: ISR lists {broker} twice"
                ));
            }
        }
        if leader != NO_LEADER && !isr.contains(&leader) {
            return MetaResponse::InvalidPartitions(format!(
                "topic {topic} partition {partition}: leader {leader} is not in the ISR"
            ));
        }
        // No unclean election: a new leader must hold every acknowledged record, which only the members
        // of the current ISR are known to do.
        if leader != p.leader && leader != NO_LEADER && !p.isr.contains(&leader) {
            return MetaResponse::InvalidPartitions(format!(
                "topic {topic} partition {partition}: new leader {leader} is not in the current ISR {:?}",
                p.isr
            ));
        }
        if leader == p.leader && isr == p.isr.as_slice() {
            return MetaResponse::Ok;
        }
        if leader != p.leader {
            p.leader = leader;
            p.leader_epoch = p.leader_epoch.saturating_add(1);
        }
        p.isr = isr.to_vec();
        p.partition_epoch = p.partition_epoch.saturating_add(1);
        MetaResponse::Ok
    }

    fn allocate_producer_ids(&mut self, broker: i32, count: i64) -> MetaResponse {
        if !(1..=PRODUCER_ID_BLOCK_MAX).contains(&count) {
            return MetaResponse::InvalidRequest(format!(
                "broker {broker}: producer id block size {count} outside 1..={PRODUCER_ID_BLOCK_MAX}"
            ));
        }
        let first = self.next_producer_id;
        let Some(next) = first.checked_add(count) else {
            return MetaResponse::InvalidRequest(format!("broker {broker}: producer ids exhausted at {first}"));
        };
        self.next_producer_id = next;
        MetaResponse::ProducerIdBlock { first, count }
    }
}

/// Why a removed broker id is refused, with what the operator should do.
pub fn removed_message(id: i32) -> String {
    format!("node {id} was removed from the cluster; wipe its data directory and add it under a new node id")
}

/// A new partition is led by its first replica, epoch 0, with every replica in sync.
fn new_partition(replicas: &[i32]) -> PartitionRecord {
    PartitionRecord {
        replicas: replicas.to_vec(),
        leader: replicas.first().copied().unwrap_or(NO_LEADER),
        leader_epoch: 0,
        isr: replicas.to_vec(),
        partition_epoch: 0,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
        target_replicas: Vec::new(),
        user_placed: false,
    }
}

/// Kafka's rule: 1..=249 characters of `[a-zA-Z0-9._-]`, not "." or "..".
fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name {name:?} is not allowed"));
    }
    if name.len() > TOPIC_NAME_LEN_MAX {
        return Err(format!("topic name of {} characters exceeds {TOPIC_NAME_LEN_MAX}", name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("topic name {name:?} contains illegal character {c:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
