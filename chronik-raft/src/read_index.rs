//! Linearizable reads of the metadata on any node (Raft's read index).
//!
//! A node's applied state can lag the leader's: right after CreateTopics returns on one broker,
//! another may not have applied the topic yet. [`barrier`] closes that gap: it asks the leader for a
//! read index — the leader confirms with a quorum that it still leads (so a deposed leader cannot
//! answer) and names its commit index — then waits until this node has applied that far. A read of
//! [`crate::MetaNode::state`] after the barrier sees every write that completed before it began.
//!
//! Without a reachable leader (an election, a partition, no quorum) there is no read index; the
//! caller decides what to serve (see the Metadata handler: its own last applied state).

use std::time::Duration;

use openraft::error::{CheckIsLeaderError, RaftError};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::MetaError;
use crate::peer::{ForwardRefusal, Lane, PeerPool, PeerResponse, PeerRpc};
use crate::types::{MetaRaft, NodeId};

/// The read index as the local Raft gives it: the leader's confirmed commit index, or why not.
pub async fn local(raft: &MetaRaft) -> Result<u64, ForwardRefusal> {
    match raft.get_read_log_id().await {
        Ok((read, _applied)) => Ok(read.map_or(0, |l| l.index)),
        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
            Err(ForwardRefusal::NotLeader { leader_id: f.leader_id, leader: f.leader_node })
        }
        Err(e) => Err(ForwardRefusal::Failed(e.to_string())),
    }
}

/// Waits until this node has applied everything committed before the call (see the module docs), or
/// fails once `within` has passed. One attempt: a leader that moves mid-way fails the barrier.
pub async fn barrier(node_id: NodeId, raft: &MetaRaft, pool: &PeerPool, applied: &watch::Receiver<u64>, within: Duration) -> Result<(), MetaError> {
    let deadline = Instant::now() + within;
    let timeout = |what: &'static str| MetaError::LeaderTimeout { node_id, what, waited_ms: u64::try_from(within.as_millis()).unwrap_or(u64::MAX) };
    let index = match tokio::time::timeout_at(deadline, local(raft)).await.map_err(|_| timeout("read index"))? {
        Ok(index) => index,
        Err(ForwardRefusal::NotLeader { leader_id: Some(leader_id), leader: Some(leader) }) if leader_id != node_id => {
            let left = deadline.saturating_duration_since(Instant::now());
            let conn = pool.conn(leader_id, &leader.raft_addr, Lane::Client);
            match conn.call(PeerRpc::ReadIndex, left).await {
                Ok(PeerResponse::ReadIndex(Ok(index))) => index,
                Ok(PeerResponse::ReadIndex(Err(refusal))) => {
                    return Err(MetaError::NoLeader { node_id, attempts: 1, waited_ms: 0, last_error: format!("read index refused by node {leader_id}: {refusal:?}") })
                }
                Ok(other) => {
                    return Err(MetaError::NoLeader { node_id, attempts: 1, waited_ms: 0, last_error: format!("node {leader_id} answered a read index with {other:?}") })
                }
                Err(e) => return Err(MetaError::NoLeader { node_id, attempts: 1, waited_ms: 0, last_error: e.to_string() }),
            }
        }
        Err(refusal) => return Err(MetaError::NoLeader { node_id, attempts: 1, waited_ms: 0, last_error: format!("no read index: {refusal:?}") }),
    };
    let mut applied = applied.clone();
    tokio::time::timeout_at(deadline, applied.wait_for(|i| *i >= index))
        .await
        .map_err(|_| timeout("applied index at the read index"))?
        .map_err(|_| MetaError::Raft { during: "read index", message: "the state machine stopped".into() })?;
    Ok(())
}
