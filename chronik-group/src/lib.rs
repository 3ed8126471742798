//! Kafka's group coordinator for a Chronik broker: the classic consumer-group membership protocol
//! and durable committed offsets.
//!
//! Parts:
//! - [`config`]: [`GroupConfig`] and the named limits.
//! - [`group`]: the membership protocol as a pure state machine (join, sync, heartbeat, leave,
//!   session expiry, initial rebalance delay, protocol vote, static members), unit-tested without
//!   tokio.
//! - [`offsets`]: committed offsets, one Kafka record batch per commit, answered once committed
//!   (fsynced; in a cluster also stored by every in-sync replica of the internal offsets topic).
//!   A broker serves the groups of the offsets partitions it leads: it loads a partition (replays
//!   its log) when it becomes leader and unloads it when it stops; every group API answers
//!   NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS for a group it does not serve. The same logs
//!   carry each group's membership after its last completed rebalance.
//! - [`coordinator`]: the async facade the server calls (a timer task expires sessions); `api/`
//!   holds one file per Kafka API mapping requests and versions onto the two above.
//! - [`error`]: [`GroupError`], storage failures only (protocol errors are response codes).
//! - [`fence`]: the broker's confirmation, before each group request, that it still leads the
//!   group's offsets partition (a woken, deposed coordinator answers NOT_COORDINATOR).
//!
//! Group membership is stored next to the offsets (one record per completed rebalance, a tombstone
//! when a group empties; [`offsets::membership`]) and loaded with them, so when a coordinator moves
//! the members carry on with their member ids and generation, with fresh sessions.
//!
//! Not (yet) here: offsets logs are never compacted (replay time grows with the number of commits
//! and rebalances), and no offset retention/expiry.

mod api;
pub mod config;
pub mod coordinator;
pub mod error;
pub mod fence;
pub mod group;
pub mod offsets;

pub use config::GroupConfig;
pub use coordinator::{ClientInfo, GroupCoordinator, PartitionExists};
pub use error::GroupError;
pub use fence::LeadershipFence;
pub use offsets::log::{CommitWait, LogFailure, OffsetsLog};
pub use offsets::Ownership;
