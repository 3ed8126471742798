//! The rebalancer, run by the controller on each tick while it leads: it finishes moves whose data is
//! in place and starts new ones from the planner (`chronik_rebalancer::plan`), a bounded number at a
//! time, after a membership change (debounced) or when asked (`POST /admin/rebalance`).
//!
//! The planner balances bytes as well as replica counts when it knows partition sizes: [`view`] takes
//! them from the brokers' heartbeat reports ([`super::sizes`]), all 0 until every live broker reported.
//!
//! Nothing of the plan lives outside the metadata: the moves in progress are in Raft
//! (`StartReassignment`), and the rest is planned again from the current placement on every round,
//! so a new controller after a failover carries on where the old one stopped.
//!
//! Moves asked for by a Kafka admin client (AlterPartitionReassignments) are completed — or cancelled
//! when a broker they add is gone — here like the rebalancer's own. Their placement is then marked
//! `user_placed` in the metadata, and a round of the rebalancer does not move such a partition unless
//! the round was started by a membership change or an explicit `POST /admin/rebalance` after the user's
//! move began (the set of marked partitions a round may move is taken when the round starts). A new
//! controller's first round, and rounds still running when the user's move came in, leave it alone:
//! the automatic rebalancer never undoes a user's placement on its own.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chronik_raft::{MetaCommand, MetadataState};
use chronik_rebalancer::{BrokerView, Move, PartitionView};

use super::sizes::PartitionSizes;
use crate::ids::TopicPartition;

/// Moves started and not yet completed, at most, across the cluster.
pub const MOVES_IN_FLIGHT_MAX: usize = 2;
/// Quiet time after a change of the live broker set before a plan is made (several nodes joining
/// one after another get one plan).
pub const MEMBERSHIP_DEBOUNCE_MS: u64 = 5_000;

/// The rebalancer's memory between ticks (only while this node leads; a new leader starts fresh and
/// plans once, which finds nothing to do on a balanced cluster).
#[derive(Debug)]
pub struct Rebalancer {
    /// Live brokers and draining brokers at the last tick: a change starts a round (debounced).
    shape: (BTreeSet<i32>, BTreeSet<i32>),
    /// Whether `shape` was learned yet (false until the first tick).
    seen_shape: bool,
    changed_at: Option<Instant>,
    /// Keep planning until the plan is empty.
    active: bool,
    /// User-placed partitions this round may move: those marked when a membership change or an
    /// explicit request started it. Empty for a new controller's first round.
    movable_user_placed: BTreeSet<TopicPartition>,
}

impl Default for Rebalancer {
    fn default() -> Self {
        Rebalancer { shape: (BTreeSet::new(), BTreeSet::new()), seen_shape: false, changed_at: None, active: true, movable_user_placed: BTreeSet::new() }
    }
}

/// Partitions whose placement a Kafka admin client asked for.
fn user_placed(state: &MetadataState) -> BTreeSet<TopicPartition> {
    state
        .topics
        .values()
        .flat_map(|t| t.partitions.iter().enumerate().filter(|(_, p)| p.user_placed).map(move |(i, _)| TopicPartition::new(t.name.as_str(), i as i32)))
        .collect()
}

/// The planner's view of the metadata: brokers with liveness and draining — a removed broker that
/// still holds replicas (removed with `--force` while dead) counts as draining, so its replicas are
/// re-created elsewhere from the ISR; every partition, one that is moving as it will be once the move
/// completes, with its size from `sizes` (0 for all until every live broker has reported, see
/// [`PartitionSizes`]).
pub fn view(state: &MetadataState, sizes: &PartitionSizes) -> (Vec<BrokerView>, Vec<PartitionView>) {
    let mut brokers: Vec<BrokerView> = state
        .brokers
        .values()
        .map(|b| BrokerView { id: b.id, rack: b.node.rack.clone(), live: !b.fenced, draining: b.draining })
        .collect();
    brokers.extend(state.removed_brokers.iter().map(|id| BrokerView { id: *id, rack: None, live: false, draining: true }));
    let partitions = state
        .topics
        .values()
        .flat_map(|t| {
            t.partitions.iter().enumerate().map(move |(i, p)| PartitionView {
                topic: t.name.clone(),
                partition: i as i32,
                replicas: if p.moving() { p.target_replicas.clone() } else { p.replicas.clone() },
                leader: p.leader,
                isr: p.isr.clone(),
                size_bytes: sizes.of(&t.name, i as i32),
            })
        })
        .collect();
    (brokers, partitions)
}

