//! Preferred leader election asked for by a client (Kafka's ElectLeaders, type PREFERRED), decided by
//! the state machine itself: the decision depends only on the applied state at the entry's place in
//! the log, so every node reaches the same one and no broker's possibly stale view is trusted. The
//! rules are the ones the controller's own preferred-leader rule follows (`controller/decide.rs` in
//! chronik-server): the first replica takes over only when it is registered, not fenced and in the
//! ISR — never from outside the ISR (no unclean election).

use crate::command::MetaResponse;
use crate::state::MetadataState;

impl MetadataState {
    pub(crate) fn elect_preferred_leader(&mut self, topic: &str, partition: i32) -> MetaResponse {
        let Some(t) = self.topics.get(topic) else { return MetaResponse::UnknownTopic };
        let count = t.partitions.len();
        let Some(p) = usize::try_from(partition).ok().and_then(|i| t.partitions.get(i)) else {
            return MetaResponse::InvalidPartitions(format!("topic {topic}: partition {partition} does not exist ({count} partitions)"));
        };
        let Some(preferred) = p.replicas.first().copied() else {
            return MetaResponse::PreferredLeaderNotAvailable(format!("topic {topic} partition {partition}: no replicas"));
        };
        if p.leader == preferred {
            return MetaResponse::ElectionNotNeeded;
        }
        let live = self.brokers.get(&preferred).is_some_and(|b| !b.fenced);
        if !live {
            return MetaResponse::PreferredLeaderNotAvailable(format!(
                "topic {topic} partition {partition}: preferred replica {preferred} is not a live broker"
            ));
        }
        if !p.isr.contains(&preferred) {
            return MetaResponse::PreferredLeaderNotAvailable(format!(
                "topic {topic} partition {partition}: preferred replica {preferred} is not in the ISR {:?}",
                p.isr
            ));
        }
        let Some(p) = self.topics.get_mut(topic).and_then(|t| usize::try_from(partition).ok().and_then(|i| t.partitions.get_mut(i))) else {
            return MetaResponse::UnknownTopic;
        };
        p.leader = preferred;
        p.leader_epoch = p.leader_epoch.saturating_add(1);
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

    fn state(leader: i32, isr: Vec<i32>) -> MetadataState {
        let mut s = MetadataState::default();
        for id in 1..=3 {
            s.apply(&MetaCommand::RegisterBroker { id, node: BrokerNode::default(), incarnation: None });
        }
        s.apply(&MetaCommand::CreateTopic { name: "t".into(), topic_id: [1; 16], replicas: vec![vec![1, 2, 3]], configs: BTreeMap::new() });
        let p = &mut s.topics.get_mut("t").map(|t| &mut t.partitions[0]).expect("created");
        p.leader = leader;
        p.isr = isr;
        s
    }

    fn elect(partition: i32) -> MetaCommand {
        MetaCommand::ElectPreferredLeader { topic: "t".into(), partition }
    }

    #[test]
    fn the_preferred_replica_takes_over_when_in_sync_and_live() {
        let mut s = state(2, vec![2, 3, 1]);
        let before = s.topics["t"].partitions[0].clone();
        assert_eq!(s.apply(&elect(0)), MetaResponse::Ok);
        let p = &s.topics["t"].partitions[0];
        assert_eq!((p.leader, p.isr.clone()), (1, vec![2, 3, 1]));
        assert_eq!(p.leader_epoch, before.leader_epoch + 1);
        assert_eq!(p.partition_epoch, before.partition_epoch + 1, "ISR changes of the old epoch are refused");
        assert_eq!(s.apply(&elect(0)), MetaResponse::ElectionNotNeeded, "a second election is not needed");
    }

    #[test]
    fn no_election_outside_the_isr_or_onto_a_fenced_broker() {
        let mut s = state(2, vec![2, 3]);
        let before = s.clone();
        assert!(matches!(s.apply(&elect(0)), MetaResponse::PreferredLeaderNotAvailable(m) if m.contains("ISR")));
        assert_eq!(s, before);
        let mut s = state(2, vec![2, 3, 1]);
        s.apply(&MetaCommand::FenceBroker { id: 1 });
        let before = s.clone();
        assert!(matches!(s.apply(&elect(0)), MetaResponse::PreferredLeaderNotAvailable(m) if m.contains("live")));
        assert_eq!(s, before);
    }

    #[test]
    fn unknown_partitions_are_answered() {
        let mut s = state(1, vec![1, 2, 3]);
        assert_eq!(s.apply(&elect(0)), MetaResponse::ElectionNotNeeded);
        assert!(matches!(s.apply(&elect(5)), MetaResponse::InvalidPartitions(_)));
        assert!(matches!(s.apply(&elect(-1)), MetaResponse::InvalidPartitions(_)));
        let cmd = MetaCommand::ElectPreferredLeader { topic: "nope".into(), partition: 0 };
        assert_eq!(s.apply(&cmd), MetaResponse::UnknownTopic);
    }
}
