//! Replica and leader placement for Chronik. Pure functions over a small view of the cluster, tested
//! with tables of cases and no I/O.
//!
//! - [`placement`]: where the replicas of new partitions go.

pub mod placement;

pub use placement::{place_new_partitions, PlacementError};
