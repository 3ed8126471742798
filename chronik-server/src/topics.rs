//! Creating a topic, shared by CreateTopics, Metadata's auto-creation and the group coordinator's
//! offsets topic: validate the name, counts and configs, place the replicas
//! (`chronik_rebalancer::place_new_partitions`) and commit through Raft. The local logs open when this
//! broker follows the applied metadata (`reconcile`); CreateTopics and Metadata do that before they
//! answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use chronik_raft::{MetaCommand, MetaResponse};
use chronik_rebalancer::{place_new_partitions, PlacementError};
use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use crate::broker::Broker;
use crate::partition::topic::validate_topic_name;
use crate::partition::topic_config::TopicConfig;

/// Partitions a topic may have; bounds the work one CreateTopics can ask for.
pub const TOPIC_PARTITIONS_MAX: i32 = 10_000;
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
    TopicConfig::validate(&spec.configs).map_err(|m| (ResponseError::InvalidConfig, m))?;
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
    check_fd_budget(broker, &replicas)?;
    if validate_only {
        return Ok(([0; 16], partitions, rf));
    }
    let topic_id = *Uuid::new_v4().as_bytes();
    let cmd = MetaCommand::CreateTopic { name: spec.name.clone(), topic_id, replicas, configs: spec.configs };
    match broker.meta.write(cmd).await {
        Ok(MetaResponse::TopicCreated { topic_id }) => Ok((topic_id, partitions, rf)),
        Ok(MetaResponse::TopicAlreadyExists) => Err((ResponseError::TopicAlreadyExists, format!("topic '{}' already exists", spec.name))),
        Ok(other) => Err((ResponseError::InvalidRequest, format!("{other:?}"))),
        Err(e) => Err(meta_refusal(e)),
    }
}

/// Refuses new partitions whose logs this broker could not open for lack of file descriptors
/// (`fd_limit`), before anything is committed: the client hears POLICY_VIOLATION with the figures
/// and the setting to raise, instead of a topic whose logs fail to open and a request that times
/// out. POLICY_VIOLATION is Kafka's answer when a broker-side policy refuses a create; clients show
/// its message and do not retry. Only this broker's budget is known here; other brokers log the
/// failure to open (OPERATIONS.md).
pub fn check_fd_budget(broker: &Broker, replicas: &[Vec<i32>]) -> Result<(), Refusal> {
    let local = replicas.iter().filter(|r| r.contains(&broker.node_id.0)).count() as u64;
    crate::fd_limit::check_budget(local).map_err(|m| (ResponseError::PolicyViolation, m))
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
    use chronik_raft::MetaError;
    match e {
        // Every attempt within the write's deadline found no leader (no quorum, or an election that
        // outlasted it): REQUEST_TIMED_OUT with the reason, as Kafka answers a controller that could
        // not commit in time. The command may still apply later: commands are idempotent.
        MetaError::NoLeader { .. } | MetaError::LeaderTimeout { .. } => (ResponseError::RequestTimedOut, e.to_string()),
        // Leadership is moving: a retriable answer, the client refreshes and retries.
        e if e.is_retriable() => (ResponseError::NotController, e.to_string()),
        e => (ResponseError::UnknownServerError, e.to_string()),
    }
}
