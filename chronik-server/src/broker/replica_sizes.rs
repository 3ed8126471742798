//! The size of every replica this broker hosts: what DescribeLogDirs answers and what the
//! controller's heartbeat reports as placement weights for the rebalancer.

use super::Broker;

/// One hosted replica: its size on disk and how far its log end is below the high watermark.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaSize {
    pub topic: String,
    pub partition: i32,
    /// Bytes of all its segments.
    pub size_bytes: u64,
    /// Kafka's lag of a current replica: high watermark minus log end offset, never below 0.
    pub offset_lag: i64,
}

/// Every replica this broker hosts, by topic and partition.
pub fn replica_sizes(broker: &Broker) -> Vec<ReplicaSize> {
    let mut out: Vec<ReplicaSize> = broker
        .partitions
        .all()
        .iter()
        .map(|p| ReplicaSize {
            topic: p.topic.clone(),
            partition: p.index,
            size_bytes: p.size_bytes(),
            offset_lag: (p.high_watermark() - p.log_end_offset()).max(0),
        })
        .collect();
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    out
}
