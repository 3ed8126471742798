//! Writes from any node: try the local Raft, and when it is not the leader hand the command to the
//! leader over the peer transport, retrying (bounded) through elections and leader changes.
//!
//! A failed or timed-out forward does not prove the command was not applied; a retry may apply it
//! again. Commands are written to be idempotent (see [`crate::command`]); the one that is not,
//! `AllocateProducerIds`, at worst wastes a block of ids.

use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use tokio::time::Instant;

use crate::command::{MetaCommand, MetaResponse};
use crate::error::MetaError;
use crate::peer::{ForwardRefusal, Lane, PeerPool, PeerResponse, PeerRpc};
use crate::types::{MetaRaft, NodeId};

/// Default of [`crate::MetaConfig::write_deadline_ms`]: how long one write may take in all,
/// forwarding and retries included.
pub const WRITE_DEADLINE_MS: u64 = 10_000;
/// Longest single forward to the leader (it answers once the command is committed and applied).
pub const FORWARD_TIMEOUT_MS: u64 = 5_000;
/// Pause before retrying after the leader moved or could not be reached.
pub const WRITE_RETRY_PAUSE_MS: u64 = 100;

/// Write `cmd` through the group from node `node_id`: locally when leader, else via the leader;
/// give up with [`MetaError::NoLeader`] after `deadline_ms`.
pub async fn write(node_id: NodeId, raft: &MetaRaft, pool: &PeerPool, cmd: MetaCommand, deadline_ms: u64) -> Result<MetaResponse, MetaError> {
    let deadline = Instant::now() + Duration::from_millis(deadline_ms);
    let mut attempts = 0u32;
    let mut last_error = String::from("no attempt finished");
    // The leader a refusing node named: asked next, since this node's own view may be stale (a
    // node removed from the group never hears of a new leader).
    let mut hint: Option<(NodeId, crate::types::BrokerNode)> = None;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(MetaError::NoLeader { node_id, attempts: attempts - 1, waited_ms: deadline_ms, last_error });
        }
        let local = match tokio::time::timeout(left, raft.client_write(cmd.clone())).await {
            Ok(r) => r,
            Err(_) => {
                // The leader could not commit in time (e.g. it lost its quorum); the entry may still commit.
                last_error = format!("local write not committed within {} ms", left.as_millis());
                continue;
            }
        };
        let forward = match local {
            Ok(r) => return Ok(r.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => f,
            Err(e) => return Err(MetaError::Raft { during: "client write", message: e.to_string() }),
        };
        let (leader_id, leader) = match (hint.take(), forward.leader_id, forward.leader_node) {
            (Some((id, node)), _, _) if id != node_id => (id, node),
            (_, Some(id), Some(node)) if id != node_id => (id, node),
            _ => {
                // No leader known (an election is on): wait for one to show up, then retry.
                last_error = "no metadata leader known".into();
                let wait = left.min(Duration::from_millis(WRITE_RETRY_PAUSE_MS * 5));
                let _ = raft.wait(Some(wait)).metrics(|m| m.current_leader.is_some(), "a leader is known").await;
                continue;
            }
        };
        let timeout = left.min(Duration::from_millis(FORWARD_TIMEOUT_MS));
        let conn = pool.conn(leader_id, &leader.raft_addr, Lane::Client);
        match conn.call(PeerRpc::ForwardWrite(cmd.clone()), timeout).await {
            Ok(PeerResponse::ForwardWrite(Ok(resp))) => return Ok(resp),
            Ok(PeerResponse::ForwardWrite(Err(ForwardRefusal::NotLeader { leader_id: now, leader: named }))) => {
                last_error = format!("node {leader_id} is no longer leader (it names {now:?})");
                hint = now.zip(named);
            }
            Ok(PeerResponse::ForwardWrite(Err(ForwardRefusal::Failed(reason)))) => {
                last_error = format!("leader {leader_id} failed the write: {reason}");
            }
            Ok(other) => last_error = format!("leader {leader_id} gave an unexpected answer: {other:?}"),
            Err(e) => last_error = e.to_string(),
        }
        tracing::debug!(node_id, leader_id, attempts, error = %last_error, "forwarded metadata write not done, retrying");
        tokio::time::sleep(Duration::from_millis(WRITE_RETRY_PAUSE_MS).min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}
