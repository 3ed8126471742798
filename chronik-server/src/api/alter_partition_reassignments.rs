//! AlterPartitionReassignments (KIP-455): start, replace or cancel a data-first move of a partition's
//! replicas — the same `StartReassignment` / `CancelReassignment` the rebalancer writes. New replicas
//! fetch as followers; the controller completes the move once every target replica is in the ISR
//! (`controller/rebalance.rs`), and leaves the user's placement alone afterwards (`user_placed`).
//!
//! Kafka's answers: an unknown topic or partition → UNKNOWN_TOPIC_OR_PARTITION; an empty list, a
//! duplicate broker, or a broker that is not a live registered one → INVALID_REPLICA_ASSIGNMENT;
//! cancelling (a null list) with no move running → NO_REASSIGNMENT_IN_PROGRESS. A new target while a
//! move runs replaces it (the running move is cancelled first, as Kafka does).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chronik_raft::{MetaCommand, MetaResponse, MetadataState};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{ReassignablePartitionResponse, ReassignableTopicResponse};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse};

use crate::topics::{meta_refusal, Refusal};
use super::str_bytes;
use crate::broker::Broker;
use crate::wire::context::RequestContext;

/// Tries of one partition's change when the partition epoch moved on between reading and writing
/// (an ISR change of its leader); each try decides again from the newer state.
const ATTEMPTS_MAX: usize = 5;
const RETRY_PAUSE_MS: u64 = 50;

/// What one partition's request amounts to against the current metadata.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// The partition is already where the client wants it (or moving there).
    Nothing,
    Start { target: Vec<i32>, epoch: i32 },
    Cancel { epoch: i32 },
    /// Cancel the running move (at `epoch`), then start the new one.
    Replace { target: Vec<i32>, epoch: i32 },
}

/// Kafka's validation of one partition's entry, decided from `state`.
pub fn decide(state: &MetadataState, topic: &str, partition: i32, replicas: Option<&[i32]>) -> Result<Action, Refusal> {
    let p = state
        .topics
        .get(topic)
        .and_then(|t| usize::try_from(partition).ok().and_then(|i| t.partitions.get(i)))
        .ok_or_else(|| (ResponseError::UnknownTopicOrPartition, format!("topic {topic} partition {partition} does not exist")))?;
    let Some(target) = replicas else {
        if !p.moving() {
            return Err((ResponseError::NoReassignmentInProgress, format!("topic {topic} partition {partition}: no reassignment in progress")));
        }
        return Ok(Action::Cancel { epoch: p.partition_epoch });
    };
    if target.is_empty() {
        return Err((ResponseError::InvalidReplicaAssignment, "the replica list is empty".into()));
    }
    let mut seen = BTreeSet::new();
    for b in target {
        if !seen.insert(*b) {
            return Err((ResponseError::InvalidReplicaAssignment, format!("broker {b} is listed twice")));
        }
        if state.brokers.get(b).is_none_or(|r| r.fenced) {
            return Err((ResponseError::InvalidReplicaAssignment, format!("broker {b} is not a live broker of the cluster")));
        }
    }
    if p.moving() {
        if p.target_replicas.as_slice() == target {
            return Ok(Action::Nothing);
        }
        return Ok(Action::Replace { target: target.to_vec(), epoch: p.partition_epoch });
    }
    if p.replicas.as_slice() == target && p.user_placed {
        return Ok(Action::Nothing);
    }
    Ok(Action::Start { target: target.to_vec(), epoch: p.partition_epoch })
}

fn answer(resp: MetaResponse) -> Result<(), Option<Refusal>> {
    match resp {
        MetaResponse::Ok => Ok(()),
        MetaResponse::UnknownTopic => Err(Some((ResponseError::UnknownTopicOrPartition, "the topic was deleted".into()))),
        // A stale partition epoch (or a move that started meanwhile): decide again.
        MetaResponse::InvalidPartitions(_) => Err(None),
        other => Err(Some((ResponseError::UnknownServerError, format!("unexpected metadata answer {other:?}")))),
    }
}

async fn reassign(broker: &Arc<Broker>, topic: &str, partition: i32, replicas: Option<&[i32]>) -> Result<(), Refusal> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS_MAX {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
        }
        let (name, by_user) = (topic.to_string(), true);
        let start = |target: Vec<i32>, epoch: i32| MetaCommand::StartReassignment { topic: name.clone(), partition, target, expected_partition_epoch: epoch, by_user };
        let cancel = |epoch: i32| MetaCommand::CancelReassignment { topic: name.clone(), partition, expected_partition_epoch: epoch };
        let cmd = match decide(&broker.meta.state(), topic, partition, replicas)? {
            Action::Nothing => return Ok(()),
            Action::Start { target, epoch } => start(target, epoch),
            Action::Cancel { epoch } => cancel(epoch),
            Action::Replace { target, epoch } => {
                match answer(crate::reconcile::write_meta(broker, cancel(epoch)).await.map_err(meta_refusal)?) {
                    // The cancel bumped the partition epoch by one: the new move starts from there.
                    Ok(()) => start(target, epoch.saturating_add(1)),
                    Err(Some(refusal)) => return Err(refusal),
                    Err(None) => {
                        last = format!("the partition changed while its move was cancelled (try {})", attempt + 1);
                        continue;
                    }
                }
            }
        };
        match answer(crate::reconcile::write_meta(broker, cmd).await.map_err(meta_refusal)?) {
            Ok(()) => return Ok(()),
            Err(Some(refusal)) => return Err(refusal),
            Err(None) => last = format!("the partition changed while the change was written (try {})", attempt + 1),
        }
    }
    Err((ResponseError::ReassignmentInProgress, format!("gave up after {ATTEMPTS_MAX} tries: {last}")))
}