/// Draining brokers that hold no replica any more: ready to leave the membership.
pub fn drained(state: &MetadataState) -> Vec<i32> {
    state.brokers.values().filter(|b| b.draining && state.replicas_on(b.id).is_empty()).map(|b| b.id).collect()
}

/// The moves the planner would make now.
pub fn plan(state: &MetadataState, sizes: &PartitionSizes) -> Vec<Move> {
    let (brokers, partitions) = view(state, sizes);
    chronik_rebalancer::plan(&brokers, &partitions)
}

impl Rebalancer {
    /// The commands to write this tick, in order: completions of moves whose targets are all in the
    /// ISR, then new moves up to [`MOVES_IN_FLIGHT_MAX`] when a round is due (`requested`: an operator
    /// asked for one).
    /// `sizes` is called only when a round plans moves: building the sizes from the reports is a pass
    /// over every partition, and the controller ticks every 500 ms (idle CPU with 10,000 partitions).
    pub fn tick(&mut self, state: &MetadataState, sizes: impl FnOnce() -> PartitionSizes, now: Instant, requested: bool) -> Vec<MetaCommand> {
        let mut out = Vec::new();
        let mut in_flight = 0;
        let live: BTreeSet<i32> = state.live_brokers().map(|b| b.id).collect();
        let draining: BTreeSet<i32> = state.brokers.values().filter(|b| b.draining).map(|b| b.id).collect();
        for t in state.topics.values() {
            for (i, p) in t.partitions.iter().enumerate() {
                if !p.moving() {
                    continue;
                }
                if p.adding_replicas.iter().any(|r| !live.contains(r) || draining.contains(r)) {
                    // A broker the move was adding died, was removed or is leaving: the move is void.
                    tracing::info!(topic = %t.name, partition = i, target = ?p.target_replicas, "rebalance: cancelling a move onto a broker that is gone");
                    out.push(MetaCommand::CancelReassignment { topic: t.name.clone(), partition: i as i32, expected_partition_epoch: p.partition_epoch });
                } else if p.target_replicas.iter().all(|r| p.isr.contains(r)) {
                    out.push(MetaCommand::CompleteReassignment { topic: t.name.clone(), partition: i as i32, expected_partition_epoch: p.partition_epoch });
                } else {
                    in_flight += 1;
                }
            }
        }
        let shape = (live, draining);
        if shape != self.shape {
            // The first tick of a new controller learns the shape; that is no membership change
            // (its first round runs anyway, see `active`).
            if self.seen_shape {
                self.changed_at = Some(now);
            }
            self.shape = shape;
            self.seen_shape = true;
        }
        if requested {
            self.active = true;
            self.changed_at = None;
            self.movable_user_placed = user_placed(state);
        }
        if let Some(at) = self.changed_at {
            if now.saturating_duration_since(at) >= Duration::from_millis(MEMBERSHIP_DEBOUNCE_MS) {
                self.changed_at = None;
                self.active = true;
                self.movable_user_placed = user_placed(state);
            }
        }
        if !self.active || !out.is_empty() || in_flight >= MOVES_IN_FLIGHT_MAX {
            return out;
        }
        let moves: Vec<Move> = plan(state, &sizes())
            .into_iter()
            .filter(|m| {
                let (topic, partition) = m.topic_partition();
                let pinned = state.topics.get(topic).and_then(|t| t.partitions.get(partition as usize)).is_some_and(|p| p.user_placed);
                // A replica on a broker that is leaving moves whatever placed it: a drain must finish.
                let leaving = matches!(m, Move::Replica { from, .. } if self.shape.1.contains(from) || state.removed_brokers.contains(from));
                !pinned || leaving || self.movable_user_placed.contains(&TopicPartition::new(topic, partition))
            })
            .collect();
        if moves.is_empty() {
            self.active = false;
            self.movable_user_placed.clear();
            return out;
        }
        let mut started = BTreeSet::new();
        for m in moves {
            if in_flight >= MOVES_IN_FLIGHT_MAX {
                break;
            }
            let (topic, partition) = m.topic_partition();
            // One move per partition per round: the plan's later steps for it are made from the
            // placement this one leaves, next round.
            if !started.insert((topic.to_string(), partition)) {
                continue;
            }
            let Some(p) = state.topics.get(topic).and_then(|t| t.partitions.get(partition as usize)) else { continue };
            if p.moving() {
                continue; // its next step is planned once the running move completes
            }
            let target = match &m {
                Move::Replica { replicas, .. } | Move::Leader { replicas, .. } => replicas.clone(),
            };
            tracing::info!(?m, "rebalance: starting a move");
            out.push(MetaCommand::StartReassignment {
                topic: topic.to_string(),
                partition,
                target,
                expected_partition_epoch: p.partition_epoch,
                by_user: false,
            });
            in_flight += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_cluster::cluster;
    use chronik_raft::BrokerNode;
    use std::collections::BTreeMap;


    #[test]
    fn a_new_broker_gets_moves_after_the_debounce_a_bounded_number_at_a_time() {
        let s = cluster(&[1, 2, 3], &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2], &[1, 3, 2], &[2, 1, 3], &[3, 2, 1]]);
        let mut r = Rebalancer::default();
        let t0 = Instant::now();
        assert!(r.tick(&s, PartitionSizes::unknown, t0, false).is_empty(), "balanced: nothing to do");
        let mut s = s;
        s.apply(&MetaCommand::RegisterBroker { id: 4, node: BrokerNode::default(), incarnation: None });
        assert!(r.tick(&s, PartitionSizes::unknown, t0 + Duration::from_secs(1), false).is_empty(), "within the debounce");
        let cmds = r.tick(&s, PartitionSizes::unknown, t0 + Duration::from_millis(1_000 + MEMBERSHIP_DEBOUNCE_MS), false);
        assert_eq!(cmds.len(), MOVES_IN_FLIGHT_MAX, "{cmds:?}");
        for c in &cmds {
            assert_eq!(s.apply(c), chronik_raft::MetaResponse::Ok, "{c:?}");
        }
        // Moves in flight: no more start until they complete; a move completes once its target is in sync.
        assert!(r.tick(&s, PartitionSizes::unknown, t0 + Duration::from_secs(20), false).is_empty());
        let moving = s.topics["t"].partitions.iter().position(|p| p.moving());
        let (i, p) = match moving {
            Some(i) => (i, s.topics["t"].partitions[i].clone()),
            None => panic!("a move was started"),
        };
        // The new replica caught up: the leader puts it in the ISR.
        let set = MetaCommand::SetPartitionState { topic: "t".into(), partition: i as i32, leader: p.leader, isr: p.replicas.clone(), expected_partition_epoch: p.partition_epoch };
        assert_eq!(s.apply(&set), chronik_raft::MetaResponse::Ok);
        let cmds = r.tick(&s, PartitionSizes::unknown, t0 + Duration::from_secs(21), false);
        assert!(matches!(cmds.as_slice(), [MetaCommand::CompleteReassignment { .. }]), "{cmds:?}");
    }

