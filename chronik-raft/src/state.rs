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
                self.cluster_id.get_or_insert_with(|| cluster_id.clone());
                MetaResponse::Ok
            }
            MetaCommand::AllocateProducerIds { broker, count } => self.allocate_producer_ids(*broker, *count),
            MetaCommand::StartReassignment { topic, partition, target, expected_partition_epoch } => {
                self.start_reassignment(topic, *partition, target, *expected_partition_epoch)
            }
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

    fn register_broker(&mut self, id: i32, node: &BrokerNode, incarnation: Option<u64>) -> MetaResponse {
        if id < 0 {
            return MetaResponse::InvalidRequest(format!("broker id {id} is negative"));
        }
        if self.removed_brokers.contains(&id) {
            return MetaResponse::InvalidRequest(removed_message(id));
        }
        let incarnation = incarnation.or_else(|| self.brokers.get(&id).and_then(|b| b.incarnation));
        self.brokers.insert(id, BrokerRecord { id, node: node.clone(), fenced: false, incarnation });
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
mod tests {
    use super::*;

    fn node(port: u16) -> BrokerNode {
        BrokerNode { kafka_addr: format!("localhost:{port}"), ..Default::default() }
    }

    fn register(id: i32) -> MetaCommand {
        MetaCommand::RegisterBroker { id, node: node((9000 + id) as u16), incarnation: None }
    }

    fn create(name: &str, id: u8, replicas: Vec<Vec<i32>>) -> MetaCommand {
        MetaCommand::CreateTopic { name: name.into(), topic_id: [id; 16], replicas, configs: BTreeMap::new() }
    }

    fn set_at(topic: &str, partition: i32, leader: i32, isr: Vec<i32>, epoch: i32) -> MetaCommand {
        MetaCommand::SetPartitionState { topic: topic.into(), partition, leader, isr, expected_partition_epoch: epoch }
    }

    /// A change computed from a fresh partition (epoch 0).
    fn set(topic: &str, partition: i32, leader: i32, isr: Vec<i32>) -> MetaCommand {
        set_at(topic, partition, leader, isr, 0)
    }

    /// A change computed from the partition as `s` has it now.
    fn next(s: &MetadataState, topic: &str, partition: i32, leader: i32, isr: Vec<i32>) -> MetaCommand {
        let epoch = s.topics[topic].partitions[partition as usize].partition_epoch;
        set_at(topic, partition, leader, isr, epoch)
    }

    fn decided(term: u64, decision: MetaCommand) -> MetaCommand {
        MetaCommand::Decided { term, decision: Box::new(decision) }
    }

    /// Three registered brokers and topic "t" with two partitions on [1,2,3] and [2,3,1].
    fn base() -> MetadataState {
        let mut s = MetadataState::default();
        for c in [register(1), register(2), register(3), create("t", 7, vec![vec![1, 2, 3], vec![2, 3, 1]])] {
            s.apply(&c);
        }
        s
    }

    fn invalid_partitions(r: &MetaResponse) -> bool {
        matches!(r, MetaResponse::InvalidPartitions(_))
    }
    fn invalid_request(r: &MetaResponse) -> bool {
        matches!(r, MetaResponse::InvalidRequest(_))
    }

    /// Each case: commands applied to `base()`, the expected last response, and whether the state
    /// must be unchanged from `base()` (a refused command applies nothing).
    #[test]
    fn table_of_commands() {
        type Check = fn(&MetaResponse) -> bool;
        let cases: Vec<(&str, Vec<MetaCommand>, Check, bool)> = vec![
            ("duplicate create", vec![create("t", 8, vec![vec![1]])], |r| *r == MetaResponse::TopicAlreadyExists, true),
            ("delete unknown", vec![MetaCommand::DeleteTopic { name: "nope".into() }], |r| *r == MetaResponse::UnknownTopic, true),
            ("delete known", vec![MetaCommand::DeleteTopic { name: "t".into() }], |r| *r == MetaResponse::Ok, false),
            ("create topic id reused", vec![create("u", 7, vec![vec![1]])], invalid_request, true),
            ("create zero topic id", vec![create("u", 0, vec![vec![1]])], invalid_request, true),
            ("create no partitions", vec![create("u", 9, vec![])], invalid_partitions, true),
            ("create empty replica list", vec![create("u", 9, vec![vec![1], vec![]])], invalid_partitions, true),
            ("create unknown broker", vec![create("u", 9, vec![vec![1, 4]])], invalid_partitions, true),
            ("create duplicate replica", vec![create("u", 9, vec![vec![1, 1]])], invalid_partitions, true),
            ("create bad name", vec![create("a/b", 9, vec![vec![1]])], invalid_request, true),
            ("create empty name", vec![create("", 9, vec![vec![1]])], invalid_request, true),
            ("partitions on unknown topic", vec![MetaCommand::CreatePartitions { name: "x".into(), new_replicas: vec![vec![1]] }], |r| *r == MetaResponse::UnknownTopic, true),
            ("partitions none added", vec![MetaCommand::CreatePartitions { name: "t".into(), new_replicas: vec![] }], invalid_partitions, true),
            ("partitions bad broker", vec![MetaCommand::CreatePartitions { name: "t".into(), new_replicas: vec![vec![9]] }], invalid_partitions, true),
            ("partitions more", vec![MetaCommand::CreatePartitions { name: "t".into(), new_replicas: vec![vec![3, 1]] }], |r| *r == MetaResponse::Ok, false),
            ("set state unknown topic", vec![set("x", 0, 1, vec![1])], |r| *r == MetaResponse::UnknownTopic, true),
            ("set state partition out of range", vec![set("t", 2, 1, vec![1])], invalid_partitions, true),
            ("set state negative partition", vec![set("t", -1, 1, vec![1])], invalid_partitions, true),
            ("set state leader not in isr", vec![set("t", 0, 1, vec![2, 3])], invalid_partitions, true),
            ("set state isr not replica", vec![set("t", 0, 1, vec![1, 4])], invalid_partitions, true),
            ("set state stale partition epoch", vec![set_at("t", 0, 1, vec![1, 2], 3)], invalid_partitions, true),
            ("set state no leader", vec![set("t", 0, NO_LEADER, vec![])], |r| *r == MetaResponse::Ok, false),
            ("register negative id", vec![register(-1)], invalid_request, true),
            ("fence unknown broker", vec![MetaCommand::FenceBroker { id: 9 }], invalid_request, true),
            ("producer ids zero count", vec![MetaCommand::AllocateProducerIds { broker: 1, count: 0 }], invalid_request, true),
            ("producer ids too many", vec![MetaCommand::AllocateProducerIds { broker: 1, count: PRODUCER_ID_BLOCK_MAX + 1 }], invalid_request, true),
        ];
        for (what, cmds, check, unchanged) in cases {
            let mut s = base();
            let mut last = MetaResponse::Ok;
            for c in &cmds {
                last = s.apply(c);
            }
            assert!(check(&last), "{what}: unexpected response {last:?}");
            assert_eq!(s == base(), unchanged, "{what}: state changed = {}", s != base());
        }
    }

    #[test]
    fn create_topic_sets_leader_epoch_and_isr() {
        let s = base();
        let t = &s.topics["t"];
        assert_eq!(t.topic_id, [7; 16]);
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(
            t.partitions[1],
            PartitionRecord { replicas: vec![2, 3, 1], leader: 2, leader_epoch: 0, isr: vec![2, 3, 1], ..Default::default() }
        );
    }

    #[test]
    fn create_partitions_appends_after_existing() {
        let mut s = base();
        let r = s.apply(&MetaCommand::CreatePartitions { name: "t".into(), new_replicas: vec![vec![3], vec![1, 2]] });
        assert_eq!(r, MetaResponse::Ok);
        let leaders: Vec<i32> = s.topics["t"].partitions.iter().map(|p| p.leader).collect();
        assert_eq!(leaders, vec![1, 2, 3, 1]);
    }

    #[test]
    fn leader_epoch_bumps_only_on_leader_change_and_partition_epoch_on_every_change() {
        let mut s = base();
        let epochs = |s: &MetadataState| {
            let p = &s.topics["t"].partitions[0];
            (p.leader_epoch, p.partition_epoch)
        };
        assert_eq!(s.apply(&next(&s, "t", 0, 1, vec![1, 2])), MetaResponse::Ok);
        assert_eq!(epochs(&s), (0, 1), "ISR shrink with the same leader keeps the leader epoch");
        assert_eq!(s.apply(&next(&s, "t", 0, 2, vec![1, 2])), MetaResponse::Ok);
        assert_eq!(epochs(&s), (1, 2));
        assert_eq!(s.apply(&next(&s, "t", 0, 2, vec![2])), MetaResponse::Ok);
        assert_eq!(epochs(&s), (1, 3));
        assert_eq!(s.apply(&next(&s, "t", 0, 2, vec![2])), MetaResponse::Ok);
        assert_eq!(epochs(&s), (1, 3), "a change that changes nothing bumps nothing");
        assert_eq!(s.apply(&next(&s, "t", 0, NO_LEADER, vec![2])), MetaResponse::Ok);
        assert_eq!(epochs(&s), (2, 4), "losing the leader is a leader change");
        assert!(invalid_partitions(&s.apply(&next(&s, "t", 0, 3, vec![3]))));
        assert_eq!(epochs(&s), (2, 4), "a refused change keeps both epochs");
        assert_eq!(s.apply(&next(&s, "t", 0, 2, vec![2])), MetaResponse::Ok);
        assert_eq!(epochs(&s), (3, 5), "the last in-sync replica returns as leader");
    }

    #[test]
    fn a_stale_partition_epoch_is_refused() {
        let mut s = base();
        // The controller shrinks t-0's ISR (partition epoch 0 → 1; the leader epoch stays 0).
        assert_eq!(s.apply(&set_at("t", 0, 1, vec![1, 2], 0)), MetaResponse::Ok);
        // A second decision computed from epoch 0 — the shape of a paused controller's — is refused,
        // although the leader epoch it would have checked is unchanged.
        let before = s.clone();
        let r = s.apply(&set_at("t", 0, 1, vec![1], 0));
        assert!(invalid_partitions(&r), "{r:?}");
        assert_eq!(s, before);
        assert!(invalid_partitions(&s.apply(&set_at("t", 0, 1, vec![1], 7))), "a future epoch is refused too");
        assert_eq!(s.apply(&set_at("t", 0, 1, vec![1], 1)), MetaResponse::Ok);
    }

    #[test]
    fn a_new_leader_outside_the_current_isr_is_refused() {
        let mut s = base();
        assert_eq!(s.apply(&set_at("t", 1, 2, vec![2, 3], 0)), MetaResponse::Ok);
        let before = s.clone();
        // Broker 1 fell out of the ISR; making it leader (with an ISR of just itself) would cut away
        // everything 2 and 3 acknowledged since.
        let r = s.apply(&next(&s, "t", 1, 1, vec![1]));
        assert!(invalid_partitions(&r), "{r:?}");
        let r = s.apply(&next(&s, "t", 1, 1, vec![1, 2, 3]));
        assert!(invalid_partitions(&r), "an ISR naming it does not make it eligible: {r:?}");
        assert_eq!(s, before);
        let r = s.apply(&next(&s, "t", 1, 2, vec![3]));
        assert!(invalid_partitions(&r), "an ISR without its leader: {r:?}");
        assert_eq!(s.apply(&next(&s, "t", 1, 3, vec![3])), MetaResponse::Ok, "an ISR member may take over");
    }

    #[test]
    fn a_controller_decision_applies_only_in_its_own_term() {
        let mut s = base();
        let before = s.clone();
        // Decided by the leader of term 4, committed in term 5 (forwarded, or re-proposed): refused.
        let r = s.apply_entry(5, &decided(4, MetaCommand::FenceBroker { id: 2 }));
        assert_eq!(r, MetaResponse::StaleTerm { decided_in: 4, entry_term: 5 });
        let r = s.apply_entry(5, &decided(4, set("t", 0, 1, vec![1])));
        assert_eq!(r, MetaResponse::StaleTerm { decided_in: 4, entry_term: 5 });
        assert_eq!(s, before);
        assert!(invalid_request(&s.apply(&decided(5, MetaCommand::FenceBroker { id: 2 }))), "no term, no decision");
        assert!(invalid_request(&s.apply_entry(5, &decided(5, decided(5, MetaCommand::FenceBroker { id: 2 })))));
        assert_eq!(s, before);
        assert_eq!(s.apply_entry(5, &decided(5, MetaCommand::FenceBroker { id: 2 })), MetaResponse::Ok);
        assert!(s.brokers[&2].fenced);
        assert_eq!(s.apply_entry(5, &MetaCommand::FenceBroker { id: 3 }), MetaResponse::Ok, "plain commands apply in any term");
    }

    #[test]
    fn producer_id_blocks_never_overlap() {
        let mut s = base();
        let mut blocks = Vec::new();
        for (broker, count) in [(1, 1000), (2, 1), (1, 5000), (3, 0), (3, 17), (2, -5), (1, PRODUCER_ID_BLOCK_MAX)] {
            if let MetaResponse::ProducerIdBlock { first, count: got } = s.apply(&MetaCommand::AllocateProducerIds { broker, count }) {
                assert_eq!(got, count);
                blocks.push((first, first + got));
            }
        }
        assert_eq!(blocks.len(), 5, "the zero and negative counts are refused");
        for (i, a) in blocks.iter().enumerate() {
            for b in &blocks[i + 1..] {
                assert!(a.1 <= b.0 || b.1 <= a.0, "blocks {a:?} and {b:?} overlap");
            }
        }
        assert_eq!(s.next_producer_id, blocks.iter().map(|b| b.1).max().unwrap_or(0));
    }

    #[test]
    fn producer_ids_exhausted_is_refused_not_wrapped() {
        let mut s = MetadataState { next_producer_id: i64::MAX - 10, ..Default::default() };
        assert!(invalid_request(&s.apply(&MetaCommand::AllocateProducerIds { broker: 1, count: 11 })));
        assert_eq!(s.next_producer_id, i64::MAX - 10);
    }

    #[test]
    fn register_updates_and_unfences() {
        let mut s = base();
        assert_eq!(s.apply(&MetaCommand::FenceBroker { id: 2 }), MetaResponse::Ok);
        assert!(s.brokers[&2].fenced);
        assert_eq!(s.live_brokers().count(), 2);
        assert_eq!(s.apply(&MetaCommand::RegisterBroker { id: 2, node: node(1234), incarnation: None }), MetaResponse::Ok);
        assert!(!s.brokers[&2].fenced);
        assert_eq!(s.brokers[&2].node.kafka_addr, "localhost:1234");
        assert_eq!(s.brokers.len(), 3);
    }

    #[test]
    fn a_start_records_its_incarnation_and_an_unfence_keeps_it() {
        let mut s = base();
        assert_eq!(s.apply(&MetaCommand::RegisterBroker { id: 2, node: node(9002), incarnation: Some(77) }), MetaResponse::Ok);
        assert_eq!(s.brokers[&2].incarnation, Some(77));
        assert_eq!(s.apply(&MetaCommand::FenceBroker { id: 2 }), MetaResponse::Ok);
        assert_eq!(s.apply(&MetaCommand::RegisterBroker { id: 2, node: node(9002), incarnation: None }), MetaResponse::Ok);
        assert_eq!(s.brokers[&2].incarnation, Some(77), "the controller's unfence is not a new start");
        assert_eq!(s.apply(&MetaCommand::RegisterBroker { id: 2, node: node(9002), incarnation: Some(78) }), MetaResponse::Ok);
        assert_eq!(s.brokers[&2].incarnation, Some(78));
    }

    #[test]
    fn same_commands_give_same_state() {
        let cmds = vec![
            register(3),
            register(1),
            create("b", 2, vec![vec![1, 3]]),
            create("a", 1, vec![vec![3], vec![1]]),
            create("a", 5, vec![vec![3]]),
            MetaCommand::AllocateProducerIds { broker: 1, count: 10 },
            set("b", 0, 3, vec![3]),
            MetaCommand::CreatePartitions { name: "b".into(), new_replicas: vec![vec![1]] },
            MetaCommand::DeleteTopic { name: "a".into() },
            MetaCommand::FenceBroker { id: 1 },
        ];
        let run = || {
            let mut s = MetadataState::default();
            let responses: Vec<MetaResponse> = cmds.iter().map(|c| s.apply(c)).collect();
            (s, responses)
        };
        let (s1, r1) = run();
        let (s2, r2) = run();
        assert_eq!(s1, s2);
        assert_eq!(r1, r2);
        let json1 = serde_json::to_string(&s1).unwrap_or_default();
        assert_eq!(json1, serde_json::to_string(&s2).unwrap_or_default(), "serialised form is stable too");
        assert!(!json1.is_empty());
        assert_eq!(r1[4], MetaResponse::TopicAlreadyExists);
        assert_eq!(s1.topics.keys().collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn an_isr_change_racing_a_failover_changes_nothing() {
        let mut s = base();
        // The controller moves leadership of t-0 from 1 to 2 (partition epoch 0 → 1).
        assert_eq!(s.apply(&set_at("t", 0, 2, vec![2, 3], 0)), MetaResponse::Ok);
        // The old leader's ISR change, computed at epoch 0, arrives late: refused, state unchanged.
        let before = s.clone();
        assert!(invalid_partitions(&s.apply(&set_at("t", 0, 1, vec![1, 2], 0))));
        assert_eq!(s, before);
        assert_eq!(s.topics["t"].partitions[0].leader, 2);
        assert_eq!(s.topics["t"].partitions[0].leader_epoch, 1);
    }

    #[test]
    fn a_removed_broker_is_gone_and_its_id_refused() {
        let mut s = base();
        assert_eq!(s.apply(&MetaCommand::RemoveBroker { id: 3 }), MetaResponse::Ok);
        assert!(!s.brokers.contains_key(&3));
        assert!(s.removed_brokers.contains(&3));
        assert_eq!(s.apply(&MetaCommand::RemoveBroker { id: 3 }), MetaResponse::Ok, "idempotent");
        let r = s.apply(&MetaCommand::RegisterBroker { id: 3, node: node(9003), incarnation: Some(5) });
        assert!(matches!(&r, MetaResponse::InvalidRequest(m) if m.contains("new node id")), "{r:?}");
        assert!(!s.brokers.contains_key(&3));
        assert!(invalid_partitions(&s.apply(&create("u", 9, vec![vec![1, 3]]))), "no new replica on a removed broker");
    }

    #[test]
    fn first_cluster_id_wins() {
        let mut s = MetadataState::default();
        assert_eq!(s.apply(&MetaCommand::InitClusterId { cluster_id: "a".into() }), MetaResponse::Ok);
        assert_eq!(s.apply(&MetaCommand::InitClusterId { cluster_id: "b".into() }), MetaResponse::Ok);
        assert_eq!(s.cluster_id.as_deref(), Some("a"));
        assert!(matches!(s.apply(&MetaCommand::InitClusterId { cluster_id: String::new() }), MetaResponse::InvalidRequest(_)));
    }
}
