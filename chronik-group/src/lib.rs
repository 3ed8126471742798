//! Kafka's group coordinator for a Chronik broker: the classic consumer-group membership protocol
//! and durable committed offsets.
//!
//! Parts:
//! - [`config`]: [`GroupConfig`] and the named limits.
//! - [`group`]: the membership protocol as a pure state machine (join, sync, heartbeat, leave,
//!   session expiry, initial rebalance delay, protocol vote, static members), unit-tested without
//!   tokio.
//! - [`offsets`]: committed offsets in `chronik-wal` logs, one Kafka record batch per commit,
//!   answered only after fsync, rebuilt by replay at open.
//! - [`coordinator`]: the async facade the server calls (a timer task expires sessions); `api/`
//!   holds one file per Kafka API mapping requests and versions onto the two above.
//! - [`error`]: [`GroupError`], storage failures only (protocol errors are response codes).
//!
//! Not (yet) here: group membership is not persisted (after a restart members get
//! UNKNOWN_MEMBER_ID and rejoin; offsets survive), offsets logs are never compacted (replay time
//! grows with the number of commits), and no offset retention/expiry.

mod api;
pub mod config;
pub mod coordinator;
pub mod error;
pub mod group;
pub mod offsets;

pub use config::GroupConfig;
pub use coordinator::{ClientInfo, GroupCoordinator, PartitionExists};
pub use error::GroupError;
