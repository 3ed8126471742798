//! CreateTopics: validate the name, counts and configs, place the replicas, commit through Raft, and
//! open the local logs before answering. Also used by Metadata's auto-creation. From v5 (KIP-525) the
//! answer carries the partition count, replication factor and configs the topic got; from v7 its id.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use uuid::Uuid;

use super::str_bytes;
use crate::topics::{create_topic, TopicSpec};
use crate::broker::Broker;
use crate::wire::context::RequestContext;
use crate::partition::topic_config::effective_topic_configs;

/// First CreateTopics version whose answer lists the topic's configs (KIP-525).
const CONFIGS_IN_RESPONSE_SINCE_VERSION: i16 = 5;
/// Config sources (Kafka's DescribeConfigsResponse.ConfigSource): set on the topic, or the default.
const CONFIG_SOURCE_TOPIC: i8 = 1;
const CONFIG_SOURCE_DEFAULT: i8 = 5;

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: CreateTopicsRequest) -> CreateTopicsResponse {
    // timeout_ms <= 0 asks for no wait bound here (the metadata write's own deadline still applies).
    let deadline = u64::try_from(req.timeout_ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(|ms| tokio::time::Instant::now() + std::time::Duration::from_millis(ms));
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
        // The request's timeout_ms bounds the wait for the metadata write, as in Kafka: without a
        // quorum the client hears REQUEST_TIMED_OUT within its own timeout rather than nothing.
        let created = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, create_topic(broker, spec, req.validate_only))
                .await
                .unwrap_or_else(|_elapsed| Err((ResponseError::RequestTimedOut, format!(
                    "topic creation not committed within the request's timeout_ms {}; it may still complete", req.timeout_ms)))),
            None => create_topic(broker, spec, req.validate_only).await,
        };
        if created.is_ok() && !req.validate_only {
            crate::reconcile::partitions(broker).await;
        }
        match created {
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
