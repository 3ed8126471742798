//! Keeps the group coordinator's owned offsets partitions equal to the offsets partitions this
//! broker leads, after every metadata change: a partition it now leads (at a new epoch) is loaded
//! in the background, offsets and group membership — its groups answer
//! COORDINATOR_LOAD_IN_PROGRESS meanwhile — and one it no
//! longer leads is unloaded at once, so a deposed coordinator stops answering for its groups
//! before the new one starts. Also removes committed offsets of deleted topics from the
//! partitions owned here (each owner does its own, as in Kafka).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;


use super::offsets_log::PartitionOffsetsLog;
use super::OFFSETS_TOPIC;
use crate::broker::Broker;
use crate::partition::{MinInsyncReplicas, Partition};
use chronik_raft::TopicRecord;

/// Loads what this broker leads, unloads what it does not, cleans up after deleted topics. Cheap;
/// called after every reconcile of the partitions.
pub fn sync(broker: &Arc<Broker>) {
    let state = broker.meta.state();
    let count = broker.config.offsets_partitions;
    let topic = state.topics.get(OFFSETS_TOPIC);
    if let Some(t) = topic {
        if t.partitions.len() != count as usize {
            tracing::error!(
                configured = count,
                actual = t.partitions.len(),
                "offsets_partitions differs from the offsets topic's partition count; groups of missing partitions have no coordinator"
            );
        }
    }
    for index in 0..count {
        let led = topic.and_then(|t| led_here(broker, t, index).map(|(p, epoch)| (p, epoch, t)));
        let Some((partition, epoch, t)) = led else {
            broker.groups.unload(index);
            continue;
        };
        if !broker.groups.begin_load(index, epoch) {
            continue;
        }
        let log = Arc::new(PartitionOffsetsLog {
            partition,
            leader_epoch: epoch,
            min_isr: MinInsyncReplicas::of_topic(&broker.partitions.topic_config(&t.configs)),
            replica_lag_time_max_ms: i64::try_from(broker.config.replica_lag_time_max_ms).unwrap_or(i64::MAX),
            commit_timeout: Duration::from_millis(broker.config.offsets_commit_timeout_ms),
        });
        let groups = broker.groups.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = groups.load(index, epoch, log) {
                tracing::error!(partition = index, epoch, error = %e, "loading offsets partition failed; retried on the next metadata change");
            }
        });
    }
    forget_deleted_topics(broker, state.topics.keys().cloned().collect());
}

/// Whether this broker leads offsets partition `index` of the offsets topic `t` as the metadata
/// says and as its local log has taken on (same topic id, leading at the metadata's epoch): the
/// local partition and that epoch.
pub fn led_here(broker: &Broker, t: &TopicRecord, index: u32) -> Option<(Arc<Partition>, i32)> {
    let pm = t.partitions.get(index as usize).filter(|pm| pm.leader == broker.node_id.0)?;
    let p = broker.partitions.get(OFFSETS_TOPIC, i32::try_from(index).ok()?)?;
    (p.topic_id == t.topic_id && p.leading_epoch() == Some(pm.leader_epoch)).then_some((p, pm.leader_epoch))
}

fn forget_deleted_topics(broker: &Arc<Broker>, now: BTreeSet<String>) {
    let deleted: Vec<String> = {
        let mut known = broker.group_ownership.known_topics.lock();
        let deleted = known.as_ref().map(|before| before.difference(&now).cloned().collect()).unwrap_or_default();
        *known = Some(now);
        deleted
    };
    for topic in deleted {
        let groups = broker.groups.clone();
        tokio::spawn(async move { groups.on_topic_deleted(&topic).await });
    }
}
