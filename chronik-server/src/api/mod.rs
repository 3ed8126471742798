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

use crate::ids::BrokerId;

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

/// The controller id Metadata and DescribeCluster give clients: the metadata leader when this broker
/// knows one among the `listed` brokers, otherwise this broker itself. Every broker forwards metadata
/// writes to the leader, so any of them takes an admin request; without a known leader (an election,
/// or no quorum) the client's CreateTopics then gets this broker's own answer (REQUEST_TIMED_OUT with
/// the reason) instead of the client waiting for a controller id that never comes.
pub(crate) fn controller_for_clients(broker: &crate::broker::Broker, listed: &[i32]) -> i32 {
    broker
        .meta
        .status()
        .leader_id
        .and_then(BrokerId::from_node_id)
        .filter(|id| listed.contains(&id.0))
        .unwrap_or(broker.node_id)
        .0
}

/// Longest a Metadata or DescribeCluster request waits for its read index (see [`read_barrier`]).
pub(crate) const METADATA_READ_WAIT_MS_MAX: u64 = 1_000;

/// Makes the metadata this broker is about to serve at least as new as every metadata write that
/// completed anywhere before the request arrived (a read index from the metadata leader, then a wait
/// until this broker applied that far): right after CreateTopics or a membership change returns, every
/// broker's Metadata shows it. Without a reachable leader holding a quorum (an election, a partition)
/// there is no such guarantee to give; the broker then serves its own last applied state after at
/// most [`METADATA_READ_WAIT_MS_MAX`], as Kafka's brokers always do, and clients find the current
/// leaders through the epochs the partitions check.
pub(crate) async fn read_barrier(broker: &crate::broker::Broker) {
    let within = std::time::Duration::from_millis(METADATA_READ_WAIT_MS_MAX);
    if let Err(e) = broker.meta.read_barrier(within).await {
        tracing::debug!(error = %e, "metadata served from this broker's applied state without a read index");
    }
}
