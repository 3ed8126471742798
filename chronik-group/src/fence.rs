//! The leadership fence: the last check before a group request is served.
//!
//! A broker serves the groups of the offsets partitions it leads, as its applied metadata says. That
//! view can be stale: a coordinator paused (SIGSTOP, a long GC-like stall, a frozen VM) while the
//! cluster moved its offsets partition elsewhere wakes up still believing it leads, and until it
//! applies the newer metadata it would answer from its old map — an OffsetFetch answered "nothing
//! committed" for a partition first committed on the new coordinator sends a consumer back to the
//! earliest offset. The fence closes that window: for an owned partition the coordinator asks the
//! broker to confirm, right before serving, that the cluster still names it leader (the server does
//! a metadata read index, so a deposed broker cannot confirm), and answers NOT_COORDINATOR when it
//! cannot. A standalone coordinator has no fence and serves what it owns.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Resolves to true when this broker still leads offsets partition `index` in the cluster's current
/// metadata; false when it does not or cannot tell (no quorum reachable in time).
pub type LeadershipFence = Arc<dyn Fn(u32) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;
