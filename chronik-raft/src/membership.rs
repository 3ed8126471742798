//! Membership changes of the metadata group: add a node (as a learner that catches up, then promoted
//! by the odd-voter policy), remove one, promote one by hand, and move the leadership to a named node.
//!
//! Every change runs on the metadata leader, one at a time: a second request while one runs is
//! refused with the change in progress named. The policy is plain code ([`voters_after`]); the
//! operations on [`MetaNode`] carry it out with openraft's `add_learner` / `change_membership`.
//!
//! openraft 0.9 has no leadership transfer, so [`MetaNode::transfer_leader`] builds one from its
//! runtime switches: every voter but the target stops starting elections for a bounded time
//! ([`PeerRpc::HoldElections`], undone by itself when the time is up), the leader stops its
//! heartbeats, and once the followers' leader lease has run out the target, caught up with the
//! leader's log, calls an election that only it can win.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, RaftMetrics};
use tokio::time::Instant;

use crate::command::{MetaCommand, MetaResponse};
use crate::node::MetaNode;
use crate::peer::{Lane, PeerRpc};
use crate::types::{BrokerNode, MetaRaft, NodeId};

/// Default most voters the policy promotes to (`voters_max`).
pub const VOTERS_MAX_DEFAULT: usize = 5;
/// How long an addition waits for the new learner to catch up with the metadata log.
pub const LEARNER_CATCH_UP_WAIT_MS: u64 = 60_000;
/// How often catch-up and leadership are re-checked while waiting.
const POLL_MS: u64 = 50;
/// How long voters hold their elections during a leadership transfer (released by itself after).
pub const TRANSFER_HOLD_MS: u64 = 8_000;
/// How long a transfer waits for the target to lead.
pub const TRANSFER_WAIT_MS: u64 = 10_000;

/// Why a membership change was refused or failed. Nothing was changed unless the variant says so.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("this node is not the metadata leader; {}", match leader_id { Some(id) => format!("node {id} leads"), None => "no leader is known right now".into() })]
    NotLeader { leader_id: Option<NodeId>, leader: Option<Box<BrokerNode>> },
    #[error("node {0} already exists in the cluster")]
    AlreadyExists(NodeId),
    #[error("{0}")]
    Removed(String),
    #[error("node {0} is not a member of the cluster")]
    UnknownNode(NodeId),
    #[error("a membership change is in progress: {0}")]
    InProgress(String),
    #[error("refused: {0} (use --force to do it anyway)")]
    WouldBreakQuorum(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The learner was added and keeps catching up; it was not promoted.
    #[error("node {node_id} has not caught up with the metadata log within {waited_ms} ms (matched index {matched:?} of {target}); nothing changed (an added node stays a learner)")]
    CatchUpTimeout { node_id: NodeId, waited_ms: u64, matched: Option<u64>, target: u64 },
    #[error("leadership did not move to node {target} within {waited_ms} ms (leader now {leader:?})")]
    TransferTimeout { target: NodeId, waited_ms: u64, leader: Option<NodeId> },
    #[error("metadata raft: {0}")]
    Raft(String),
}

/// The voters and learners after a change.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Members {
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
}

/// The odd-voter policy: from `voters` (less `leaving`) and the caught-up `learners`, the voter set
/// to aim for — the largest odd count not above `voters_max` and the members available, reached by
/// promoting learners (lowest id first) or demoting voters (highest id first, never `keep`).
pub fn voters_after(
    voters: &BTreeSet<NodeId>,
    learners: &BTreeSet<NodeId>,
    leaving: Option<NodeId>,
    keep: NodeId,
    voters_max: usize,
) -> BTreeSet<NodeId> {
    let mut out: BTreeSet<NodeId> = voters.iter().copied().filter(|v| Some(*v) != leaving).collect();
    let pool: Vec<NodeId> = learners.iter().copied().filter(|l| Some(*l) != leaving && !out.contains(l)).collect();
    let available = out.len() + pool.len();
    let mut target = available.min(voters_max.max(1));
    if target.is_multiple_of(2) {
        target -= 1;
    }
    for l in pool {
        if out.len() >= target {
            break;
        }
        out.insert(l);
    }
    while out.len() > target.max(1) {
        let Some(demote) = out.iter().rev().copied().find(|v| *v != keep) else { break };
        out.remove(&demote);
    }
    out
}

