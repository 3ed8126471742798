//! Partitions hosted by this broker: each one a `chronik_wal::PartitionLog` plus its high watermark and
//! idempotent-producer state; the manager keeps them in step with the metadata.
//!
//! - `partition`: one replica's log, appends, reads below the HW; `replica`: its replication side
//!   (role, follower fetches served, follower appends, truncation, acks=all wait).
//! - `replica_state`: the leader's pure rules — follower progress, HW, ISR shrink/expand.
//! - `epoch_cache`: leader epoch → start offset, OffsetForLeaderEpoch answers, truncation point.
//! - `producer_state`, `batch`, `topic`, `error`, `manager`.

pub mod batch;
pub mod epoch_cache;
pub mod error;
pub mod manager;
#[allow(clippy::module_inception)]
pub mod partition;
pub mod producer_state;
pub mod replica;
pub mod replica_state;
pub mod topic;

pub use error::PartitionError;
pub use manager::PartitionManager;
pub use partition::{AppendResult, Partition};
