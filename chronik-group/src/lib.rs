//! Kafka's group coordinator for a Chronik broker.
//!
//! Parts:
//! - [`config`]: [`GroupConfig`] and the named limits.
//! - [`group`]: the membership protocol as a pure state machine (join, sync, heartbeat, leave,
//!   session expiry, protocol vote), unit-tested without tokio.
//! - `offsets`: durable committed offsets in `chronik-wal` logs, one Kafka record batch per commit.
//! - `coordinator`: the async facade the server calls, one `api/` file per Kafka API.

mod api;
pub mod config;
pub mod coordinator;
pub mod group;

pub use config::GroupConfig;
pub mod error;
pub mod offsets;

pub use coordinator::{ClientInfo, GroupCoordinator, PartitionExists};
pub use error::GroupError;
