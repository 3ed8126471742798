//! DescribeLogDirs: Chronik keeps every partition log of a broker under one directory, so the answer
//! is that directory with each hosted replica's size in bytes (all its segments) and offset lag, and —
//! from v4 (KIP-827) — the file system's total and usable bytes (statvfs). The lag is Kafka's for a
//! current replica: high watermark minus log end offset, never below 0 (0 on a leader; on a follower
//! how far its log is behind what it knows to be committed). v3 adds a top-level error code (none).
//!
//! The per-replica sizes come from [`crate::broker::replica_sizes`], which the controller's heartbeat
//! reports too.

use std::collections::BTreeMap;
use std::path::Path;

use kafka_protocol::messages::describe_log_dirs_response::{DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::str_bytes;
use crate::broker::replica_sizes::{replica_sizes, ReplicaSize};
use crate::broker::Broker;
use crate::wire::context::RequestContext;

/// (total, usable) bytes of the file system holding `dir`, or (-1, -1) if it cannot be asked.
pub fn disk_bytes(dir: &Path) -> (i64, i64) {
    match rustix::fs::statvfs(dir) {
        Ok(st) => {
            let total = st.f_blocks.saturating_mul(st.f_frsize);
            let usable = st.f_bavail.saturating_mul(st.f_frsize);
            (i64::try_from(total).unwrap_or(i64::MAX), i64::try_from(usable).unwrap_or(i64::MAX))
        }
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "statvfs failed");
            (-1, -1)
        }
    }
}

/// The replicas of `sizes` the request asks for (`None`: all), grouped by topic.
pub fn select(sizes: &[ReplicaSize], wanted: Option<&[(String, Vec<i32>)]>) -> Vec<DescribeLogDirsTopic> {
    let mut by_topic: BTreeMap<&str, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for r in sizes {
        let asked = wanted.is_none_or(|w| w.iter().any(|(t, ps)| *t == r.topic && ps.contains(&r.partition)));
        if asked {
            by_topic.entry(&r.topic).or_default().push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(r.partition)
                    .with_partition_size(i64::try_from(r.size_bytes).unwrap_or(i64::MAX))
                    .with_offset_lag(r.offset_lag),
            );
        }
    }
    by_topic
        .into_iter()
        .map(|(t, partitions)| DescribeLogDirsTopic::default().with_name(TopicName(str_bytes(t))).with_partitions(partitions))
        .collect()
}

pub fn handle(broker: &Broker, ctx: &RequestContext, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted: Option<Vec<(String, Vec<i32>)>> = req.topics.map(|ts| ts.into_iter().map(|t| (t.topic.0.to_string(), t.partitions)).collect());
    let dir = broker.partitions.logs_dir();
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(&dir.display().to_string()))
        .with_topics(select(&replica_sizes(broker), wanted.as_deref()));
    if ctx.version >= 4 {
        let (total, usable) = disk_bytes(dir);
        result = result.with_total_bytes(total).with_usable_bytes(usable);
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(topic: &str, partition: i32, size_bytes: u64) -> ReplicaSize {
        ReplicaSize { topic: topic.into(), partition, size_bytes, offset_lag: 0 }
    }

    #[test]
    fn selects_the_asked_replicas_grouped_by_topic() {
        let sizes = vec![r("a", 0, 10), r("a", 1, 20), r("b", 0, 5)];
        let all = select(&sizes, None);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].partitions.iter().map(|p| p.partition_size).collect::<Vec<_>>(), vec![10, 20]);
        let some = select(&sizes, Some(&[("a".into(), vec![1]), ("x".into(), vec![0])]));
        assert_eq!(some.len(), 1);
        assert_eq!((some[0].partitions[0].partition_index, some[0].partitions[0].partition_size), (1, 20));
        assert!(select(&sizes, Some(&[])).is_empty());
    }

    #[test]
    fn disk_bytes_of_a_real_directory() {
        let (total, usable) = disk_bytes(Path::new("."));
        assert!(total > 0 && usable >= 0 && usable <= total, "{total} {usable}");
        assert_eq!(disk_bytes(Path::new("/no/such/dir")), (-1, -1));
    }
}
