//! Partition reassignment in the metadata (Kafka's KIP-455 shape): a move is started, carried out by
//! the replication that already exists (new replicas are followers that fetch and join the ISR), and
//! completed — or cancelled — by single commands, each checked against the partition epoch it was
//! decided on. Data first: the leaving replicas go only in the step that finds every target replica
//! in the ISR, so a move never leaves a partition with fewer in-sync replicas than its target has.
//!
//! During a move `replicas` = the old list (in its order, so the preferred leader stays) followed by
//! the replicas being added; `adding_replicas` are the target replicas that were not replicas before,
//! `removing_replicas` the old ones not in the target, `target_replicas` the list it ends with.

use crate::command::MetaResponse;
use crate::state::{MetadataState, PartitionRecord, NO_LEADER};

impl PartitionRecord {
    /// Whether a move (possibly only a new order of the same replicas) is in progress.
    pub fn moving(&self) -> bool {
        !self.target_replicas.is_empty()
    }
}

impl MetadataState {
    /// The partition, checked against the epoch a change was computed from.
    fn partition_at(&mut self, topic: &str, partition: i32, expected_epoch: i32) -> Result<&mut PartitionRecord, MetaResponse> {
        let Some(t) = self.topics.get_mut(topic) else { return Err(MetaResponse::UnknownTopic) };
        let count = t.partitions.len();
        let Some(p) = usize::try_from(partition).ok().and_then(|i| t.partitions.get_mut(i)) else {
            return Err(MetaResponse::InvalidPartitions(format!("topic {topic}: partition {partition} does not exist ({count} partitions)")));
        };
        if p.partition_epoch != expected_epoch {
            return Err(MetaResponse::InvalidPartitions(format!(
                "topic {topic} partition {partition}: partition epoch is {}, not the expected {expected_epoch}",
                p.partition_epoch
            )));
        }
        Ok(p)
    }

    pub(crate) fn start_reassignment(&mut self, topic: &str, partition: i32, target: &[i32], expected_epoch: i32, by_user: bool) -> MetaResponse {
        if let Err(why) = self.validate_new_partitions(topic, 0, &[target.to_vec()]) {
            return MetaResponse::InvalidPartitions(why);
        }
        let p = match self.partition_at(topic, partition, expected_epoch) {
            Ok(p) => p,
            Err(r) => return r,
        };
        if p.moving() {
            return MetaResponse::InvalidPartitions(format!(
                "topic {topic} partition {partition}: a move to {:?} is already in progress",
                p.target_replicas
            ));
        }
        if p.replicas.as_slice() == target {
            // Nothing to move; a user asking for the current placement still pins it.
            if by_user && !p.user_placed {
                p.user_placed = true;
                p.partition_epoch = p.partition_epoch.saturating_add(1);
            }
            return MetaResponse::Ok;
        }
        let adding: Vec<i32> = target.iter().copied().filter(|b| !p.replicas.contains(b)).collect();
        let removing: Vec<i32> = p.replicas.iter().copied().filter(|b| !target.contains(b)).collect();
        p.replicas = p.replicas.iter().chain(adding.iter()).copied().collect();
        p.adding_replicas = adding;
        p.removing_replicas = removing;
        p.target_replicas = target.to_vec();
        p.user_placed = by_user;
        p.partition_epoch = p.partition_epoch.saturating_add(1);
        MetaResponse::Ok
    }

    pub(crate) fn complete_reassignment(&mut self, topic: &str, partition: i32, expected_epoch: i32) -> MetaResponse {
        let p = match self.partition_at(topic, partition, expected_epoch) {
            Ok(p) => p,
            Err(r) => return r,
        };
        if !p.moving() {
            return MetaResponse::InvalidPartitions(format!("topic {topic} partition {partition}: no move in progress"));
        }
        let target = p.target_replicas.clone();
        let missing: Vec<i32> = target.iter().copied().filter(|b| !p.isr.contains(b)).collect();
        if !missing.is_empty() {
            return MetaResponse::InvalidPartitions(format!(
                "topic {topic} partition {partition}: target replicas {missing:?} are not in the ISR {:?} yet",
                p.isr
            ));
        }
        let isr: Vec<i32> = target.iter().copied().filter(|b| p.isr.contains(b)).collect();
        if !target.contains(&p.leader) {
            // The first target replica (all are in the ISR) takes over from a leaving leader.
            p.leader = target.first().copied().unwrap_or(NO_LEADER);
            p.leader_epoch = p.leader_epoch.saturating_add(1);
        }
        p.replicas = target;
        p.isr = isr;
        p.adding_replicas.clear();
        p.removing_replicas.clear();
        p.target_replicas.clear();
        p.partition_epoch = p.partition_epoch.saturating_add(1);
        MetaResponse::Ok
    }

