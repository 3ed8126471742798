//! One file per Kafka API handled by the broker itself. Consumer-group APIs are answered by
//! `chronik_group::GroupCoordinator` (see `kafka::dispatch`).

pub mod alter_partition_reassignments;
pub mod alter_replica_log_dirs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod elect_leaders;
pub mod fetch;
pub mod fetch_response;
pub mod find_coordinator;
pub mod init_producer_id;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod produce;

use kafka_protocol::protocol::StrBytes;

pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A live broker as clients see it: id, advertised Kafka host and port, rack.
pub(crate) struct BrokerEndpoint {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

/// The live (unfenced) brokers at their advertised Kafka addresses, for Metadata and DescribeCluster.
pub(crate) fn live_broker_endpoints(state: &chronik_raft::MetadataState) -> Vec<BrokerEndpoint> {
    state
        .live_brokers()
        .filter_map(|b| {
            let (host, port) = crate::config::split_host_port(&b.node.kafka_addr)?;
            Some(BrokerEndpoint { id: b.id, host, port, rack: b.node.rack.clone() })
        })
        .collect()
}
