//! The controller's decisions, as a pure function of the applied metadata and which brokers are alive:
//! fence brokers whose session expired (and unfence ones heartbeating again), drop fenced brokers from
//! ISRs, give every partition whose leader is gone a new leader from its ISR — never from outside it (no
//! unclean election) — and, when asked, move leadership back to the preferred (first) replica once it is
//! in sync, or off a draining broker. Who should lead is `chronik_rebalancer::leader`'s rule.

use std::collections::BTreeSet;

use chronik_raft::{MetaCommand, MetadataState, NO_LEADER};
use chronik_rebalancer::{failover_leader, preferred_leader_move};

/// What the controller should write, in order: broker fencing first, then partition changes.
pub fn decide(state: &MetadataState, alive: &BTreeSet<i32>, rebalance_preferred: bool) -> Vec<MetaCommand> {
    let mut out = Vec::new();
    for b in state.brokers.values() {
        let is_alive = alive.contains(&b.id);
        if is_alive && b.fenced {
            out.push(MetaCommand::RegisterBroker { id: b.id, node: b.node.clone(), incarnation: None });
        } else if !is_alive && !b.fenced {
            out.push(MetaCommand::FenceBroker { id: b.id });
        }
    }
    let draining: BTreeSet<i32> = state.brokers.values().filter(|b| b.draining).map(|b| b.id).collect();
    for t in state.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            let live_isr: Vec<i32> = p.isr.iter().copied().filter(|b| alive.contains(b)).collect();
            let leader_alive = p.leader != NO_LEADER && alive.contains(&p.leader);
            let (leader, isr) = if leader_alive {
                match preferred_leader_move(&p.replicas, p.leader, &live_isr, &draining) {
                    Some(to) if rebalance_preferred => (to, live_isr),
                    _ => (p.leader, live_isr),
                }
            } else {
                match failover_leader(&p.replicas, &live_isr, &draining) {
                    Some(l) => (l, live_isr),
                    // Nobody in sync is alive: the partition stays offline with its last ISR, so that
                    // a returning in-sync replica (never a stale one) becomes leader.
                    None => (NO_LEADER, p.isr.clone()),
                }
            };
            if leader != p.leader || isr != p.isr {
                out.push(MetaCommand::SetPartitionState {
                    topic: t.name.clone(),
                    partition: i as i32,
                    leader,
                    isr,
                    expected_partition_epoch: p.partition_epoch,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronik_raft::{BrokerNode, BrokerRecord, PartitionRecord, TopicRecord};
    use std::collections::BTreeMap;

    fn state(parts: &[(&[i32], i32, &[i32])], fenced: &[i32]) -> MetadataState {
        let mut s = MetadataState::default();
        for id in 1..=3 {
            s.brokers.insert(id, BrokerRecord { id, node: BrokerNode::default(), fenced: fenced.contains(&id), incarnation: None, draining: false });
        }
        let partitions = parts
            .iter()
            .map(|(replicas, leader, isr)| PartitionRecord { replicas: replicas.to_vec(), leader: *leader, isr: isr.to_vec(), ..Default::default() })
            .collect();
        s.topics.insert("t".into(), TopicRecord { name: "t".into(), topic_id: [1; 16], configs: BTreeMap::new(), partitions });
        s
    }

    fn alive(ids: &[i32]) -> BTreeSet<i32> {
        ids.iter().copied().collect()
    }

    fn set(p: i32, leader: i32, isr: &[i32]) -> MetaCommand {
        MetaCommand::SetPartitionState { topic: "t".into(), partition: p, leader, isr: isr.to_vec(), expected_partition_epoch: 0 }
    }

    #[test]
    fn all_alive_nothing_to_do() {
        let s = state(&[(&[1, 2, 3], 1, &[1, 2, 3])], &[]);
        assert!(decide(&s, &alive(&[1, 2, 3]), true).is_empty());
    }

    #[test]
    fn dead_leader_is_fenced_and_replaced_from_isr() {
        let s = state(&[(&[1, 2, 3], 1, &[1, 2, 3]), (&[2, 3, 1], 2, &[2, 3, 1]), (&[3, 1, 2], 3, &[3, 1])], &[]);
        let cmds = decide(&s, &alive(&[2, 3]), false);
        assert_eq!(
            cmds,
            vec![MetaCommand::FenceBroker { id: 1 }, set(0, 2, &[2, 3]), set(1, 2, &[2, 3]), set(2, 3, &[3])]
        );
    }

    #[test]
    fn never_elects_outside_the_isr() {
        // Replica 3 is alive but not in sync: the partition goes offline, keeping its ISR.
        let s = state(&[(&[1, 2, 3], 1, &[1, 2])], &[]);
        let cmds = decide(&s, &alive(&[3]), false);
        assert!(cmds.contains(&set(0, NO_LEADER, &[1, 2])), "{cmds:?}");
        // When an in-sync replica returns it leads again.
        let s = state(&[(&[1, 2, 3], NO_LEADER, &[1, 2])], &[1, 2]);
        let cmds = decide(&s, &alive(&[2, 3]), false);
        assert!(cmds.contains(&MetaCommand::RegisterBroker { id: 2, node: BrokerNode::default(), incarnation: None }));
        assert!(cmds.contains(&set(0, 2, &[2])), "{cmds:?}");
    }

    #[test]
    fn preferred_leader_returns_when_in_sync() {
        let s = state(&[(&[1, 2, 3], 2, &[2, 3, 1]), (&[1, 2, 3], 2, &[2, 3])], &[]);
        let cmds = decide(&s, &alive(&[1, 2, 3]), true);
        // Partition 0: 1 is in sync → leader back to 1. Partition 1: 1 not in sync yet → unchanged.
        assert_eq!(cmds, vec![set(0, 1, &[2, 3, 1])]);
        assert!(decide(&s, &alive(&[1, 2, 3]), false).is_empty());
    }

    #[test]
    fn returning_broker_is_unfenced() {
        let s = state(&[(&[1, 2, 3], 2, &[2, 3])], &[1]);
        assert_eq!(decide(&s, &alive(&[1, 2, 3]), false), vec![MetaCommand::RegisterBroker { id: 1, node: BrokerNode::default(), incarnation: None }]);
    }
}
