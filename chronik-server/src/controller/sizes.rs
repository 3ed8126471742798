//! Partition sizes as the controller knows them, from the size reports brokers sent with their
//! heartbeats in the current term (`chronik_raft::sizes`).
//!
//! A partition's size is what its leader reported for it (the leader's log is what a move copies);
//! when the leader did not report it (no leader, or the leadership just changed), the largest size any
//! replica reported. Sizes are used only once **every live broker** has reported in this term: until
//! then (a new controller after a failover, a broker that just came back) every size counts as 0, so
//! the planner balances replica counts only and never plans byte moves from a half-known picture.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chronik_raft::{MetadataState, NodeId, SizeReport};

use crate::ids::BrokerId;

/// Sizes by partition, or why they are not known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionSizes {
    bytes: BTreeMap<(String, i32), u64>,
    /// Live brokers that have not reported yet; sizes are known when empty.
    missing: Vec<i32>,
}

impl PartitionSizes {
    /// Nothing reported: every size is 0 (planning by replica count).
    pub fn unknown() -> PartitionSizes {
        PartitionSizes { bytes: BTreeMap::new(), missing: vec![-1] }
    }

    /// The sizes that `reports` (by broker, received in the current term) give for `state`.
    pub fn from_reports(state: &MetadataState, reports: &BTreeMap<NodeId, Arc<SizeReport>>) -> PartitionSizes {
        let reported: BTreeSet<i32> = reports.keys().filter_map(|id| BrokerId::from_node_id(*id)).map(|b| b.0).collect();
        let live: BTreeSet<i32> = state.live_brokers().map(|b| b.id).collect();
        let missing: Vec<i32> = live.iter().copied().filter(|id| !reported.contains(id)).collect();
        if !missing.is_empty() {
            return PartitionSizes { bytes: BTreeMap::new(), missing };
        }
        // Only live brokers' reports: a fenced broker's last report is of a log nobody reads any more.
        let by_broker: BTreeMap<i32, BTreeMap<(String, i32), u64>> = reports
            .iter()
            .filter_map(|(id, r)| BrokerId::from_node_id(*id).map(|b| b.0).filter(|id| live.contains(id)).map(|id| (id, r.by_partition())))
            .collect();
        let mut bytes = BTreeMap::new();
        for t in state.topics.values() {
            for (i, p) in t.partitions.iter().enumerate() {
                let key = (t.name.clone(), i as i32);
                let of = |b: &i32| by_broker.get(b).and_then(|m| m.get(&key)).copied();
                let size = of(&p.leader).or_else(|| p.replicas.iter().chain(&p.target_replicas).filter_map(of).max());
                if let Some(size) = size {
                    bytes.insert(key, size);
                }
            }
        }
        PartitionSizes { bytes, missing: Vec::new() }
    }

    /// Known sizes, as given (tests of what uses them).
    #[cfg(test)]
    pub fn known_as(bytes: BTreeMap<(String, i32), u64>) -> PartitionSizes {
        PartitionSizes { bytes, missing: Vec::new() }
    }

    /// Whether every live broker has reported (otherwise every size is 0).
    pub fn known(&self) -> bool {
        self.missing.is_empty()
    }

    /// Live brokers whose report is still awaited.
    pub fn missing(&self) -> &[i32] {
        &self.missing
    }

    /// The size of a partition in bytes; 0 when unknown.
    pub fn of(&self, topic: &str, partition: i32) -> u64 {
        if !self.known() {
            return 0;
        }
        self.bytes.get(&(topic.to_string(), partition)).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_cluster::cluster;
    use chronik_raft::MetaCommand;


    fn reports(list: &[(NodeId, &[(i32, u64)])]) -> BTreeMap<NodeId, Arc<SizeReport>> {
        list.iter()
            .map(|(b, rs)| (*b, Arc::new(SizeReport { replicas: rs.iter().map(|(p, n)| ("t".to_string(), *p, *n)).collect() })))
            .collect()
    }

    #[test]
    fn the_leaders_size_counts_else_the_largest() {
        let mut s = cluster(&[1, 2], &[&[1, 2], &[2, 1]]);
        // Partition 1's leader (2) reported nothing for it: the largest other report counts.
        let r = reports(&[(1, &[(0, 500), (1, 70)]), (2, &[(0, 900)])]);
        let sizes = PartitionSizes::from_reports(&s, &r);
        assert!(sizes.known());
        assert_eq!((sizes.of("t", 0), sizes.of("t", 1), sizes.of("t", 9), sizes.of("x", 0)), (500, 70, 0, 0));
        s.apply(&MetaCommand::FenceBroker { id: 1 });
        let sizes = PartitionSizes::from_reports(&s, &r);
        assert!(sizes.known(), "a fenced broker is not waited for");
        assert_eq!(sizes.of("t", 0), 900, "the fenced leader's report no longer counts");
    }

    #[test]
    fn nothing_counts_until_every_live_broker_reported() {
        let s = cluster(&[1, 2, 3], &[&[1, 2], &[2, 3]]);
        let r = reports(&[(1, &[(0, 500)]), (2, &[(0, 400), (1, 300)])]);
        let sizes = PartitionSizes::from_reports(&s, &r);
        assert!(!sizes.known());
        assert_eq!(sizes.missing(), &[3]);
        assert_eq!((sizes.of("t", 0), sizes.of("t", 1)), (0, 0));
        assert!(!PartitionSizes::unknown().known());
        assert_eq!(PartitionSizes::unknown().of("t", 0), 0);
    }
}
