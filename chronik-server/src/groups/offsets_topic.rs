//! The internal offsets topic: created the first time a client looks for a group coordinator (as
//! Kafka does), with `offsets_partitions` partitions and the cluster's `replication_factor`. While
//! fewer brokers are live than that factor it cannot be created and FindCoordinator answers
//! COORDINATOR_NOT_AVAILABLE (retriable).
//!
//! Its logs are the only copy of committed offsets: retention is off (-1), and there is no log
//! compaction yet, so the logs grow with every commit and a new leader replays all of it. Clients
//! may read it; they may not produce to it, delete it or change its partition count (the group →
//! partition mapping depends on the count).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::topics::{create_topic, Refusal, TopicSpec};
use crate::broker::Broker;

/// Kafka's name for it, so tools that know it (and skip it) work unchanged.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Whether `topic` is internal (Metadata reports it so; clients may not write it).
pub fn is_internal(topic: &str) -> bool {
    topic == OFFSETS_TOPIC
}

/// Creates the offsets topic unless it exists. Concurrent callers are serialised with the other
/// topic operations; a topic created meanwhile (here or on another broker) counts as success.
pub async fn ensure(broker: &Arc<Broker>) -> Result<(), Refusal> {
    if broker.meta.state().topics.contains_key(OFFSETS_TOPIC) {
        return Ok(());
    }
    let _serial = broker.topic_ops.lock().await;
    if broker.meta.state().topics.contains_key(OFFSETS_TOPIC) {
        return Ok(());
    }
    let configs = BTreeMap::from([("retention.ms".to_string(), "-1".to_string()), ("retention.bytes".to_string(), "-1".to_string())]);
    let spec = TopicSpec {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: i32::try_from(broker.config.offsets_partitions).unwrap_or(i32::MAX),
        replication_factor: broker.config.replication_factor,
        assignments: vec![],
        configs,
    };
    match create_topic(broker, spec, false).await {
        Ok((_, partitions, replication_factor)) => {
            tracing::info!(topic = OFFSETS_TOPIC, partitions, replication_factor, "created the offsets topic");
            Ok(())
        }
        Err(_) if broker.meta.state().topics.contains_key(OFFSETS_TOPIC) => Ok(()),
        Err(refusal) => Err(refusal),
    }
}