pub async fn handle(broker: &Arc<Broker>, _ctx: &RequestContext, req: AlterPartitionReassignmentsRequest) -> AlterPartitionReassignmentsResponse {
    let _serial = broker.topic_ops.lock().await;
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let replicas: Option<Vec<i32>> = p.replicas.map(|r| r.into_iter().map(|b| b.0).collect());
            let result = ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
            let result = match reassign(broker, t.name.0.as_str(), p.partition_index, replicas.as_deref()).await {
                Ok(()) => result,
                Err((code, msg)) => {
                    tracing::debug!(topic = %t.name.0, partition = p.partition_index, ?code, %msg, "reassignment refused");
                    result.with_error_code(code.code()).with_error_message(Some(str_bytes(&msg)))
                }
            };
            partitions.push(result);
        }
        responses.push(ReassignableTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions));
    }
    AlterPartitionReassignmentsResponse::default().with_responses(responses)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chronik_raft::{BrokerNode, MetaCommand, MetadataState};
    use kafka_protocol::error::ResponseError;

    use super::{decide, Action};

    fn state() -> MetadataState {
        let mut s = MetadataState::default();
        for id in 1..=4 {
            s.apply(&MetaCommand::RegisterBroker { id, node: BrokerNode::default(), incarnation: None });
        }
        s.apply(&MetaCommand::FenceBroker { id: 4 });
        s.apply(&MetaCommand::CreateTopic { name: "t".into(), topic_id: [1; 16], replicas: vec![vec![1, 2]], configs: BTreeMap::new() });
        s
    }

    fn code(r: Result<Action, (ResponseError, String)>) -> Option<ResponseError> {
        r.err().map(|(c, _)| c)
    }

    #[test]
    fn entries_are_validated_like_kafka() {
        let s = state();
        type Case<'a> = (&'a str, i32, Option<&'a [i32]>, Option<ResponseError>);
        let cases: &[Case] = &[
            ("nope", 0, Some(&[1]), Some(ResponseError::UnknownTopicOrPartition)),
            ("t", 1, Some(&[1]), Some(ResponseError::UnknownTopicOrPartition)),
            ("t", -1, None, Some(ResponseError::UnknownTopicOrPartition)),
            ("t", 0, Some(&[]), Some(ResponseError::InvalidReplicaAssignment)),
            ("t", 0, Some(&[1, 1]), Some(ResponseError::InvalidReplicaAssignment)),
            ("t", 0, Some(&[1, 9]), Some(ResponseError::InvalidReplicaAssignment)),
            ("t", 0, Some(&[1, 4]), Some(ResponseError::InvalidReplicaAssignment)),
            ("t", 0, Some(&[-1]), Some(ResponseError::InvalidReplicaAssignment)),
            ("t", 0, None, Some(ResponseError::NoReassignmentInProgress)),
            ("t", 0, Some(&[2, 3]), None),
        ];
        for (topic, partition, replicas, want) in cases {
            assert_eq!(code(decide(&s, topic, *partition, *replicas)), *want, "{topic} {partition} {replicas:?}");
        }
        assert_eq!(decide(&s, "t", 0, Some(&[2, 3])).ok(), Some(Action::Start { target: vec![2, 3], epoch: 0 }));
        // The current placement is still recorded as the user's (a start that moves nothing).
        assert_eq!(decide(&s, "t", 0, Some(&[1, 2])).ok(), Some(Action::Start { target: vec![1, 2], epoch: 0 }));
    }

    #[test]
    fn a_running_move_is_cancelled_replaced_or_left() {
        let mut s = state();
        let start = MetaCommand::StartReassignment { topic: "t".into(), partition: 0, target: vec![2, 3], expected_partition_epoch: 0, by_user: true };
        assert_eq!(s.apply(&start), chronik_raft::MetaResponse::Ok);
        assert_eq!(decide(&s, "t", 0, None).ok(), Some(Action::Cancel { epoch: 1 }));
        assert_eq!(decide(&s, "t", 0, Some(&[2, 3])).ok(), Some(Action::Nothing));
        assert_eq!(decide(&s, "t", 0, Some(&[3, 1])).ok(), Some(Action::Replace { target: vec![3, 1], epoch: 1 }));
    }
}
