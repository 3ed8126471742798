//! The broker's side of the group coordinator's leadership fence (`chronik_group::fence`): before a
//! group request is served, this broker confirms it still leads the group's offsets partition.
//!
//! Confirming is a metadata read index (`MetaNode::read_barrier`): the metadata leader proves with a
//! quorum that it still leads and this broker waits until it has applied everything committed before
//! the request; the answer is whether that metadata still names this broker leader at the epoch its
//! log took on (a partition led elsewhere now is unloaded on the spot, unless a later leadership
//! of this broker has begun loading it). A broker that was paused,
//! isolated or is otherwise deposed cannot complete the read index — a woken Raft leader of an old
//! term steps down when it asks — so it answers NOT_COORDINATOR and the member looks the
//! coordinator up again, instead of serving its old view.
//! Costs one read-index round trip per group request (joins, heartbeats, commits, offset fetches).

use std::sync::Arc;
use std::time::Duration;

use super::OFFSETS_TOPIC;
use crate::broker::Broker;

/// Longest a group request waits to confirm leadership of its offsets partition; beyond it the
/// request is answered NOT_COORDINATOR.
pub const GROUP_FENCE_WAIT_MS_MAX: u64 = 1000;

/// Installs the fence in this broker's group coordinator (before the listeners start).
pub fn install(broker: &Arc<Broker>) {
    let weak = Arc::downgrade(broker);
    broker.groups.set_fence(Arc::new(move |index| {
        let weak = weak.clone();
        Box::pin(async move {
            match weak.upgrade() {
                Some(broker) => confirm(&broker, index).await,
                None => false,
            }
        })
    }));
}

/// Whether this broker leads offsets partition `index` in the cluster's metadata as of now.
pub async fn confirm(broker: &Arc<Broker>, index: u32) -> bool {
    if let Err(e) = broker.meta.read_barrier(Duration::from_millis(GROUP_FENCE_WAIT_MS_MAX)).await {
        tracing::debug!(partition = index, error = %e, "no metadata read index; group request refused");
        return false;
    }
    let state = broker.meta.state();
    let Some(t) = state.topics.get(OFFSETS_TOPIC) else { return false };
    let Some(pm) = t.partitions.get(index as usize) else { return false };
    if pm.leader == broker.node_id.0 {
        // Named leader: serve once the local log has taken on this epoch. Nothing is unloaded
        // here: the reconcile that follows this metadata loads the partition at the new epoch, and
        // an unload racing that load would leave the partition owned by no one.
        return super::ownership::led_here(broker, t, index).is_some();
    }
    // Led elsewhere: stop serving it now rather than at the next reconcile — unless a newer
    // metadata made this broker leader again meanwhile and its load has begun.
    broker.groups.unload_through(index, pm.leader_epoch);
    false
}
