//! What can go wrong while replicating from a leader; every variant names the leader and the step.

use kafka_protocol::messages::ApiKey;

use crate::ids::BrokerId;

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("broker {leader} has no known wal address")]
    NoAddress { leader: BrokerId },
    #[error("connecting to broker {leader} at {addr}: {source}")]
    Connect { leader: BrokerId, addr: String, source: std::io::Error },
    #[error("{api:?} to broker {leader}: {source}")]
    Io { leader: BrokerId, api: ApiKey, source: std::io::Error },
    #[error("{api:?} to broker {leader} timed out after {timeout_ms} ms")]
    Timeout { leader: BrokerId, api: ApiKey, timeout_ms: u64 },
    #[error("{api:?} to broker {leader}: cannot encode request: {reason}")]
    Encode { leader: BrokerId, api: ApiKey, reason: String },
    #[error("{api:?} from broker {leader}: malformed response: {reason}")]
    Decode { leader: BrokerId, api: ApiKey, reason: String },
    #[error("{api:?} from broker {leader}: response of {size} bytes exceeds {max}")]
    ResponseTooLarge { leader: BrokerId, api: ApiKey, size: usize, max: usize },
    #[error("{api:?} from broker {leader}: correlation id {got}, expected {expected}")]
    Correlation { leader: BrokerId, api: ApiKey, got: i32, expected: i32 },
    #[error("{topic}-{partition}: {source}")]
    Partition { topic: String, partition: i32, source: crate::partition::PartitionError },
    #[error("blocking task failed: {0}")]
    Task(String),
}