    #[test]
    fn a_move_onto_a_broker_that_is_gone_is_cancelled() {
        let mut s = cluster(&[1, 2, 3, 4], &[&[1, 2, 3]]);
        let start = MetaCommand::StartReassignment { topic: "t".into(), partition: 0, target: vec![2, 3, 4], expected_partition_epoch: 0, by_user: false };
        assert_eq!(s.apply(&start), chronik_raft::MetaResponse::Ok);
        let mut r = Rebalancer::default();
        assert!(r.tick(&s, PartitionSizes::unknown, Instant::now(), false).is_empty(), "4 is live and catching up: wait");
        s.apply(&MetaCommand::RemoveBroker { id: 4 });
        let cmds = r.tick(&s, PartitionSizes::unknown, Instant::now(), false);
        assert!(matches!(cmds.as_slice(), [MetaCommand::CancelReassignment { .. }]), "{cmds:?}");
        assert_eq!(s.apply(&cmds[0]), chronik_raft::MetaResponse::Ok);
        assert_eq!(s.topics["t"].partitions[0].replicas, vec![1, 2, 3]);
    }

    /// Run the rebalancer against the state until it has nothing left to do, completing each move
    /// as if its new replica had caught up at once; the commands it wrote.
    fn run_to_the_end(s: &mut MetadataState, r: &mut Rebalancer, t0: Instant) -> usize {
        let mut written = 0;
        for round in 0..100u64 {
            let now = t0 + Duration::from_secs(round);
            let cmds = r.tick(s, PartitionSizes::unknown, now, round == 0);
            if cmds.is_empty() && !s.topics["t"].partitions.iter().any(|p| p.moving()) {
                return written;
            }
            for c in cmds {
                assert_eq!(s.apply(&c), chronik_raft::MetaResponse::Ok, "{c:?}");
                written += 1;
            }
            let caught_up: Vec<(usize, chronik_raft::PartitionRecord)> =
                s.topics["t"].partitions.iter().cloned().enumerate().filter(|(_, p)| p.moving()).collect();
            for (i, p) in caught_up {
                let set = MetaCommand::SetPartitionState { topic: "t".into(), partition: i as i32, leader: p.leader, isr: p.replicas.clone(), expected_partition_epoch: p.partition_epoch };
                assert_eq!(s.apply(&set), chronik_raft::MetaResponse::Ok);
            }
        }
        panic!("the rebalancer did not settle in 100 rounds");
    }