/// Whether the voters that remain can still lose one of their number (the removal check): a group
/// of at least three voters must keep at least three.
pub fn keeps_fault_tolerance(before: usize, after: usize) -> bool {
    after >= before.min(3)
}

impl MetaNode {
    /// Refusal unless this node leads the metadata right now.
    fn ensure_leader(&self) -> Result<(), MembershipError> {
        let s = self.status();
        if s.is_leader {
            return Ok(());
        }
        let leader = s.leader_id.and_then(|id| s.nodes.get(&id).cloned()).map(Box::new);
        Err(MembershipError::NotLeader { leader_id: s.leader_id, leader })
    }

    /// Hold the one-change-at-a-time lock for `what`, or say which change holds it.
    fn begin_change(&self, what: String) -> Result<ChangeGuard<'_>, MembershipError> {
        let Ok(guard) = self.change_lock.try_lock() else {
            let running = self.change_what.lock().clone().unwrap_or_else(|| "another change".into());
            return Err(MembershipError::InProgress(running));
        };
        *self.change_what.lock() = Some(what);
        Ok(ChangeGuard { node: self, _guard: guard })
    }

    fn members(&self) -> (BTreeSet<NodeId>, BTreeSet<NodeId>) {
        let s = self.status();
        (s.voters.into_iter().collect(), s.learners.into_iter().collect())
    }

    /// Leader's last log index, and what each follower or learner has matched.
    fn replication(&self) -> (u64, BTreeMap<NodeId, Option<u64>>) {
        let m: RaftMetrics<NodeId, BrokerNode> = self.raft.metrics().borrow().clone();
        let last = m.last_log_index.unwrap_or(0);
        let matched = m
            .replication
            .map(|r| r.into_iter().map(|(id, log)| (id, log.map(|l| l.index))).collect())
            .unwrap_or_default();
        (last, matched)
    }

    /// Learners whose matched index reaches the leader's last log index.
    fn caught_up(&self, learners: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
        let (last, matched) = self.replication();
        learners.iter().copied().filter(|l| matched.get(l).copied().flatten().is_some_and(|m| m >= last)).collect()
    }

    /// Wait up to `wait_ms` until member `id` has matched the leader's last log index. The log
    /// keeps growing while the cluster works (ISR changes, moves), so a member is rarely caught up at
    /// the very moment it is asked about; it is within a heartbeat or two.
    async fn wait_caught_up(&self, id: NodeId, wait_ms: u64) -> Result<(), MembershipError> {
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        let member = BTreeSet::from([id]);
        while self.caught_up(&member).is_empty() {
            self.ensure_leader()?;
            if Instant::now() >= deadline {
                let (target, matched) = self.replication();
                return Err(MembershipError::CatchUpTimeout { node_id: id, waited_ms: wait_ms, matched: matched.get(&id).copied().flatten(), target });
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
        Ok(())
    }

    async fn set_voters(&self, voters: BTreeSet<NodeId>) -> Result<(), MembershipError> {
        self.raft.change_membership(ChangeMembers::ReplaceAllVoters(voters), true).await.map_err(raft_error)?;
        Ok(())
    }

    /// Add node `id` at `node`: as a learner first, then — once it has caught up with the metadata
    /// log — promoted if the odd-voter policy (at most `voters_max`) wants more voters. The leader
    /// and its term do not change. Asking again for a member at the same addresses finishes its
    /// addition (a retry is safe); refused when this node does not lead, the id is a member at other
    /// addresses or was removed, or another change runs.
    pub async fn add_node(&self, id: NodeId, node: BrokerNode, voters_max: usize) -> Result<Members, MembershipError> {
        self.ensure_leader()?;
        let _change = self.begin_change(format!("adding node {id}"))?;
        let broker_id = i32::try_from(id).map_err(|_| MembershipError::Invalid(format!("node id {id} does not fit a broker id")))?;
        if self.state().removed_brokers.contains(&broker_id) {
            return Err(MembershipError::Removed(crate::state::removed_message(broker_id)));
        }
        match self.status().nodes.get(&id) {
            // A retry of an addition that was cut short (a lost answer, a leader change): finish it.
            Some(existing) if *existing == node => tracing::info!(node_id = id, "node is already a member at these addresses; finishing its addition"),
            Some(_) => return Err(MembershipError::AlreadyExists(id)),
            None => {
                tracing::info!(node_id = id, ?node, "adding a metadata learner");
                self.raft.add_learner(id, node, false).await.map_err(raft_error)?;
            }
        }
        self.wait_caught_up(id, LEARNER_CATCH_UP_WAIT_MS).await?;
        let (voters, learners) = self.members();
        let wanted = voters_after(&voters, &self.caught_up(&learners), None, self.node_id, voters_max);
        if !voters.is_subset(&wanted) || wanted.len() <= voters.len() {
            tracing::info!(node_id = id, voters = ?voters, "learner caught up; the odd-voter policy keeps the voters");
        } else {
            tracing::info!(node_id = id, from = ?voters, to = ?wanted, "learner caught up; promoting");
            self.set_voters(wanted).await?;
        }
        Ok(self.member_view())
    }

    /// Promote learner `id` to voter now, whatever the odd-voter policy says (operator override).
    pub async fn promote(&self, id: NodeId) -> Result<Members, MembershipError> {
        self.ensure_leader()?;
        let _change = self.begin_change(format!("promoting node {id}"))?;
        let (voters, learners) = self.members();
        if voters.contains(&id) {
            return Err(MembershipError::Invalid(format!("node {id} is already a voter")));
        }
        if !learners.contains(&id) {
            return Err(MembershipError::UnknownNode(id));
        }
        self.wait_caught_up(id, LEARNER_CATCH_UP_WAIT_MS).await?;
        let mut wanted = voters;
        wanted.insert(id);
        self.set_voters(wanted).await?;
        Ok(self.member_view())
    }

    /// Remove node `id` from the group (voter or learner), keeping the voter count odd (a learner is
    /// promoted, or a voter demoted). Refused without `force` when fewer voters would remain than can
    /// lose one (below three, from three or more) or than a majority of `live` voters can carry.
    /// When `id` leads the metadata, leadership moves to another voter first. Then the broker record
    /// goes and the id is remembered as removed.
    pub async fn remove_node(&self, id: NodeId, force: bool, live: &BTreeSet<NodeId>, voters_max: usize) -> Result<Members, MembershipError> {
        self.ensure_leader()?;
        let (voters, learners) = self.members();
        if !voters.contains(&id) && !learners.contains(&id) {
            return Err(MembershipError::UnknownNode(id));
        }
        let broker_id = i32::try_from(id).map_err(|_| MembershipError::Invalid(format!("node id {id} does not fit a broker id")))?;
        let keep = if id == self.node_id { voters.iter().copied().find(|v| *v != id).unwrap_or(id) } else { self.node_id };
        let wanted = voters_after(&voters, &self.caught_up(&learners), Some(id), keep, voters_max);
        if !force {
            self.check_removal(id, live, voters_max)?;
        }
        if id == self.node_id {
            // The leader cannot remove itself and stay in charge: move leadership, and let the new
            // leader carry out the removal when asked again.
            let target = keep;
            if target == id {
                return Err(MembershipError::WouldBreakQuorum(format!("node {id} is the only voter")));
            }
            self.transfer_leader(target).await?;
            return Err(MembershipError::NotLeader { leader_id: Some(target), leader: self.status().nodes.get(&target).cloned().map(Box::new) });
        }
        let _change = self.begin_change(format!("removing node {id}"))?;
        tracing::info!(node_id = id, from = ?voters, to = ?wanted, "removing a metadata member");
        if voters.contains(&id) || wanted != voters {
            self.set_voters(wanted).await?;
        }
        self.raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false).await.map_err(raft_error)?;
        match self.write(MetaCommand::RemoveBroker { id: broker_id }).await {
            Ok(MetaResponse::Ok) => {}
            Ok(other) => return Err(MembershipError::Raft(format!("recording the removal of broker {id}: {other:?}"))),
            Err(e) => return Err(MembershipError::Raft(format!("recording the removal of broker {id}: {e}"))),
        }
        Ok(self.member_view())
    }

    /// Make the membership carry `node` as node `id`'s endpoints. A broker's own registration is
    /// the source of its addresses (it re-registers at every start, with what it advertises now);
    /// the Raft membership, which openraft uses to reach it, follows. Refused while another change
    /// runs (the controller tries again on its next tick).
    pub async fn update_member_node(&self, id: NodeId, node: BrokerNode) -> Result<(), MembershipError> {
        self.ensure_leader()?;
        let _change = self.begin_change(format!("updating node {id}'s addresses"))?;
        match self.status().nodes.get(&id) {
            None => return Err(MembershipError::UnknownNode(id)),
            Some(current) if *current == node => return Ok(()),
            Some(current) => tracing::info!(node_id = id, from = ?current, to = ?node, "updating a member's addresses from its registration"),
        }
        self.raft.change_membership(ChangeMembers::SetNodes(BTreeMap::from([(id, node)])), true).await.map_err(raft_error)?;
        Ok(())
    }

    /// Whether removing `id` keeps the metadata group able to lose a node and to reach a majority
    /// of `live` voters; the refusal says why not.
    pub fn check_removal(&self, id: NodeId, live: &BTreeSet<NodeId>, voters_max: usize) -> Result<(), MembershipError> {
        self.ensure_leader()?;
        let (voters, learners) = self.members();
        if !voters.contains(&id) && !learners.contains(&id) {
            return Err(MembershipError::UnknownNode(id));
        }
        let keep = if id == self.node_id { voters.iter().copied().find(|v| *v != id).unwrap_or(id) } else { self.node_id };
        let wanted = voters_after(&voters, &self.caught_up(&learners), Some(id), keep, voters_max);
        if voters.contains(&id) && !keeps_fault_tolerance(voters.len(), wanted.len()) {
            return Err(MembershipError::WouldBreakQuorum(format!(
                "removing node {id} leaves {} voter(s) of {}: the metadata could not survive the loss of one more node",
                wanted.len(),
                voters.len()
            )));
        }
        let live_voters = wanted.iter().filter(|v| live.contains(v)).count();
        if live_voters * 2 <= wanted.len() {
            return Err(MembershipError::WouldBreakQuorum(format!(
                "only {live_voters} of the remaining voters {wanted:?} are live: no majority would be left"
            )));
        }
        Ok(())
    }

    /// Move the metadata leadership to voter `target`, caught up with the log. See the module docs.
    pub async fn transfer_leader(&self, target: NodeId) -> Result<Members, MembershipError> {
        self.ensure_leader()?;
        let _change = self.begin_change(format!("moving the leadership to node {target}"))?;
        let status = self.status();
        if target == self.node_id {
            return Ok(self.member_view());
        }
        if !status.voters.contains(&target) {
            return Err(MembershipError::Invalid(format!("node {target} is not a voter")));
        }
        self.wait_caught_up(target, TRANSFER_WAIT_MS).await?;
        tracing::info!(target, term = status.term, "moving the metadata leadership");
        let others: Vec<(NodeId, BrokerNode)> =
            status.nodes.iter().filter(|(id, _)| **id != target && **id != self.node_id && status.voters.contains(id)).map(|(id, n)| (*id, n.clone())).collect();
        let hold = Duration::from_millis(TRANSFER_HOLD_MS);
        for (id, node) in &others {
            let conn = self.pool.conn(*id, &node.raft_addr, Lane::Client);
            if let Err(e) = conn.call(PeerRpc::HoldElections { ms: TRANSFER_HOLD_MS }, Duration::from_millis(1_000)).await {
                tracing::warn!(node_id = id, error = %e, "could not hold elections on a voter; transferring anyway");
            }
        }
        self.hold_elections(hold);
        self.raft.runtime_config().heartbeat(false);
        let lease = Duration::from_millis(self.election_timeout_max_ms + 200);
        tokio::time::sleep(lease).await;
        let Some(node) = status.nodes.get(&target) else {
            self.raft.runtime_config().heartbeat(true);
            return Err(MembershipError::UnknownNode(target));
        };
        let conn = self.pool.conn(target, &node.raft_addr, Lane::Client);
        let called = conn.call(PeerRpc::StartElection, Duration::from_millis(1_000)).await;
        let deadline = Instant::now() + Duration::from_millis(TRANSFER_WAIT_MS);
        let result = loop {
            let now = self.status();
            if now.leader_id == Some(target) && now.term > status.term {
                break Ok(());
            }
            if Instant::now() >= deadline {
                break Err(MembershipError::TransferTimeout { target, waited_ms: TRANSFER_WAIT_MS, leader: now.leader_id });
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        };
        self.raft.runtime_config().heartbeat(true);
        match (&result, called) {
            (Err(_), Err(e)) => tracing::warn!(target, error = %e, "the transfer target did not take the election call"),
            (Err(e), Ok(_)) => tracing::warn!(target, error = %e, "leadership transfer did not complete"),
            (Ok(()), _) => tracing::info!(target, "metadata leadership moved"),
        }
        result.map(|()| self.member_view())
    }

    fn hold_elections(&self, hold: Duration) {
        hold_elections(&self.raft, hold);
    }

    /// Voters and learners now.
    pub fn member_view(&self) -> Members {
        let s = self.status();
        Members { voters: s.voters, learners: s.learners }
    }
}

/// Keep `raft` from starting elections for `hold` (a leadership transfer to another node is under
/// way); released by itself when the time is up, so a lost transfer never leaves a node unable to
/// stand for election.
pub fn hold_elections(raft: &MetaRaft, hold: Duration) {
    raft.runtime_config().elect(false);
    let raft = raft.clone();
    tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        raft.runtime_config().elect(true);
    });
}

