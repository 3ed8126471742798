//! ListPartitionReassignments (KIP-455): the moves in progress — started by AlterPartitionReassignments
//! or by the rebalancer — with the partition's replica list during the move (old replicas, then the ones
//! being added), the replicas being added and the ones that leave when it completes. A null topic list
//! asks for every move; partitions named that do not exist or are not moving are left out, as Kafka does.

use chronik_raft::{MetadataState, PartitionRecord};
use kafka_protocol::messages::list_partition_reassignments_response::{OngoingPartitionReassignment, OngoingTopicReassignment};
use kafka_protocol::messages::{BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName};

use super::str_bytes;
use crate::broker::Broker;
use crate::wire::context::RequestContext;

fn ids(list: &[i32]) -> Vec<BrokerId> {
    list.iter().map(|b| BrokerId(*b)).collect()
}

fn ongoing(index: i32, p: &PartitionRecord) -> OngoingPartitionReassignment {
    OngoingPartitionReassignment::default()
        .with_partition_index(index)
        .with_replicas(ids(&p.replicas))
        .with_adding_replicas(ids(&p.adding_replicas))
        .with_removing_replicas(ids(&p.removing_replicas))
}

/// The moves in progress among `wanted` (topic, partitions), or all of them.
pub fn list(state: &MetadataState, wanted: Option<Vec<(String, Vec<i32>)>>) -> Vec<OngoingTopicReassignment> {
    let wanted: Vec<(String, Option<Vec<i32>>)> = match wanted {
        Some(w) => w.into_iter().map(|(t, ps)| (t, Some(ps))).collect(),
        None => state.topics.keys().map(|t| (t.clone(), None)).collect(),
    };
    let mut out = Vec::new();
    for (topic, partitions) in wanted {
        let Some(t) = state.topics.get(&topic) else { continue };
        let moving = t.partitions.iter().enumerate().filter(|(i, p)| {
            p.moving() && partitions.as_ref().is_none_or(|ps| ps.contains(&(*i as i32)))
        });
        let found: Vec<_> = moving.map(|(i, p)| ongoing(i as i32, p)).collect();
        if !found.is_empty() {
            out.push(OngoingTopicReassignment::default().with_name(TopicName(str_bytes(&topic))).with_partitions(found));
        }
    }
    out
}

pub fn handle(broker: &Broker, _ctx: &RequestContext, req: ListPartitionReassignmentsRequest) -> ListPartitionReassignmentsResponse {
    let wanted = req.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
    ListPartitionReassignmentsResponse::default().with_topics(list(&broker.meta.state(), wanted))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chronik_raft::{BrokerNode, MetaCommand, MetadataState};

    use super::list;

    #[test]
    fn lists_moves_in_progress_with_adding_and_removing_replicas() {
        let mut s = MetadataState::default();
        for id in 1..=4 {
            s.apply(&MetaCommand::RegisterBroker { id, node: BrokerNode::default(), incarnation: None });
        }
        s.apply(&MetaCommand::CreateTopic { name: "t".into(), topic_id: [1; 16], replicas: vec![vec![1, 2, 3], vec![2, 3, 1]], configs: BTreeMap::new() });
        assert!(list(&s, None).is_empty());
        let start = MetaCommand::StartReassignment { topic: "t".into(), partition: 1, target: vec![2, 3, 4], expected_partition_epoch: 0, by_user: true };
        assert_eq!(s.apply(&start), chronik_raft::MetaResponse::Ok);
        let all = list(&s, None);
        assert_eq!(all.len(), 1);
        let p = &all[0].partitions[0];
        let v = |l: &[kafka_protocol::messages::BrokerId]| l.iter().map(|b| b.0).collect::<Vec<_>>();
        assert_eq!((p.partition_index, v(&p.replicas), v(&p.adding_replicas), v(&p.removing_replicas)), (1, vec![2, 3, 1, 4], vec![4], vec![1]));
        assert!(list(&s, Some(vec![("t".into(), vec![0])])).is_empty(), "partition 0 is not moving");
        assert_eq!(list(&s, Some(vec![("t".into(), vec![0, 1]), ("nope".into(), vec![0])])).len(), 1);
    }
}
