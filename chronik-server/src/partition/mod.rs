//! Partitions hosted by this broker: each one a `chronik_wal::PartitionLog` plus its high watermark and
//! idempotent-producer state; the manager keeps them in step with the metadata.
//!
//! - `partition`: one replica's log, appends, reads below the HW; `replica`: its replication side
//!   (role changes, follower fetches served, follower appends, truncation).
//! - `role`: leader (with `ReplicaState`) or follower; `high_watermark`: `committable_end` and the
//!   HW rules for both roles.
//! - `leader_write`: the one leader write path (Produce, offsets log): append as leader, then commit
//!   (durable here, then for acks=all below the high watermark), with one `min.insync.replicas` rule.
//! - `replica_state`: the leader's pure rules — follower progress, HW, ISR shrink/expand.
//! - `epoch_cache`: leader epoch → start offset, OffsetForLeaderEpoch answers, truncation point.
//! - `disk_floor`: appends stop while the data directory has less than a floor free, so the
//!   metadata always has room (KAFKA_STORAGE_ERROR meanwhile, resumed when space returns).
//! - `storage_fault`: what a disk failure does — a failed write is rolled back and answered
//!   KAFKA_STORAGE_ERROR, a failed fdatasync halts the broker.
//! - `topic_config`: the one table of topic config keys and the typed `TopicConfig` parsed from it.
//! - `producer_state`, `topic` (names), `error`, `manager`. Record sets arrive split and checked by
//!   `chronik_wal::split_batches` (the one reading of the v2 batch header).

pub mod disk_floor;
pub mod epoch_cache;
pub mod error;
pub mod high_watermark;
pub mod leader_write;
pub mod manager;
#[allow(clippy::module_inception)]
pub mod partition;
pub mod producer_state;
pub mod replica;
pub mod replica_state;
pub mod role;
pub mod storage_fault;
#[cfg(test)]
pub(crate) mod test_batch;
pub mod topic;
pub mod topic_config;

pub use error::PartitionError;
pub use manager::PartitionManager;
pub use leader_write::{Acks, LeaderWrite, MinInsyncReplicas};
pub use partition::{AppendResult, Partition};
