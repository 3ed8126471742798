//! Replica and leader placement for Chronik. Pure functions over a small view of the cluster, tested
//! with tables of cases and no I/O.
//!
//! - [`leader`]: who leads a partition (failover and preferred leadership), as the controller applies it.
//! - [`placement`]: where the replicas of new partitions go.
//! - [`plan`]: the moves (replicas, preferred leaders) that balance an existing cluster after a
//!   membership change.

pub mod leader;
pub mod placement;
pub mod plan;

pub use leader::{failover_leader, preferred_leader_move};
pub use placement::{place_new_partitions, PlacementError};
pub use plan::{plan, BrokerView, Move, PartitionView};
