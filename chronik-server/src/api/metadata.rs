//! Metadata: brokers at their advertised addresses, the controller (metadata Raft leader), and topics
//! with partition leaders, epochs, replicas and ISR, served from this broker's applied metadata.
//! Unknown topics are created with the defaults when the client allows it and `auto_create_topics` is on.

use std::collections::BTreeMap;
use std::sync::Arc;

use chronik_raft::TopicRecord;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;

use crate::topics::{create_topic, TopicSpec};
use super::describe_cluster::AUTHORIZED_OPERATIONS_OMITTED;
use super::{live_broker_endpoints, str_bytes};
use crate::broker::Broker;
use crate::wire::context::RequestContext;
use crate::groups::offsets_topic::{self, is_internal};
use crate::partition::topic::validate_topic_name;

fn topic_entry(t: &TopicRecord) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            MetadataResponsePartition::default()
                .with_partition_index(i as i32)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().map(|b| BrokerId(*b)).collect())
                .with_isr_nodes(p.isr.iter().map(|b| BrokerId(*b)).collect())
                .with_error_code(if p.leader < 0 { ResponseError::LeaderNotAvailable.code() } else { 0 })
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(&t.name))))
        .with_topic_id(Uuid::from_bytes(t.topic_id))
        .with_partitions(partitions)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
        .with_is_internal(is_internal(&t.name))
}

fn error_entry(name: &str, code: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(name))))
        .with_error_code(code.code())
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: MetadataRequest) -> MetadataResponse {
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested: Option<Vec<String>> = match req.topics {
        None => None,
        Some(ts) if ts.is_empty() && ctx.version == 0 => None,
        Some(ts) => Some(ts.into_iter().filter_map(|t| t.name.map(|n| n.0.as_str().to_string())).collect()),
    };
    super::read_barrier(broker).await;
    let allow_auto_create = broker.config.auto_create_topics && (ctx.version < 4 || req.allow_auto_topic_creation);
    let mut topics = Vec::new();
    match requested {
        None => {
            let state = broker.meta.state();
            topics.extend(state.topics.values().map(topic_entry));
        }
        Some(names) => {
            for name in names {
                if let Some(t) = broker.meta.state().topics.get(&name) {
                    topics.push(topic_entry(t));
                    continue;
                }
                if validate_topic_name(&name).is_err() {
                    topics.push(error_entry(&name, ResponseError::InvalidTopicException));
                    continue;
                }
                if !allow_auto_create {
                    topics.push(error_entry(&name, ResponseError::UnknownTopicOrPartition));
                    continue;
                }
                let created = if is_internal(&name) {
                    offsets_topic::ensure(broker).await
                } else {
                    let spec = TopicSpec { name: name.clone(), num_partitions: -1, replication_factor: -1, assignments: vec![], configs: BTreeMap::new() };
                    let _serial = broker.topic_ops.lock().await;
                    let created = create_topic(broker, spec, false).await.map(|_| ());
                    if created.is_ok() {
                        crate::reconcile::partitions(broker).await;
                    }
                    created
                };
                match (created, broker.meta.state().topics.get(&name)) {
                    (_, Some(t)) => topics.push(topic_entry(t)),
                    (Err((code, _)), None) => topics.push(error_entry(&name, code)),
                    (Ok(_), None) => topics.push(error_entry(&name, ResponseError::LeaderNotAvailable)),
                }
            }
        }
    }
    let state = broker.meta.state();
    let brokers = live_broker_endpoints(&state)
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(str_bytes(&b.host))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.as_deref().map(str_bytes))
        })
        .collect::<Vec<MetadataResponseBroker>>();
    // A leader that is not among the brokers listed (fenced between the fencing and the failover
    // entries, or its address unusable) is reported as no leader, as Kafka does: a client must never
    // be sent to a broker id the same response does not describe.
    for p in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
        if p.leader_id.0 >= 0 && !brokers.iter().any(|b| b.node_id == p.leader_id) {
            p.leader_id = BrokerId(-1);
            p.error_code = ResponseError::LeaderNotAvailable.code();
        }
    }
    let listed: Vec<i32> = brokers.iter().map(|b| b.node_id.0).collect();
    let controller = super::controller_for_clients(broker, &listed);
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(&broker.cluster_id)))
        .with_controller_id(BrokerId(controller))
        .with_topics(topics)
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}
