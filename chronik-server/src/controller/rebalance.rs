//! The rebalancer, run by the controller on each tick while it leads: it finishes moves whose data is
//! in place and starts new ones from the planner (`chronik_rebalancer::plan`), a bounded number at a
//! time, after a membership change (debounced) or when asked (`POST /admin/rebalance`).
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

/// Moves started and not yet completed, at most, across the cluster.
pub const MOVES_IN_FLIGHT_MAX: usize = 2;
/// Quiet time after a change of the live broker set before a plan is made (several nodes joining
/// one after another get one plan).
pub const MEMBERSHIP_DEBOUNCE_MS: u64 = 5_000;

/// The rebalancer's memory between ticks (only while this node leads; a new leader starts fresh and
/// plans once, which finds nothing to do on a balanced cluster).
#[derive(Debug)]
pub struct Rebalancer {
    live: BTreeSet<i32>,
    /// Whether `live` was learned yet (false until the first tick).
    seen_live: bool,
    changed_at: Option<Instant>,
    /// Keep planning until the plan is empty.
    active: bool,
    /// User-placed partitions this round may move: those marked when a membership change or an
    /// explicit request started it. Empty for a new controller's first round.
    movable_user_placed: BTreeSet<(String, i32)>,
}

impl Default for Rebalancer {
    fn default() -> Self {
        Rebalancer { live: BTreeSet::new(), seen_live: false, changed_at: None, active: true, movable_user_placed: BTreeSet::new() }
    }
}

/// Partitions whose placement a Kafka admin client asked for.
fn user_placed(state: &MetadataState) -> BTreeSet<(String, i32)> {
    state
        .topics
        .values()
        .flat_map(|t| t.partitions.iter().enumerate().filter(|(_, p)| p.user_placed).map(move |(i, _)| (t.name.clone(), i as i32)))
        .collect()
}

/// The planner's view of the metadata: live, non-draining brokers; every partition, one that is moving
/// as it will be once the move completes (sizes are not known to the controller yet, so all count the
/// same).
pub fn view(state: &MetadataState) -> (Vec<BrokerView>, Vec<PartitionView>) {
    let brokers = state
        .brokers
        .values()
        .map(|b| BrokerView { id: b.id, rack: b.node.rack.clone(), live: !b.fenced, draining: false })
        .collect();
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
                size_bytes: 0,
            })
        })
        .collect();
    (brokers, partitions)
}

/// The moves the planner would make now.
pub fn plan(state: &MetadataState) -> Vec<Move> {
    let (brokers, partitions) = view(state);
    chronik_rebalancer::plan(&brokers, &partitions)
}

