//! ElectLeaders (KIP-460). PREFERRED: the first replica becomes leader when it is live and in the ISR,
//! decided by the metadata state machine when the `ElectPreferredLeader` entry is applied — so a
//! request may arrive at any broker; none writes a leader of its own choosing. Answers per partition:
//! ELECTION_NOT_NEEDED when it leads already, PREFERRED_LEADER_NOT_AVAILABLE when it is fenced or out of
//! the ISR, UNKNOWN_TOPIC_OR_PARTITION for what does not exist.
//!
//! UNCLEAN: Chronik has no unclean leader election (a leader from outside the ISR could lose
//! acknowledged records). A partition that has a leader answers ELECTION_NOT_NEEDED, as Kafka does for
//! unclean elections; a leaderless one ELIGIBLE_LEADERS_NOT_AVAILABLE — the controller already elects
//! any live ISR member, so none is eligible. Any other election type is INVALID_REQUEST.
//!
//! A null partition list means every partition; the answer then leaves out those that needed no
//! election (Kafka's behaviour).

use std::sync::Arc;

use chronik_raft::{MetaCommand, MetaResponse, MetadataState, NO_LEADER};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};

use crate::topics::{meta_refusal, Refusal};
use super::str_bytes;
use crate::broker::Broker;
use crate::wire::context::RequestContext;

pub const ELECTION_PREFERRED: i8 = 0;
pub const ELECTION_UNCLEAN: i8 = 1;

/// The answer to an unclean election of one partition, from the applied state.
pub fn unclean(state: &MetadataState, topic: &str, partition: i32) -> Result<(), Refusal> {
    let p = state
        .topics
        .get(topic)
        .and_then(|t| usize::try_from(partition).ok().and_then(|i| t.partitions.get(i)))
        .ok_or_else(|| (ResponseError::UnknownTopicOrPartition, format!("topic {topic} partition {partition} does not exist")))?;
    if p.leader != NO_LEADER {
        return Err((ResponseError::ElectionNotNeeded, format!("broker {} leads", p.leader)));
    }
    Err((ResponseError::EligibleLeadersNotAvailable, "Chronik has no unclean leader election: no in-sync replica is live".into()))
}

async fn preferred(broker: &Arc<Broker>, topic: &str, partition: i32) -> Result<(), Refusal> {
    let cmd = MetaCommand::ElectPreferredLeader { topic: topic.to_string(), partition };
    match crate::reconcile::write_meta(broker, cmd).await.map_err(meta_refusal)? {
        MetaResponse::Ok => Ok(()),
        MetaResponse::ElectionNotNeeded => Err((ResponseError::ElectionNotNeeded, "the preferred replica leads already".into())),
        MetaResponse::PreferredLeaderNotAvailable(m) => Err((ResponseError::PreferredLeaderNotAvailable, m)),
        MetaResponse::UnknownTopic | MetaResponse::InvalidPartitions(_) => {
            Err((ResponseError::UnknownTopicOrPartition, format!("topic {topic} partition {partition} does not exist")))
        }
        other => Err((ResponseError::UnknownServerError, format!("unexpected metadata answer {other:?}"))),
    }
}

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: ElectLeadersRequest) -> ElectLeadersResponse {
    // v0 has no election type: always preferred.
    let election = if ctx.version == 0 { ELECTION_PREFERRED } else { req.election_type };
    let state = broker.meta.state();
    let all = req.topic_partitions.is_none();
    let wanted: Vec<(String, Vec<i32>)> = match req.topic_partitions {
        Some(tps) => tps.into_iter().map(|t| (t.topic.0.to_string(), t.partitions)).collect(),
        None => state.topics.values().map(|t| (t.name.clone(), (0..t.partitions.len() as i32).collect())).collect(),
    };
    let mut results = Vec::with_capacity(wanted.len());
    for (topic, partitions) in wanted {
        let mut out = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let result = match election {
                ELECTION_PREFERRED => preferred(broker, &topic, partition).await,
                ELECTION_UNCLEAN => unclean(&state, &topic, partition),
                other => Err((ResponseError::InvalidRequest, format!("unknown election type {other}"))),
            };
            let entry = PartitionResult::default().with_partition_id(partition);
            match result {
                Ok(()) => out.push(entry),
                Err((ResponseError::ElectionNotNeeded, _)) if all => {}
                Err((code, msg)) => out.push(entry.with_error_code(code.code()).with_error_message(Some(str_bytes(&msg)))),
            }
        }
        if !all || !out.is_empty() {
            results.push(ReplicaElectionResult::default().with_topic(TopicName(str_bytes(&topic))).with_partition_result(out));
        }
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chronik_raft::{BrokerNode, MetaCommand, MetadataState, NO_LEADER};
    use kafka_protocol::error::ResponseError;

    use super::unclean;

    #[test]
    fn unclean_elections_are_never_carried_out() {
        let mut s = MetadataState::default();
        s.apply(&MetaCommand::RegisterBroker { id: 1, node: BrokerNode::default(), incarnation: None });
        s.apply(&MetaCommand::CreateTopic { name: "t".into(), topic_id: [1; 16], replicas: vec![vec![1], vec![1]], configs: BTreeMap::new() });
        let code = |s: &MetadataState, p| unclean(s, "t", p).err().map(|(c, _)| c);
        assert_eq!(code(&s, 0), Some(ResponseError::ElectionNotNeeded));
        assert_eq!(code(&s, 2), Some(ResponseError::UnknownTopicOrPartition));
        let set = MetaCommand::SetPartitionState { topic: "t".into(), partition: 1, leader: NO_LEADER, isr: vec![1], expected_partition_epoch: 0 };
        assert_eq!(s.apply(&set), chronik_raft::MetaResponse::Ok);
        assert_eq!(code(&s, 1), Some(ResponseError::EligibleLeadersNotAvailable));
    }
}