    #[test]
    fn a_draining_broker_is_emptied_and_then_reported_drained() {
        let mut s = cluster(&[1, 2, 3, 4], &[&[1, 2, 3], &[2, 3, 4], &[3, 4, 1], &[4, 1, 2]]);
        assert!(drained(&s).is_empty());
        assert_eq!(s.apply(&MetaCommand::SetDraining { id: 4, draining: true }), chronik_raft::MetaResponse::Ok);
        assert!(drained(&s).is_empty(), "4 still holds replicas");
        let mut r = Rebalancer::default();
        assert!(run_to_the_end(&mut s, &mut r, Instant::now()) > 0);
        assert!(s.replicas_on(4).is_empty(), "{:?}", s.topics["t"].partitions);
        assert_eq!(drained(&s), vec![4]);
        for p in &s.topics["t"].partitions {
            assert_eq!(p.replicas.len(), 3, "replication factor kept: {p:?}");
        }
    }

    #[test]
    fn replicas_of_a_force_removed_broker_are_recreated_elsewhere() {
        let mut s = cluster(&[1, 2, 3, 4], &[&[1, 2, 4], &[2, 4, 3]]);
        s.apply(&MetaCommand::FenceBroker { id: 4 });
        s.apply(&MetaCommand::RemoveBroker { id: 4 });
        let mut r = Rebalancer::default();
        run_to_the_end(&mut s, &mut r, Instant::now());
        for p in &s.topics["t"].partitions {
            assert!(!p.replicas.contains(&4) && p.replicas.len() == 3, "{p:?}");
        }
    }

