//! Consumer groups in the cluster, the Kafka way: committed offsets live in the internal topic
//! `__consumer_offsets`, replicated like any other partition (leader, ISR, acks=all, failover), and
//! the leader of partition `hash(group) % offsets_partitions` coordinates the group. Each group's
//! membership after its last rebalance is stored in the same log. When leadership of an offsets
//! partition moves, the new leader replays its log and serves its groups with their members and
//! generation; members find it through FindCoordinator and carry on without rejoining, and their
//! committed offsets are all there.
//!
//! Parts:
//! - [`offsets_topic`]: the internal topic's name, configs and creation (on first FindCoordinator).
//! - [`offsets_log`]: `chronik_group::OffsetsLog` over a local partition this broker leads: a
//!   commit (or membership record) is committed once it is fsynced and stored by every in-sync
//!   replica.
//! - [`fence`]: confirms, before each group request, that this broker still leads the group's
//!   offsets partition (a read index on the metadata), so a deposed coordinator cannot serve.
//! - [`ownership`]: loads and unloads offsets partitions in the group coordinator as this broker's
//!   leadership changes, and clears the offsets of deleted topics.

pub mod fence;
pub mod offsets_log;
pub mod offsets_topic;
pub mod ownership;

pub use offsets_topic::OFFSETS_TOPIC;

use crate::broker::Broker;

/// The broker coordinating `group`: the leader of its offsets partition, if the offsets topic
/// exists and that partition has a leader.
pub fn coordinator_id(broker: &Broker, group: &str) -> Option<i32> {
    let index = broker.groups.offsets_partition_of(group);
    let state = broker.meta.state();
    let leader = state.topics.get(OFFSETS_TOPIC)?.partitions.get(index as usize)?.leader;
    (leader >= 0).then_some(leader)
}
