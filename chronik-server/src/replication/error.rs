//! What can go wrong while replicating from a leader; every variant names the leader and the step.

use kafka_protocol::messages::ApiKey;

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("broker {leader} has no known wal address")]
    NoAddress { leader: i32 },
    #[error("connecting to broker {leader} at {addr}: {source}")]
    Connect { leader: i32, addr: String, source: std::io::Error },
    #[error("{api:?} to broker {leader}: {source}")]
    Io { leader: i32, api: ApiKey, source: std::io::Error },
    #[error("{api:?} to broker {leader} timed out after {timeout_ms} ms")]
    Timeout { leader: i32, api: ApiKey, timeout_ms: u64 },
    #[error("{api:?} to broker {leader}: cannot encode request: {reason}")]
    Encode { leader: i32, api: ApiKey, reason: String },
    #[error("{api:?} from broker {leader}: malformed response: {reason}")]
    Decode { leader: i32, api: ApiKey, reason: String },
    #[error("{api:?} from broker {leader}: response of {size} bytes exceeds {max}")]
    ResponseTooLarge { leader: i32, api: ApiKey, size: usize, max: usize },
    #[error("{api:?} from broker {leader}: correlation id {got}, expected {expected}")]
    Correlation { leader: i32, api: ApiKey, got: i32, expected: i32 },
    #[error("{topic}-{partition}: {source}")]
    Partition { topic: String, partition: i32, source: crate::partition::PartitionError },
    #[error("blocking task failed: {0}")]
    Task(String),
}