    /// A user's move (by_user) is completed like the rebalancer's own, and its placement is not
    /// undone by a round the user did not start; a later membership change may move it again.
    #[test]
    fn a_user_placement_is_completed_and_not_rebalanced_back() {
        let mut s = cluster(&[1, 2, 3], &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2]]);
        let mut r = Rebalancer::default();
        let t0 = Instant::now();
        assert!(r.tick(&s, PartitionSizes::unknown, t0, false).is_empty(), "balanced");
        // The user makes 1 the preferred leader of partition 1 too: unbalanced, the planner would undo it.
        let user = MetaCommand::StartReassignment { topic: "t".into(), partition: 1, target: vec![1, 2, 3], expected_partition_epoch: 0, by_user: true };
        assert_eq!(s.apply(&user), chronik_raft::MetaResponse::Ok);
        let cmds = r.tick(&s, PartitionSizes::unknown, t0, false);
        assert!(matches!(cmds.as_slice(), [MetaCommand::CompleteReassignment { .. }]), "{cmds:?}");
        assert_eq!(s.apply(&cmds[0]), chronik_raft::MetaResponse::Ok);
        assert_eq!(s.topics["t"].partitions[1].replicas, vec![1, 2, 3]);
        // The planner would hand partition 0's leadership to 2 instead; say the user placed that one
        // earlier too (asking for its current placement marks it).
        let pin = MetaCommand::StartReassignment { topic: "t".into(), partition: 0, target: vec![1, 2, 3], expected_partition_epoch: 0, by_user: true };
        assert_eq!(s.apply(&pin), chronik_raft::MetaResponse::Ok);
        let planned: Vec<i32> = plan(&s, &PartitionSizes::unknown()).iter().map(|m| m.topic_partition().1).collect();
        assert!(!planned.is_empty() && planned.iter().all(|p| *p <= 1), "the planner would move a user's partition: {planned:?}");
        assert!(r.tick(&s, PartitionSizes::unknown, t0 + Duration::from_secs(60), false).is_empty(), "no round: nothing moves");
        let mut fresh = Rebalancer::default();
        assert!(fresh.tick(&s, PartitionSizes::unknown, t0, false).is_empty(), "a new controller's first round leaves the user's placement");
        // An explicit rebalance may move them.
        let cmds = r.tick(&s, PartitionSizes::unknown, t0 + Duration::from_secs(61), true);
        assert!(cmds.iter().any(|c| matches!(c, MetaCommand::StartReassignment { partition: 0 | 1, by_user: false, .. })), "{cmds:?}");
    }

    fn reports(list: &[(u64, &[(i32, u64)])]) -> BTreeMap<u64, std::sync::Arc<chronik_raft::SizeReport>> {
        list.iter()
            .map(|(b, rs)| (*b, std::sync::Arc::new(chronik_raft::SizeReport { replicas: rs.iter().map(|(p, n)| ("t".to_string(), *p, *n)).collect() })))
            .collect()
    }

    #[test]
    fn the_view_uses_reported_sizes_once_every_live_broker_reported() {
        let s = cluster(&[1, 2, 3], &[&[1, 2], &[2, 3], &[3, 1]]);
        let partial = reports(&[(1, &[(0, 1_000), (2, 30)]), (2, &[(0, 1_000), (1, 200)])]);
        let sizes_of = |r| view(&s, &PartitionSizes::from_reports(&s, r)).1.iter().map(|p| p.size_bytes).collect::<Vec<_>>();
        assert_eq!(sizes_of(&partial), vec![0, 0, 0], "broker 3 has not reported: no sizes yet");
        let all = reports(&[(1, &[(0, 1_000), (2, 30)]), (2, &[(0, 990), (1, 200)]), (3, &[(1, 190), (2, 40)])]);
        assert_eq!(sizes_of(&all), vec![1_000, 200, 40], "each partition's leader's size");
    }

    #[test]
    fn uneven_sizes_on_three_to_four_nodes_move_bytes_toward_balance() {
        // Six partitions on three brokers, two of them large; broker 4 is new and empty.
        let lists: &[&[i32]] = &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2], &[1, 3, 2], &[2, 1, 3], &[3, 2, 1]];
        let s = cluster(&[1, 2, 3, 4], lists);
        let big: [u64; 6] = [10_000, 10_000, 100, 100, 100, 100];
        let on = |b: i32| -> Vec<(i32, u64)> { (0..6).filter(|i| lists[*i].contains(&b)).map(|i| (i as i32, big[i])).collect() };
        let (r1, r2, r3) = (on(1), on(2), on(3));
        let r = reports(&[(1, &r1), (2, &r2), (3, &r3), (4, &[])]);
        let sizes = PartitionSizes::from_reports(&s, &r);
        // (bytes on the fullest broker) - (bytes on the emptiest) once `moves` are done.
        let spread = |moves: &[Move]| -> u64 {
            let mut placed: Vec<Vec<i32>> = lists.iter().map(|l| l.to_vec()).collect();
            for m in moves {
                let (Move::Replica { partition, replicas, .. } | Move::Leader { partition, replicas, .. }) = m;
                placed[*partition as usize] = replicas.clone();
            }
            let per: Vec<u64> = (1..=4).map(|b| (0..6).filter(|i| placed[*i].contains(&b)).map(|i| big[i]).sum()).collect();
            per.iter().max().copied().unwrap_or(0) - per.iter().min().copied().unwrap_or(0)
        };
        let by_count = plan(&s, &PartitionSizes::unknown());
        let by_bytes = plan(&s, &sizes);
        // Six large replicas on four brokers: at best two brokers hold two and two hold one.
        assert!(spread(&by_bytes) <= 10_000 + 400, "spread {} after {by_bytes:?}", spread(&by_bytes));
        assert!(spread(&by_bytes) <= spread(&by_count), "bytes {} vs count only {}: {by_count:?}", spread(&by_bytes), spread(&by_count));
    }
}
