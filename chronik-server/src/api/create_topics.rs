//! CreateTopics: validate the name, counts and configs, place the replicas, commit through Raft, and
//! open the local logs before answering. Also used by Metadata's auto-creation. From v5 (KIP-525) the
//! answer carries the partition count, replication factor and configs the topic got; from v7 its id.

use std::collections::BTreeMap;
use std::sync::Arc;

use chronik_raft::{MetaCommand, MetaResponse};
use chronik_rebalancer::{place_new_partitions, PlacementError};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use uuid::Uuid;

use super::str_bytes;
use crate::broker::Broker;
use crate::kafka::dispatch::RequestContext;
use crate::partition::topic::{effective_topic_configs, validate_topic_configs, validate_topic_name};

/// Partitions a topic may have; bounds the work one CreateTopics can ask for.
pub const TOPIC_PARTITIONS_MAX: i32 = 10_000;
/// First CreateTopics version whose answer lists the topic's configs (KIP-525).
const CONFIGS_IN_RESPONSE_SINCE_VERSION: i16 = 5;
/// Config sources (Kafka's DescribeConfigsResponse.ConfigSource): set on the topic, or the default.
const CONFIG_SOURCE_TOPIC: i8 = 1;
const CONFIG_SOURCE_DEFAULT: i8 = 5;

/// A refused topic operation: the Kafka error and a message for the client.
pub type Refusal = (ResponseError, String);

pub struct TopicSpec {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// Manual replica lists, one per partition in order; empty = placed by us.
    pub assignments: Vec<Vec<i32>>,
    pub configs: BTreeMap<String, String>,
}