    pub(crate) fn cancel_reassignment(&mut self, topic: &str, partition: i32, expected_epoch: i32) -> MetaResponse {
        let p = match self.partition_at(topic, partition, expected_epoch) {
            Ok(p) => p,
            Err(r) => return r,
        };
        if !p.moving() {
            return MetaResponse::InvalidPartitions(format!("topic {topic} partition {partition}: no move in progress"));
        }
        let adding = std::mem::take(&mut p.adding_replicas);
        p.removing_replicas.clear();
        p.target_replicas.clear();
        p.user_placed = false;
        let original: Vec<i32> = p.replicas.iter().copied().filter(|b| !adding.contains(b)).collect();
        let isr: Vec<i32> = p.isr.iter().copied().filter(|b| !adding.contains(b)).collect();
        if adding.contains(&p.leader) {
            // A new replica led already: the first old in-sync replica takes over, or none is left.
            p.leader = original.iter().copied().find(|b| isr.contains(b)).unwrap_or(NO_LEADER);
            p.leader_epoch = p.leader_epoch.saturating_add(1);
        }
        p.replicas = original;
        p.isr = isr;
        p.partition_epoch = p.partition_epoch.saturating_add(1);
        MetaResponse::Ok
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::command::{MetaCommand, MetaResponse};
    use crate::state::MetadataState;
    use crate::types::BrokerNode;

    fn state() -> MetadataState {
        let mut s = MetadataState::default();
        for id in 1..=4 {
            s.apply(&MetaCommand::RegisterBroker { id, node: BrokerNode::default(), incarnation: None });
        }
        s.apply(&MetaCommand::CreateTopic { name: "t".into(), topic_id: [1; 16], replicas: vec![vec![1, 2, 3]], configs: BTreeMap::new() });
        s
    }

    fn epoch(s: &MetadataState) -> i32 {
        s.topics["t"].partitions[0].partition_epoch
    }

    fn start(s: &MetadataState, target: Vec<i32>) -> MetaCommand {
        MetaCommand::StartReassignment { topic: "t".into(), partition: 0, target, expected_partition_epoch: epoch(s), by_user: false }
    }

    fn complete(s: &MetadataState) -> MetaCommand {
        MetaCommand::CompleteReassignment { topic: "t".into(), partition: 0, expected_partition_epoch: epoch(s) }
    }

    fn set_isr(s: &MetadataState, isr: Vec<i32>) -> MetaCommand {
        let p = &s.topics["t"].partitions[0];
        MetaCommand::SetPartitionState { topic: "t".into(), partition: 0, leader: p.leader, isr, expected_partition_epoch: p.partition_epoch }
    }

    #[test]
    fn a_move_is_data_first_and_completes_only_with_the_target_in_sync() {
        let mut s = state();
        assert_eq!(s.apply(&start(&s, vec![2, 3, 4])), MetaResponse::Ok);
        let p = s.topics["t"].partitions[0].clone();
        assert_eq!((p.replicas.clone(), p.adding_replicas.clone(), p.removing_replicas.clone()), (vec![1, 2, 3, 4], vec![4], vec![1]));
        assert_eq!((p.leader, p.isr.clone()), (1, vec![1, 2, 3]), "nothing moves before the data");
        // Node 4 has not caught up: completing is refused, nothing changes.
        let before = s.clone();
        assert!(matches!(s.apply(&complete(&s)), MetaResponse::InvalidPartitions(m) if m.contains("[4]")));
        assert_eq!(s, before);
        // A second move meanwhile is refused.
        assert!(matches!(s.apply(&start(&s, vec![1, 2, 4])), MetaResponse::InvalidPartitions(_)));
        // 4 joins the ISR (the leader's ISR expansion), then the move completes in one step.
        assert_eq!(s.apply(&set_isr(&s, vec![1, 2, 3, 4])), MetaResponse::Ok);
        let epoch_before = s.topics["t"].partitions[0].leader_epoch;
        assert_eq!(s.apply(&complete(&s)), MetaResponse::Ok);
        let p = &s.topics["t"].partitions[0];
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![2, 3, 4], vec![2, 3, 4], 2));
        assert_eq!(p.leader_epoch, epoch_before + 1, "the leaving leader hands over with a new epoch");
        assert!(p.adding_replicas.is_empty() && p.removing_replicas.is_empty());
    }

    #[test]
    fn a_cancel_restores_the_old_replicas() {
        let mut s = state();
        assert_eq!(s.apply(&start(&s, vec![4, 2, 3])), MetaResponse::Ok);
        assert_eq!(s.apply(&set_isr(&s, vec![1, 2, 3, 4])), MetaResponse::Ok);
        let cancel = MetaCommand::CancelReassignment { topic: "t".into(), partition: 0, expected_partition_epoch: epoch(&s) };
        assert_eq!(s.apply(&cancel), MetaResponse::Ok);
        let p = &s.topics["t"].partitions[0];
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![1, 2, 3], vec![1, 2, 3], 1), "the old list, in its order");
        assert!(matches!(s.apply(&complete(&s)), MetaResponse::InvalidPartitions(m) if m.contains("no move")));
    }

    #[test]
    fn a_new_order_of_the_same_replicas_is_a_move_too() {
        let mut s = state();
        assert_eq!(s.apply(&start(&s, vec![3, 1, 2])), MetaResponse::Ok);
        assert!(s.topics["t"].partitions[0].moving());
        assert_eq!(s.apply(&complete(&s)), MetaResponse::Ok);
        let p = &s.topics["t"].partitions[0];
        assert_eq!((p.replicas.clone(), p.leader), (vec![3, 1, 2], 1), "the preferred leader changes; the leader follows later");
        assert!(!p.moving());
    }

    #[test]
    fn moves_are_checked_like_any_partition_change() {
        let mut s = state();
        let stale = MetaCommand::StartReassignment { topic: "t".into(), partition: 0, target: vec![2, 3, 4], expected_partition_epoch: 9, by_user: false };
        assert!(matches!(s.apply(&stale), MetaResponse::InvalidPartitions(_)));
        for bad in [vec![], vec![2, 2, 4], vec![2, 3, 9]] {
            assert!(matches!(s.apply(&start(&s, bad.clone())), MetaResponse::InvalidPartitions(_)), "{bad:?}");
        }
        let before = s.clone();
        assert_eq!(s.apply(&start(&s, vec![1, 2, 3])), MetaResponse::Ok, "the current list is no move");
        assert_eq!(s, before);
    }

    #[test]
    fn a_user_placement_is_marked_until_the_rebalancer_moves_it() {
        let mut s = state();
        let user = MetaCommand::StartReassignment { topic: "t".into(), partition: 0, target: vec![2, 3, 4], expected_partition_epoch: epoch(&s), by_user: true };
        assert_eq!(s.apply(&user), MetaResponse::Ok);
        assert!(s.topics["t"].partitions[0].user_placed);
        assert_eq!(s.apply(&set_isr(&s, vec![1, 2, 3, 4])), MetaResponse::Ok);
        assert_eq!(s.apply(&complete(&s)), MetaResponse::Ok);
        assert!(s.topics["t"].partitions[0].user_placed, "the mark outlives the move");
        assert_eq!(s.apply(&start(&s, vec![1, 3, 4])), MetaResponse::Ok);
        assert!(!s.topics["t"].partitions[0].user_placed, "a rebalancer move clears it");
        // Asking for the current placement pins it without a move.
        let mut s = state();
        let same = MetaCommand::StartReassignment { topic: "t".into(), partition: 0, target: vec![1, 2, 3], expected_partition_epoch: epoch(&s), by_user: true };
        assert_eq!(s.apply(&same), MetaResponse::Ok);
        let p = &s.topics["t"].partitions[0];
        assert!(p.user_placed && !p.moving());
    }
}
