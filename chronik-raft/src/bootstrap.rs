//! The bootstrap rule (docs/OPERATIONS.md, "Start a cluster") as a plain decision, plus the round of questions that
//! feeds it.
//!
//! A fresh node (no vote, log or snapshot) given its peers asks each of them [`ClusterInfo`].
//! - Any peer in a formed cluster → this node waits to be reached by that cluster's leader (in a
//!   static cluster every peer is a voter from the start).
//! - Otherwise only the lowest id of the members initializes, and only once a majority of the
//!   members (itself included) answered that they are pristine. Waiting for a majority means a
//!   lowest-id node whose data dir was wiped while its peers are down does not found a second
//!   cluster next to the one its peers still hold.
//! - Every other node waits for the leader's messages.
//!
//! A node with any stored state never gets here: restarts never initialize.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::peer::{ClusterInfo, PeerPool, PeerResponse, PeerRpc, Lane};
use crate::types::{BrokerNode, NodeId};

/// Time allowed for one peer to answer [`ClusterInfo`] during bootstrap.
pub const CLUSTER_INFO_TIMEOUT_MS: u64 = 1_000;
/// Pause between rounds of questions while the answers do not allow a decision yet.
pub const DISCOVERY_RETRY_MS: u64 = 200;

/// What one peer said (or did not say) when asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAnswer {
    /// The peer belongs to a formed (or forming) cluster.
    Initialized,
    /// The peer is fresh too.
    Pristine,
    /// No answer: down, unreachable, or refused the question.
    NoAnswer,
}

/// What a fresh node does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Form the cluster: `initialize` with all members.
    Initialize,
    /// Start and wait for a leader to reach this node.
    Wait,
    /// Not enough answers yet to found a cluster safely; ask again.
    AskAgain,
}

/// Decide for fresh node `self_id` among `members` (all ids, itself included) given the answers of
/// the others. A member list of just this node is a single-node cluster and initializes at once.
pub fn decide(self_id: NodeId, members: &BTreeSet<NodeId>, answers: &BTreeMap<NodeId, PeerAnswer>) -> Decision {
    if members.iter().all(|id| *id == self_id) {
        return Decision::Initialize;
    }
    if answers.iter().any(|(id, a)| *id != self_id && *a == PeerAnswer::Initialized) {
        return Decision::Wait;
    }
    if members.first() != Some(&self_id) {
        return Decision::Wait;
    }
    let pristine = 1 + answers.iter().filter(|(id, a)| **id != self_id && members.contains(id) && **a == PeerAnswer::Pristine).count();
    if pristine * 2 > members.len() {
        Decision::Initialize
    } else {
        Decision::AskAgain
    }
}

/// Ask every member but `self_id` for its [`ClusterInfo`], concurrently, each within
/// [`CLUSTER_INFO_TIMEOUT_MS`].
pub async fn ask_peers(self_id: NodeId, members: &BTreeMap<NodeId, BrokerNode>, pool: &PeerPool) -> BTreeMap<NodeId, PeerAnswer> {
    let timeout = Duration::from_millis(CLUSTER_INFO_TIMEOUT_MS);
    let mut questions = tokio::task::JoinSet::new();
    for (id, node) in members.iter().filter(|(id, _)| **id != self_id) {
        let conn = pool.conn(*id, &node.raft_addr, Lane::Client);
        questions.spawn(async move {
            let answer = match conn.call(PeerRpc::ClusterInfo, timeout).await {
                Ok(PeerResponse::ClusterInfo(ClusterInfo { initialized: true, .. })) => PeerAnswer::Initialized,
                Ok(PeerResponse::ClusterInfo(ClusterInfo { initialized: false, .. })) => PeerAnswer::Pristine,
                Ok(other) => {
                    tracing::warn!(peer = conn.target(), answer = ?other, "unexpected answer to cluster info");
                    PeerAnswer::NoAnswer
                }
                Err(e) => {
                    tracing::debug!(error = %e, "peer did not answer cluster info");
                    PeerAnswer::NoAnswer
                }
            };
            (conn.target(), answer)
        });
    }
    let mut answers = BTreeMap::new();
    while let Some(done) = questions.join_next().await {
        match done {
            Ok((id, answer)) => {
                answers.insert(id, answer);
            }
            Err(e) => tracing::warn!(error = %e, "cluster info question task failed"),
        }
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;
    use PeerAnswer::{Initialized as I, NoAnswer as N, Pristine as P};

    fn ids(v: &[NodeId]) -> BTreeSet<NodeId> {
        v.iter().copied().collect()
    }

    /// (self, members, answers of the others, expected)
    type Case = (NodeId, &'static [NodeId], &'static [(NodeId, PeerAnswer)], Decision);

    #[test]
    fn decision_table() {
        let cases: &[Case] = &[
            (1, &[1], &[], Decision::Initialize),
            (1, &[], &[], Decision::Initialize),
            (1, &[1, 2, 3], &[(2, P), (3, P)], Decision::Initialize),
            (1, &[1, 2, 3], &[(2, P), (3, N)], Decision::Initialize),
            (1, &[1, 2, 3], &[(2, N), (3, N)], Decision::AskAgain),
            (1, &[1, 2, 3], &[(2, P), (3, I)], Decision::Wait),
            (1, &[1, 2, 3], &[(2, I), (3, N)], Decision::Wait),
            (2, &[1, 2, 3], &[(1, P), (3, P)], Decision::Wait),
            (3, &[1, 2, 3], &[(1, N), (2, N)], Decision::Wait),
            (1, &[1, 2, 3, 4, 5], &[(2, P), (3, N), (4, N), (5, N)], Decision::AskAgain),
            (1, &[1, 2, 3, 4, 5], &[(2, P), (3, P), (4, N), (5, N)], Decision::Initialize),
            (1, &[1, 2, 3, 4], &[(2, P), (3, N), (4, N)], Decision::AskAgain),
            (1, &[1, 2, 3, 4], &[(2, P), (3, P), (4, N)], Decision::Initialize),
            // An answer from outside the member list does not count toward the majority.
            (1, &[1, 2, 3], &[(9, P), (2, N)], Decision::AskAgain),
        ];
        for (self_id, members, answers, expected) in cases {
            let answers: BTreeMap<_, _> = answers.iter().copied().collect();
            assert_eq!(decide(*self_id, &ids(members), &answers), *expected, "self {self_id} members {members:?} answers {answers:?}");
        }
    }
}