/// Releases the one-change lock and forgets what was running.
struct ChangeGuard<'a> {
    node: &'a MetaNode,
    _guard: tokio::sync::MutexGuard<'a, ()>,
}

impl Drop for ChangeGuard<'_> {
    fn drop(&mut self) {
        *self.node.change_what.lock() = None;
    }
}

fn raft_error(e: RaftError<NodeId, ClientWriteError<NodeId, BrokerNode>>) -> MembershipError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => MembershipError::NotLeader { leader_id: f.leader_id, leader: f.leader_node.map(Box::new) },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => MembershipError::InProgress(c.to_string()),
        other => MembershipError::Raft(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[NodeId]) -> BTreeSet<NodeId> {
        v.iter().copied().collect()
    }

    /// (voters, caught-up learners, leaving, voters_max) → voters after.
    type Case = (&'static [NodeId], &'static [NodeId], Option<NodeId>, usize, &'static [NodeId]);

    #[test]
    fn odd_voter_policy() {
        let cases: Vec<Case> = vec![
            (&[1], &[], None, 5, &[1]),
            (&[1], &[2], None, 5, &[1]),
            (&[1], &[2, 3], None, 5, &[1, 2, 3]),
            (&[1, 2, 3], &[4], None, 5, &[1, 2, 3]),
            (&[1, 2, 3], &[4, 5], None, 5, &[1, 2, 3, 4, 5]),
            (&[1, 2, 3, 4, 5], &[6, 7], None, 5, &[1, 2, 3, 4, 5]),
            (&[1, 2, 3], &[4, 5], None, 3, &[1, 2, 3]),
            // Removals keep the count odd.
            (&[1, 2, 3, 4, 5], &[], Some(5), 5, &[1, 2, 3]),
            (&[1, 2, 3, 4, 5], &[6], Some(2), 5, &[1, 3, 4, 5, 6]),
            (&[1, 2, 3], &[4], Some(3), 5, &[1, 2, 4]),
            (&[1, 2, 3], &[], Some(3), 5, &[1]),
            (&[1, 2, 3], &[4], Some(4), 5, &[1, 2, 3]),
            (&[1, 2, 3, 4, 5], &[], Some(1), 5, &[2, 3, 4]),
        ];
        for (voters, learners, leaving, max, want) in cases {
            let keep = if leaving == Some(1) { 2 } else { 1 };
            let got = voters_after(&set(voters), &set(learners), leaving, keep, max);
            assert_eq!(got, set(want), "voters {voters:?} learners {learners:?} leaving {leaving:?} max {max}");
        }
    }

    #[test]
    fn the_kept_node_is_never_demoted() {
        // Node 5 leads; removing 4 of five voters demotes one voter, never 5.
        let got = voters_after(&set(&[1, 2, 3, 4, 5]), &set(&[]), Some(4), 5, 5);
        assert_eq!(got, set(&[1, 2, 5]));
    }

    #[test]
    fn fault_tolerance_rule() {
        assert!(keeps_fault_tolerance(5, 3));
        assert!(!keeps_fault_tolerance(3, 1));
        assert!(keeps_fault_tolerance(1, 1));
        assert!(!keeps_fault_tolerance(3, 2));
    }
}
