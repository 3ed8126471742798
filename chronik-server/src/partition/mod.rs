//! Partitions hosted by this broker: each one a `chronik_wal::PartitionLog` plus its high watermark and
//! idempotent-producer state; the manager keeps them in step with the metadata.

pub mod batch;
pub mod error;
pub mod manager;
#[allow(clippy::module_inception)]
pub mod partition;
pub mod producer_state;
pub mod topic;

pub use error::PartitionError;
pub use manager::PartitionManager;
pub use partition::{AppendResult, Partition};
