//! Typed ids of the broker: who a broker is ([`BrokerId`]), which partition ([`TopicPartition`]) and
//! which leadership term of it ([`LeaderEpoch`]). Two bare `i32`s side by side (a leader and an epoch,
//! a partition and a broker) are easy to swap; these are not.
//!
//! The Raft metadata group names a node by a `u64` (`chronik_raft::NodeId`) while Kafka and the
//! metadata records name a broker by an `i32`: [`BrokerId::from_node_id`] and [`BrokerId::node_id`]
//! are the one conversion between them, and each refuses what does not fit.

use std::fmt;

use chronik_raft::NodeId;

/// A broker's id as Kafka clients and the metadata records see it (`broker.id`, replica lists, leaders).
/// Valid ids are 0..=i32::MAX; the metadata uses -1 (`NO_LEADER`) for "no broker".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BrokerId(pub i32);

impl BrokerId {
    /// The broker id of Raft node `id`; `None` when it does not fit a broker id (above `i32::MAX`).
    pub fn from_node_id(id: NodeId) -> Option<BrokerId> {
        i32::try_from(id).ok().map(BrokerId)
    }

    /// The Raft node id of this broker; `None` for a negative id (`NO_LEADER`), which names no node.
    pub fn node_id(self) -> Option<NodeId> {
        NodeId::try_from(self.0).ok()
    }
}

impl fmt::Display for BrokerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One partition of one topic: the key of every per-partition map.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition { topic: topic.into(), partition }
    }

    /// True for `topic`-`partition` without building a key.
    pub fn is(&self, topic: &str, partition: i32) -> bool {
        self.partition == partition && self.topic == topic
    }
}

/// A borrowed [`TopicPartition`] for lookups in `hashbrown` maps keyed by it: it hashes exactly as the
/// owned key does (the derived `Hash` of both writes the topic's `str` hash, then the partition), so
/// finding a partition builds no `String`.
#[derive(Debug, Clone, Copy, Hash)]
pub struct TopicPartitionRef<'a> {
    pub topic: &'a str,
    pub partition: i32,
}

impl hashbrown::Equivalent<TopicPartition> for TopicPartitionRef<'_> {
    fn equivalent(&self, key: &TopicPartition) -> bool {
        key.is(self.topic, self.partition)
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A partition's leader epoch: bumped by every leader change, it fences a deposed leader's writes
/// and tells a follower where its log may diverge from the leader's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaderEpoch(pub i32);

impl fmt::Display for LeaderEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_key_finds_what_the_owned_key_stored() {
        let mut map = hashbrown::HashMap::new();
        for (topic, partition) in [("orders", 0), ("orders", 1), ("order", 10), ("", 0)] {
            map.insert(TopicPartition::new(topic, partition), partition);
        }
        for (topic, partition) in [("orders", 0), ("orders", 1), ("order", 10), ("", 0)] {
            assert_eq!(map.get(&TopicPartitionRef { topic, partition }), Some(&partition), "{topic}-{partition}");
        }
        assert_eq!(map.get(&TopicPartitionRef { topic: "orders", partition: 10 }), None);
        assert_eq!(map.get(&TopicPartitionRef { topic: "order", partition: 0 }), None);
    }

    #[test]
    fn node_ids_that_do_not_fit_are_refused() {
        assert_eq!(BrokerId::from_node_id(0), Some(BrokerId(0)));
        assert_eq!(BrokerId::from_node_id(7), Some(BrokerId(7)));
        assert_eq!(BrokerId::from_node_id(i32::MAX as u64), Some(BrokerId(i32::MAX)));
        assert_eq!(BrokerId::from_node_id(i32::MAX as u64 + 1), None);
        assert_eq!(BrokerId::from_node_id(u64::MAX), None);
    }

    #[test]
    fn negative_broker_ids_name_no_node() {
        assert_eq!(BrokerId(3).node_id(), Some(3));
        assert_eq!(BrokerId(-1).node_id(), None);
        assert_eq!(BrokerId(i32::MAX).node_id(), Some(i32::MAX as u64));
    }

    #[test]
    fn topic_partition_orders_by_topic_then_partition() {
        let mut v = [TopicPartition::new("b", 0), TopicPartition::new("a", 2), TopicPartition::new("a", 1)];
        v.sort();
        assert_eq!(v.iter().map(ToString::to_string).collect::<Vec<_>>(), ["a-1", "a-2", "b-0"]);
        assert!(v[0].is("a", 1) && !v[0].is("a", 2));
    }
}
