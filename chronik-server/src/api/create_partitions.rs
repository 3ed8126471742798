//! CreatePartitions: grow a topic to `count` partitions, placed by us or as the client assigns.

use std::sync::Arc;

use chronik_raft::{MetaCommand, MetaResponse};
use chronik_rebalancer::place_new_partitions;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use crate::topics::{check_fd_budget, meta_refusal, validate_assignments, Refusal, TOPIC_PARTITIONS_MAX};
use super::str_bytes;
use crate::broker::Broker;
use crate::wire::context::RequestContext;

async fn grow(broker: &Arc<Broker>, name: &str, count: i32, assignments: Option<Vec<Vec<i32>>>, validate_only: bool) -> Result<(), Refusal> {
    let state = broker.meta.state();
    let Some(topic) = state.topics.get(name) else {
        return Err((ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist")));
    };
    if crate::groups::offsets_topic::is_internal(name) {
        return Err((ResponseError::InvalidRequest, format!("{name} is internal: groups are mapped onto its partition count")));
    }
    let current = topic.partitions.len() as i32;
    if count <= current {
        return Err((ResponseError::InvalidPartitions, format!("topic has {current} partitions; the new count must be larger")));
    }
    if count > TOPIC_PARTITIONS_MAX {
        return Err((ResponseError::InvalidPartitions, format!("at most {TOPIC_PARTITIONS_MAX} partitions")));
    }
    let rf = topic.partitions.first().map(|p| p.replicas.len() as i32).unwrap_or(1);
    let live: Vec<i32> = state.placeable_brokers().map(|b| b.id).collect();
    let new_replicas = match assignments {
        Some(a) => {
            if a.len() as i32 != count - current {
                return Err((ResponseError::InvalidReplicaAssignment, format!("expected {} assignments, got {}", count - current, a.len())));
            }
            validate_assignments(&a, &live)?;
            if a.iter().any(|r| r.len() as i32 != rf) {
                return Err((ResponseError::InvalidReplicaAssignment, format!("every replica list needs {rf} brokers")));
            }
            a
        }
        None => place_new_partitions(&live, current, count - current, rf)
            .map_err(|e| (ResponseError::InvalidReplicationFactor, e.to_string()))?,
    };
    check_fd_budget(broker, &new_replicas)?;
    if validate_only {
        return Ok(());
    }
    match crate::reconcile::write_meta(broker, MetaCommand::CreatePartitions { name: name.to_string(), new_replicas }).await {
        Ok(MetaResponse::Ok) => Ok(()),
        Ok(MetaResponse::UnknownTopic) => Err((ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist"))),
        Ok(MetaResponse::InvalidPartitions(m)) => Err((ResponseError::InvalidPartitions, m)),
        Ok(other) => Err((ResponseError::InvalidRequest, format!("{other:?}"))),
        Err(e) => Err(meta_refusal(e)),
    }
}

pub async fn handle(broker: &Arc<Broker>, _ctx: &RequestContext, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let _serial = broker.topic_ops.lock().await;
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let assignments = t.assignments.map(|a| a.into_iter().map(|x| x.broker_ids.into_iter().map(|b| b.0).collect()).collect());
        let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        match grow(broker, t.name.0.as_str(), t.count, assignments, req.validate_only).await {
            Ok(()) => results.push(result),
            Err((code, msg)) => results.push(result.with_error_code(code.code()).with_error_message(Some(str_bytes(&msg)))),
        }
    }
    CreatePartitionsResponse::default().with_results(results)
}
