//! DescribeConfigs for topics (their own values over the broker defaults) and for this broker.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::wire::context::RequestContext;
use crate::partition::topic_config::{effective_topic_configs, value_type, ValueType};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Config sources (Kafka's DescribeConfigsResponse.ConfigSource).
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// Config value types (Kafka's DescribeConfigsResponse.ConfigType).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

/// The value type of a config we report, as Kafka declares it: a topic config's from the topic config
/// table, a broker config's from the list below.
fn config_type(name: &str) -> i8 {
    if let Some(t) = value_type(name) {
        return match t {
            ValueType::Boolean => TYPE_BOOLEAN,
            ValueType::String => TYPE_STRING,
            ValueType::Int => TYPE_INT,
            ValueType::Long => TYPE_LONG,
            ValueType::List => TYPE_LIST,
        };
    }
    match name {
        "log.retention.ms" | "log.retention.bytes" => TYPE_LONG,
        "broker.id" | "num.partitions" | "message.max.bytes" | "log.segment.bytes" | "socket.request.max.bytes"
        | "group.initial.rebalance.delay.ms" | "group.min.session.timeout.ms" | "group.max.session.timeout.ms"
        | "default.replication.factor" => TYPE_INT,
        "auto.create.topics.enable" => TYPE_BOOLEAN,
        "listeners" | "advertised.listeners" => TYPE_LIST,
        _ => TYPE_STRING,
    }
}

fn entry(name: &str, value: &str, read_only: bool, source: i8) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(name))
        .with_value(Some(str_bytes(value)))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_config_type(config_type(name))
}

pub fn handle(broker: &Arc<Broker>, _ctx: &RequestContext, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let state = broker.meta.state();
    let results = req
        .resources
        .iter()
        .map(|r| {
            let name = r.resource_name.as_str();
            let base = DescribeConfigsResult::default().with_resource_type(r.resource_type).with_resource_name(r.resource_name.clone());
            let wanted = |k: &str| r.configuration_keys.as_ref().map(|ks| ks.iter().any(|x| x.as_str() == k)).unwrap_or(true);
            let configs: Vec<(String, String, bool, i8)> = match r.resource_type {
                RESOURCE_TOPIC => {
                    let Some(t) = state.topics.get(name) else {
                        return base
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes(&format!("topic '{name}' does not exist"))));
                    };
                    effective_topic_configs(&broker.config, &t.configs)
                        .into_iter()
                        .map(|(k, v, is_default)| (k, v, false, if is_default { SOURCE_DEFAULT } else { SOURCE_TOPIC }))
                        .collect()
                }
                RESOURCE_BROKER => {
                    if name.parse::<i32>().ok() != Some(broker.node_id.0) && !name.is_empty() {
                        return base.with_error_code(ResponseError::InvalidRequest.code()).with_error_message(Some(str_bytes("not this broker")));
                    }
                    let c = &broker.config;
                    // Broker configs cannot be changed at run time (no AlterConfigs yet): all read-only.
                    [
                        ("broker.id", broker.node_id.to_string()),
                        ("listeners", format!("PLAINTEXT://{}", c.bind.kafka)),
                        ("advertised.listeners", format!("PLAINTEXT://{}", c.advertise.kafka)),
                        ("num.partitions", c.num_partitions.to_string()),
                        ("default.replication.factor", c.replication_factor.to_string()),
                        ("min.insync.replicas", c.min_insync_replicas.to_string()),
                        ("auto.create.topics.enable", c.auto_create_topics.to_string()),
                        ("message.max.bytes", c.message_bytes_max.to_string()),
                        ("log.segment.bytes", c.segment_bytes.to_string()),
                        ("log.retention.ms", c.retention_ms.to_string()),
                        ("log.retention.bytes", c.retention_bytes.to_string()),
                        ("socket.request.max.bytes", c.frame_bytes_max.to_string()),
                        ("group.initial.rebalance.delay.ms", c.group_initial_rebalance_delay_ms.to_string()),
                        ("group.min.session.timeout.ms", c.group_session_timeout_ms_min.to_string()),
                        ("group.max.session.timeout.ms", c.group_session_timeout_ms_max.to_string()),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v, true, SOURCE_STATIC_BROKER))
                    .collect()
                }
                _ => {
                    return base
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(&format!("resource type {} is not supported", r.resource_type))));
                }
            };
            let configs = configs
                .into_iter()
                .filter(|(k, ..)| wanted(k))
                .map(|(k, v, ro, src)| entry(&k, &v, ro, src))
                .collect();
            base.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
