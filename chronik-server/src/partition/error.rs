//! What can go wrong on one partition, and the Kafka error code each answer carries. One bad partition
//! never fails the rest of a request: handlers map these per partition.

use chronik_wal::{BatchError, WalError};
use kafka_protocol::error::ResponseError;

use crate::ids::{BrokerId, LeaderEpoch};

#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("{topic}-{partition}: {source}")]
    Wal { topic: String, partition: i32, source: WalError },
    #[error("malformed record set: {0}")]
    Batch(#[from] BatchError),
    #[error("batch of {size} bytes exceeds message_bytes_max {max}")]
    MessageTooLarge { size: usize, max: i32 },
    #[error("out of order sequence number: expected {expected}")]
    OutOfOrderSequence { expected: i32 },
    #[error("producer epoch {got} is older than the current {current}")]
    InvalidProducerEpoch { got: i16, current: i16 },
    #[error("transactional batches are not supported")]
    Transactional,
    #[error("partition is being deleted")]
    Deleted,
    #[error("fsync task failed: {0}")]
    SyncTask(String),
    #[error("this broker does not lead the partition")]
    NotLeader,
    #[error("leader epoch {requested} is older than the current {current}")]
    FencedLeaderEpoch { requested: i32, current: i32 },
    #[error("leader epoch {requested} is newer than the current {current}")]
    UnknownLeaderEpoch { requested: i32, current: i32 },
    #[error("broker {broker} is not a replica of the partition")]
    UnknownReplica { broker: i32 },
    #[error("{in_sync} in-sync replicas (ISR {isr:?}), min.insync.replicas {min_isr}")]
    NotEnoughReplicas { in_sync: usize, isr: Vec<i32>, min_isr: usize },
    #[error("not committed after {waited_ms} ms")]
    TimedOut { waited_ms: u64 },
    #[error("ISR shrank to {isr}, below min.insync.replicas {min_isr}, before the batch was replicated")]
    NotEnoughReplicasAfterAppend { isr: usize, min_isr: usize },
    #[error("replicated batch starts at {got}, log ends at {expected}")]
    NotContiguous { expected: i64, got: i64 },
    #[error("no longer following broker {leader} at epoch {leader_epoch}")]
    StaleFetcher { leader: BrokerId, leader_epoch: LeaderEpoch },
    #[error("{free} bytes free in the data directory, below the floor of {floor} kept for the metadata")]
    BelowDiskFloor { free: u64, floor: u64 },
}

impl PartitionError {
    pub fn wal(topic: &str, partition: i32, source: WalError) -> Self {
        PartitionError::Wal { topic: topic.to_string(), partition, source }
    }

    /// The Kafka error answered for this failure.
    pub fn kafka_error(&self) -> ResponseError {
        match self {
            PartitionError::Wal { source, .. } => match source {
                WalError::InvalidBatch(_) => ResponseError::CorruptMessage,
                WalError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
                WalError::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
                _ => ResponseError::KafkaStorageError,
            },
            PartitionError::Batch(_) => ResponseError::CorruptMessage,
            PartitionError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
            PartitionError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            PartitionError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            PartitionError::Transactional => ResponseError::TransactionalIdAuthorizationFailed,
            PartitionError::Deleted => ResponseError::UnknownTopicOrPartition,
            PartitionError::SyncTask(_) | PartitionError::BelowDiskFloor { .. } => ResponseError::KafkaStorageError,
            PartitionError::NotLeader | PartitionError::StaleFetcher { .. } => ResponseError::NotLeaderOrFollower,
            PartitionError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
            PartitionError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
            PartitionError::UnknownReplica { .. } => ResponseError::NotLeaderOrFollower,
            PartitionError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
            PartitionError::TimedOut { .. } => ResponseError::RequestTimedOut,
            PartitionError::NotEnoughReplicasAfterAppend { .. } => ResponseError::NotEnoughReplicasAfterAppend,
            PartitionError::NotContiguous { .. } => ResponseError::CorruptMessage,
        }
    }

    pub fn code(&self) -> i16 {
        self.kafka_error().code()
    }
}