impl Rebalancer {
    /// The commands to write this tick, in order: completions of moves whose targets are all in the
    /// ISR, then new moves up to [`MOVES_IN_FLIGHT_MAX`] when a round is due (`requested`: an operator
    /// asked for one).
    pub fn tick(&mut self, state: &MetadataState, now: Instant, requested: bool) -> Vec<MetaCommand> {
        let mut out = Vec::new();
        let mut in_flight = 0;
        let live: BTreeSet<i32> = state.live_brokers().map(|b| b.id).collect();
        for t in state.topics.values() {
            for (i, p) in t.partitions.iter().enumerate() {
                if !p.moving() {
                    continue;
                }
                if p.adding_replicas.iter().any(|r| !live.contains(r)) {
                    // A broker the move was adding died or was removed: it can never catch up.
                    tracing::info!(topic = %t.name, partition = i, target = ?p.target_replicas, "rebalance: cancelling a move onto a broker that is gone");
                    out.push(MetaCommand::CancelReassignment { topic: t.name.clone(), partition: i as i32, expected_partition_epoch: p.partition_epoch });
                } else if p.target_replicas.iter().all(|r| p.isr.contains(r)) {
                    out.push(MetaCommand::CompleteReassignment { topic: t.name.clone(), partition: i as i32, expected_partition_epoch: p.partition_epoch });
                } else {
                    in_flight += 1;
                }
            }
        }
        if live != self.live {
            // The first tick of a new controller learns the live set; that is no membership change
            // (its first round runs anyway, see `active`).
            if self.seen_live {
                self.changed_at = Some(now);
            }
            self.live = live;
            self.seen_live = true;
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
        let moves: Vec<Move> = plan(state)
            .into_iter()
            .filter(|m| {
                let (topic, partition) = m.topic_partition();
                let pinned = state.topics.get(topic).and_then(|t| t.partitions.get(partition as usize)).is_some_and(|p| p.user_placed);
                !pinned || self.movable_user_placed.contains(&(topic.to_string(), partition))
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
    use chronik_raft::BrokerNode;
    use std::collections::BTreeMap;

    fn cluster(brokers: &[i32], lists: &[&[i32]]) -> MetadataState {
        let mut s = MetadataState::default();
        for id in brokers {
            s.apply(&MetaCommand::RegisterBroker { id: *id, node: BrokerNode::default(), incarnation: None });
        }
        let replicas = lists.iter().map(|l| l.to_vec()).collect();
        s.apply(&MetaCommand::CreateTopic { name: "t".into(), topic_id: [1; 16], replicas, configs: BTreeMap::new() });
        s
    }

    #[test]
    fn a_new_broker_gets_moves_after_the_debounce_a_bounded_number_at_a_time() {
        let s = cluster(&[1, 2, 3], &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2], &[1, 3, 2], &[2, 1, 3], &[3, 2, 1]]);
        let mut r = Rebalancer::default();
        let t0 = Instant::now();
        assert!(r.tick(&s, t0, false).is_empty(), "balanced: nothing to do");
        let mut s = s;
        s.apply(&MetaCommand::RegisterBroker { id: 4, node: BrokerNode::default(), incarnation: None });
        assert!(r.tick(&s, t0 + Duration::from_secs(1), false).is_empty(), "within the debounce");
        let cmds = r.tick(&s, t0 + Duration::from_millis(1_000 + MEMBERSHIP_DEBOUNCE_MS), false);
        assert_eq!(cmds.len(), MOVES_IN_FLIGHT_MAX, "{cmds:?}");
        for c in &cmds {
            assert_eq!(s.apply(c), chronik_raft::MetaResponse::Ok, "{c:?}");
        }
        // Moves in flight: no more start until they complete; a move completes once its target is in sync.
        assert!(r.tick(&s, t0 + Duration::from_secs(20), false).is_empty());
        let moving = s.topics["t"].partitions.iter().position(|p| p.moving());
        let (i, p) = match moving {
            Some(i) => (i, s.topics["t"].partitions[i].clone()),
            None => panic!("a move was started"),
        };
        // The new replica caught up: the leader puts it in the ISR.
        let set = MetaCommand::SetPartitionState { topic: "t".into(), partition: i as i32, leader: p.leader, isr: p.replicas.clone(), expected_partition_epoch: p.partition_epoch };
        assert_eq!(s.apply(&set), chronik_raft::MetaResponse::Ok);
        let cmds = r.tick(&s, t0 + Duration::from_secs(21), false);
        assert!(matches!(cmds.as_slice(), [MetaCommand::CompleteReassignment { .. }]), "{cmds:?}");
    }

    #[test]
    fn a_move_onto_a_broker_that_is_gone_is_cancelled() {
        let mut s = cluster(&[1, 2, 3, 4], &[&[1, 2, 3]]);
        let start = MetaCommand::StartReassignment { topic: "t".into(), partition: 0, target: vec![2, 3, 4], expected_partition_epoch: 0, by_user: false };
        assert_eq!(s.apply(&start), chronik_raft::MetaResponse::Ok);
        let mut r = Rebalancer::default();
        assert!(r.tick(&s, Instant::now(), false).is_empty(), "4 is live and catching up: wait");
        s.apply(&MetaCommand::RemoveBroker { id: 4 });
        let cmds = r.tick(&s, Instant::now(), false);
        assert!(matches!(cmds.as_slice(), [MetaCommand::CancelReassignment { .. }]), "{cmds:?}");
        assert_eq!(s.apply(&cmds[0]), chronik_raft::MetaResponse::Ok);
        assert_eq!(s.topics["t"].partitions[0].replicas, vec![1, 2, 3]);
    }

    /// A user's move (by_user) is completed like the rebalancer's own, and its placement is not
    /// undone by a round the user did not start; a later membership change may move it again.
    #[test]
    fn a_user_placement_is_completed_and_not_rebalanced_back() {
        let mut s = cluster(&[1, 2, 3], &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2]]);
        let mut r = Rebalancer::default();
        let t0 = Instant::now();
        assert!(r.tick(&s, t0, false).is_empty(), "balanced");
        // The user makes 1 the preferred leader of partition 1 too: unbalanced, the planner would undo it.
        let user = MetaCommand::StartReassignment { topic: "t".into(), partition: 1, target: vec![1, 2, 3], expected_partition_epoch: 0, by_user: true };
        assert_eq!(s.apply(&user), chronik_raft::MetaResponse::Ok);
        let cmds = r.tick(&s, t0, false);
        assert!(matches!(cmds.as_slice(), [MetaCommand::CompleteReassignment { .. }]), "{cmds:?}");
        assert_eq!(s.apply(&cmds[0]), chronik_raft::MetaResponse::Ok);
        assert_eq!(s.topics["t"].partitions[1].replicas, vec![1, 2, 3]);
        // The planner would hand partition 0's leadership to 2 instead; say the user placed that one
        // earlier too (asking for its current placement marks it).
        let pin = MetaCommand::StartReassignment { topic: "t".into(), partition: 0, target: vec![1, 2, 3], expected_partition_epoch: 0, by_user: true };
        assert_eq!(s.apply(&pin), chronik_raft::MetaResponse::Ok);
        let planned: Vec<i32> = plan(&s).iter().map(|m| m.topic_partition().1).collect();
        assert!(!planned.is_empty() && planned.iter().all(|p| *p <= 1), "the planner would move a user's partition: {planned:?}");
        assert!(r.tick(&s, t0 + Duration::from_secs(60), false).is_empty(), "no round: nothing moves");
        let mut fresh = Rebalancer::default();
        assert!(fresh.tick(&s, t0, false).is_empty(), "a new controller's first round leaves the user's placement");
        // An explicit rebalance may move them.
        let cmds = r.tick(&s, t0 + Duration::from_secs(61), true);
        assert!(cmds.iter().any(|c| matches!(c, MetaCommand::StartReassignment { partition: 0 | 1, by_user: false, .. })), "{cmds:?}");
    }
}
