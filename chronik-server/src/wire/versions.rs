//! The API versions this broker advertises in ApiVersions. Only versions we implement and have exercised
//! with real clients; the ranges follow Apache Kafka 3.0 so clients that infer a broker version from them
//! (kafka-python) enable the matching features. docs/PROTOCOL.md says what each version adds and what we
//! do with it; `tests/t15_conformance.rs` sends every version listed here and fails until a changed range
//! has its request builder updated.

use kafka_protocol::messages::ApiKey;

/// (api, min, max). Produce v0–2 are advertised as Kafka 4 does (older librdkafka disables compression
/// otherwise) and refused at request time by closing the connection, since message formats v0/v1 are not
/// stored.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 11),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
];

/// Produce versions below this carry message formats v0/v1, which are not accepted.
pub const PRODUCE_MIN_ACCEPTED: i16 = 3;

/// The advertised range of `key`, if we serve it at all.
pub fn supported_range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED.iter().find(|(k, _, _)| *k == key).map(|(_, min, max)| (*min, *max))
}

/// Whether a request of `key` at `version` can be served.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    match supported_range(key) {
        Some((min, max)) => {
            version >= min && version <= max && !(key == ApiKey::Produce && version < PRODUCE_MIN_ACCEPTED)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Message;

    /// Every advertised version must be decodable by the codec; otherwise a client would get a closed
    /// connection for a version we promised.
    #[test]
    fn advertised_ranges_are_decodable() {
        for (key, min, max) in SUPPORTED {
            let codec = key.valid_versions();
            let min = if *key == ApiKey::Produce { PRODUCE_MIN_ACCEPTED } else { *min };
            assert!(codec.min <= min && *max <= codec.max, "{key:?} {min}..{max} vs codec {codec}");
        }
        assert_eq!(kafka_protocol::messages::ProduceRequest::VERSIONS.min, 3);
    }

    #[test]
    fn produce_v2_is_refused() {
        assert!(!is_supported(ApiKey::Produce, 2));
        assert!(is_supported(ApiKey::Produce, 3));
        assert!(!is_supported(ApiKey::Fetch, 13));
        assert!(is_supported(ApiKey::OffsetForLeaderEpoch, 3));
        assert!(!is_supported(ApiKey::OffsetForLeaderEpoch, 1));
    }
}
