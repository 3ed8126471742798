//! Who should lead a partition: the controller's leader rules, as pure functions (the controller in
//! `chronik-server` applies them; the planner's preferred-leader moves reorder replica lists so these
//! rules then follow).
//!
//! - **Failover**: the first replica, in replica-list order, that is alive and in the ISR — never one
//!   outside the ISR (no unclean election) — preferring one that is not draining.
//! - **Preferred leader**: leadership moves to the first replica once it is alive and in sync; off a
//!   draining broker it moves to the first in-sync replica that is not draining.

use std::collections::BTreeSet;

/// The replica to lead after the leader is gone: `live_isr` are the in-sync replicas that are
/// alive. `None`: nobody in sync is alive (the partition stays offline).
pub fn failover_leader(replicas: &[i32], live_isr: &[i32], draining: &BTreeSet<i32>) -> Option<i32> {
    let in_sync = |r: &&i32| live_isr.contains(r);
    replicas.iter().filter(in_sync).find(|r| !draining.contains(r)).or_else(|| replicas.iter().find(in_sync)).copied()
}

/// The replica leadership should move to from a live `leader`, or `None` to stay: the first replica
/// when it is in sync and not draining; or, when `leader` is draining, the first in-sync replica
/// that is not.
pub fn preferred_leader_move(replicas: &[i32], leader: i32, live_isr: &[i32], draining: &BTreeSet<i32>) -> Option<i32> {
    let best = replicas.iter().copied().find(|r| live_isr.contains(r) && !draining.contains(r))?;
    let wanted = replicas.first() == Some(&best) || draining.contains(&leader);
    (wanted && best != leader).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[i32]) -> BTreeSet<i32> {
        ids.iter().copied().collect()
    }

    #[test]
    fn failover_takes_the_first_live_in_sync_replica_not_draining() {
        // (replicas, live ISR, draining, expected)
        type Case<'a> = (&'a [i32], &'a [i32], &'a [i32], Option<i32>);
        let cases: &[Case] = &[
            (&[1, 2, 3], &[2, 3], &[], Some(2)),
            (&[1, 2, 3], &[3, 2], &[], Some(2)),
            (&[1, 2, 3], &[2, 3], &[2], Some(3)),
            (&[1, 2, 3], &[2], &[2], Some(2)), // draining still beats offline
            (&[1, 2, 3], &[], &[], None),
            (&[1, 2, 3], &[4], &[], None), // never outside the replica list
        ];
        for (replicas, isr, draining, want) in cases {
            assert_eq!(failover_leader(replicas, isr, &set(draining)), *want, "{replicas:?} {isr:?} {draining:?}");
        }
    }

    #[test]
    fn preferred_leadership_returns_to_the_first_replica_and_leaves_draining_brokers() {
        // (replicas, leader, live ISR, draining, expected)
        type Case<'a> = (&'a [i32], i32, &'a [i32], &'a [i32], Option<i32>);
        let cases: &[Case] = &[
            (&[1, 2, 3], 1, &[1, 2, 3], &[], None),
            (&[1, 2, 3], 2, &[1, 2, 3], &[], Some(1)),
            (&[1, 2, 3], 2, &[2, 3], &[], None), // 1 not in sync yet
            (&[1, 2, 3], 3, &[2, 3], &[], None), // Kafka's rule: only the first replica is preferred
            (&[1, 2, 3], 1, &[1, 2, 3], &[1], Some(2)),
            (&[1, 2, 3], 2, &[1, 2, 3], &[1], None), // 2 is the best not draining
            (&[1, 2, 3], 1, &[1], &[1], None),       // nowhere else to go
        ];
        for (replicas, leader, isr, draining, want) in cases {
            assert_eq!(preferred_leader_move(replicas, *leader, isr, &set(draining)), *want, "{replicas:?} {leader} {isr:?} {draining:?}");
        }
    }
}