/// Validates and (unless `validate_only`) creates a topic. Returns (topic id, partitions, replication factor).
pub async fn create_topic(broker: &Arc<Broker>, spec: TopicSpec, validate_only: bool) -> Result<([u8; 16], i32, i16), Refusal> {
    validate_topic_name(&spec.name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
    validate_topic_configs(&spec.configs).map_err(|m| (ResponseError::InvalidConfig, m))?;
    let state = broker.meta.state();
    if state.topics.contains_key(&spec.name) {
        return Err((ResponseError::TopicAlreadyExists, format!("topic '{}' already exists", spec.name)));
    }
    let live: Vec<i32> = state.placeable_brokers().map(|b| b.id).collect();
    let replicas = if spec.assignments.is_empty() {
        let partitions = if spec.num_partitions == -1 { broker.config.num_partitions } else { spec.num_partitions };
        let rf = if spec.replication_factor == -1 { broker.config.replication_factor } else { spec.replication_factor };
        if partitions <= 0 || partitions > TOPIC_PARTITIONS_MAX {
            return Err((ResponseError::InvalidPartitions, format!("number of partitions must be between 1 and {TOPIC_PARTITIONS_MAX}")));
        }
        if rf <= 0 {
            return Err((ResponseError::InvalidReplicationFactor, "replication factor must be positive".into()));
        }
        place_new_partitions(&live, 0, partitions, i32::from(rf)).map_err(|e| match e {
            PlacementError::ReplicationFactor { .. } => (ResponseError::InvalidReplicationFactor, e.to_string()),
            PlacementError::Partitions(_) => (ResponseError::InvalidPartitions, e.to_string()),
        })?
    } else {
        if spec.num_partitions != -1 || spec.replication_factor != -1 {
            return Err((ResponseError::InvalidRequest, "give either assignments or partition count and replication factor".into()));
        }
        validate_assignments(&spec.assignments, &live)?;
        spec.assignments.clone()
    };
    let partitions = replicas.len() as i32;
    let rf = replicas.first().map(|r| r.len() as i16).unwrap_or(0);
    if validate_only {
        return Ok(([0; 16], partitions, rf));
    }
    let topic_id = *Uuid::new_v4().as_bytes();
    let cmd = MetaCommand::CreateTopic { name: spec.name.clone(), topic_id, replicas, configs: spec.configs };
    match broker.write_meta(cmd).await {
        Ok(MetaResponse::TopicCreated { topic_id }) => Ok((topic_id, partitions, rf)),
        Ok(MetaResponse::TopicAlreadyExists) => Err((ResponseError::TopicAlreadyExists, format!("topic '{}' already exists", spec.name))),
        Ok(other) => Err((ResponseError::InvalidRequest, format!("{other:?}"))),
        Err(e) => Err(meta_refusal(e)),
    }
}

/// Replica lists given by a client: non-empty, same length, no duplicates, known brokers.
pub fn validate_assignments(assignments: &[Vec<i32>], live: &[i32]) -> Result<(), Refusal> {
    let rf = assignments.first().map(|r| r.len()).unwrap_or(0);
    for r in assignments {
        if r.is_empty() || r.len() != rf {
            return Err((ResponseError::InvalidReplicaAssignment, "every partition needs the same, non-zero number of replicas".into()));
        }
        let mut uniq = r.clone();
        uniq.sort_unstable();
        uniq.dedup();
        if uniq.len() != r.len() {
            return Err((ResponseError::InvalidReplicaAssignment, format!("duplicate broker in replica list {r:?}")));
        }
        if let Some(b) = r.iter().find(|b| !live.contains(b)) {
            return Err((ResponseError::InvalidReplicaAssignment, format!("unknown broker {b} in replica list")));
        }
    }
    Ok(())
}

/// A metadata write that failed: not the leader (multi-node) or the metadata layer is unavailable.
pub fn meta_refusal(e: chronik_raft::MetaError) -> Refusal {
    // No leader right now (election, lost quorum): a retriable answer, the client refreshes and retries.
    if e.is_retriable() {
        (ResponseError::NotController, e.to_string())
    } else {
        (ResponseError::UnknownServerError, e.to_string())
    }
}

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let _serial = broker.topic_ops.lock().await;
    let mut results = Vec::with_capacity(req.topics.len());
    let mut seen = std::collections::HashSet::new();
    for t in req.topics {
        let name = t.name.0.as_str().to_string();
        let mut result = CreatableTopicResult::default().with_name(t.name.clone()).with_num_partitions(-1).with_replication_factor(-1);
        if !seen.insert(name.clone()) {
            results.push(
                result.with_error_code(ResponseError::InvalidRequest.code()).with_error_message(Some(str_bytes("topic named twice in one request"))),
            );
            continue;
        }
        if crate::groups::offsets_topic::is_internal(&name) {
            let message = format!("{name} is internal: the broker creates it when a group coordinator is first looked up");
            results.push(result.with_error_code(ResponseError::InvalidRequest.code()).with_error_message(Some(str_bytes(&message))));
            continue;
        }
        let mut assignments: Vec<(i32, Vec<i32>)> = t.assignments.iter().map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect())).collect();
        assignments.sort_by_key(|(i, _)| *i);
        if assignments.iter().enumerate().any(|(i, (p, _))| i as i32 != *p) {
            results.push(
                result
                    .with_error_code(ResponseError::InvalidReplicaAssignment.code())
                    .with_error_message(Some(str_bytes("assignments must number partitions 0..n"))),
            );
            continue;
        }
        let mut configs = BTreeMap::new();
        for c in &t.configs {
            if let Some(v) = &c.value {
                configs.insert(c.name.as_str().to_string(), v.as_str().to_string());
            }
        }
        // v5+ (KIP-525) answers with the topic's configs, as DescribeConfigs would show them.
        let effective = if ctx.version >= CONFIGS_IN_RESPONSE_SINCE_VERSION { effective_topic_configs(&broker.config, &configs) } else { Vec::new() };
        let spec = TopicSpec {
            name,
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: assignments.into_iter().map(|(_, r)| r).collect(),
            configs,
        };
        match create_topic(broker, spec, req.validate_only).await {
            Ok((topic_id, partitions, rf)) => {
                let configs: Vec<CreatableTopicConfigs> = effective
                    .into_iter()
                    .map(|(name, value, is_default)| {
                        CreatableTopicConfigs::default()
                            .with_name(str_bytes(&name))
                            .with_value(Some(str_bytes(&value)))
                            .with_config_source(if is_default { CONFIG_SOURCE_DEFAULT } else { CONFIG_SOURCE_TOPIC })
                    })
                    .collect();
                result = result.with_num_partitions(partitions).with_replication_factor(rf);
                if ctx.version >= CONFIGS_IN_RESPONSE_SINCE_VERSION {
                    result = result.with_configs(Some(configs));
                }
                if ctx.version >= 7 {
                    result = result.with_topic_id(Uuid::from_bytes(topic_id));
                }
                results.push(result);
            }
            Err((code, message)) => results.push(result.with_error_code(code.code()).with_error_message(Some(str_bytes(&message)))),
        }
    }
    CreateTopicsResponse::default().with_topics(results)
}
