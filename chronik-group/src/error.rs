//! The crate's error type: what failed and where.

use std::path::PathBuf;

/// Failures of the coordinator's storage; membership and request errors are Kafka error codes in
/// responses, not `GroupError`s.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The offsets log of one internal partition failed (open, append, replay or fsync).
    #[error("offsets partition {partition}: {verb} failed: {source}")]
    Log {
        partition: u32,
        verb: &'static str,
        #[source]
        source: crate::offsets::log::LogFailure,
    },
    /// The group's offsets partition is not owned by this broker (it does not lead it).
    #[error("offsets partition {partition} is not coordinated by this broker")]
    NotCoordinator { partition: u32 },
    /// The group's offsets partition is being loaded after this broker became its leader.
    #[error("offsets partition {partition} is still loading")]
    LoadInProgress { partition: u32 },
    /// A stored offset record does not decode: the log holds something we did not write.
    #[error("offsets partition {partition}: corrupt record at log offset {log_offset}: {reason}")]
    CorruptRecord { partition: u32, log_offset: i64, reason: String },
    /// A commit could not be encoded as a record batch.
    #[error("offsets partition {partition}: encoding a commit batch failed: {reason}")]
    Encode { partition: u32, reason: String },
    /// The offsets directory itself could not be created.
    #[error("creating offsets directory {}: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config cannot work (e.g. zero offsets partitions).
    #[error("invalid group coordinator config: {0}")]
    InvalidConfig(String),
}

impl GroupError {
    /// The Kafka error a client gets for this failure of a group operation (the mapping Kafka's own
    /// coordinator applies to offsets-log append errors).
    pub fn response_error(&self) -> kafka_protocol::error::ResponseError {
        use crate::offsets::log::LogFailure;
        use kafka_protocol::error::ResponseError;
        match self {
            GroupError::NotCoordinator { .. } | GroupError::Log { source: LogFailure::NotLeader, .. } => ResponseError::NotCoordinator,
            GroupError::LoadInProgress { .. } => ResponseError::CoordinatorLoadInProgress,
            GroupError::Log { source: LogFailure::TimedOut { .. }, .. } => ResponseError::RequestTimedOut,
            _ => ResponseError::CoordinatorNotAvailable,
        }
    }
}
