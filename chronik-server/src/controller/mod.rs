//! The controller: runs on every broker, acts only on the metadata Raft leader. Brokers heartbeat to the
//! leader ([`heartbeat_task`]); the leader's [`control_task`] turns missing heartbeats into fencing and
//! leader failover ([`decide`]) and periodically moves leadership back to preferred replicas.
//!
//! Sizes: each heartbeat may carry the sizes of the replicas the broker hosts ([`size_report`] says
//! when); the leader keeps the latest report of each broker in memory, and [`sizes`] turns them into
//! partition sizes for the rebalancer ([`rebalance`]) once every live broker has reported in this term.
//!
//! Liveness ([`sessions`]): a broker is alive when the leader saw a heartbeat within
//! `broker_session_timeout_ms`, measured on the monotonic clock. A node that just became leader, or
//! whose own ticks stalled for longer than a session (it was paused), counts every broker alive for one
//! full session first: neither a leader change nor a pause fences live brokers. Failover time after a
//! kill -9 is at most the session timeout plus one tick plus one metadata commit.
//!
//! Fencing of the controller itself: every decision is stamped with the Raft term it was made in and
//! proposed to this node's own Raft only (`MetaNode::write_as_leader`), never forwarded. The state
//! machine applies it only if its log entry belongs to that term, and every partition change names the
//! partition epoch it was computed from. A leader that was paused and wakes up believing it still
//! leads can therefore not get any of its stale decisions applied; once a write fails because it no
//! longer leads, it drops the rest of the tick's decisions.

pub mod decide;
pub mod rebalance;
pub mod sessions;
#[cfg(test)]
mod test_cluster;
pub mod size_report;
pub mod sizes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronik_raft::{MetaError, MetaResponse};
use tracing::{info, warn};

use crate::broker::Broker;
use crate::ids::BrokerId;
use sessions::Sessions;

/// How often the leader re-evaluates liveness and partition leaders.
const CONTROL_TICK_MS: u64 = 500;

pub fn spawn(broker: Arc<Broker>) {
    tokio::spawn(heartbeat_task(broker.clone()));
    tokio::spawn(control_task(broker));
}

async fn heartbeat_task(broker: Arc<Broker>) {
    let interval = Duration::from_millis(broker.config.broker_heartbeat_interval_ms);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reporter = size_report::SizeReporter::default();
    loop {
        tick.tick().await;
        let status = broker.meta.status();
        let Some(leader) = status.leader_id else { continue };
        // Read before listing: a partition added meanwhile makes the next heartbeat list again.
        let generation = broker.partitions.generation();
        let report = if reporter.needs_listing(leader, status.term, generation) {
            let hosted = crate::broker::replica_sizes::replica_sizes(&broker).into_iter().map(|r| (r.topic, r.partition, r.size_bytes)).collect();
            reporter.due(leader, status.term, hosted, generation)
        } else {
            None
        };
        let accepted = match broker.meta.heartbeat_with_sizes(interval, report.clone()).await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!(error = %e, "broker heartbeat failed");
                false
            }
        };
        reporter.after(leader, status.term, report.as_ref(), accepted);
    }
}

async fn control_task(broker: Arc<Broker>) {
    let session = Duration::from_millis(broker.config.broker_session_timeout_ms);
    let rebalance_every = Duration::from_millis(broker.config.leader_rebalance_interval_ms);
    let mut tick = tokio::time::interval(Duration::from_millis(CONTROL_TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sessions = Sessions::new(session);
    let mut rebalancer = rebalance::Rebalancer::default();
    let mut last_rebalance = Instant::now();
    let mut removal_retry_at = Instant::now();
    loop {
        tick.tick().await;
        let status = broker.meta.status();
        if !status.is_leader {
            rebalancer = rebalance::Rebalancer::default();
            sessions.stop_leading();
            broker.meta.liveness().clear();
            broker.meta.size_reports().clear();
            continue;
        }
        let term = status.term;
        let now = Instant::now();
        let state = broker.meta.state();
        let liveness = broker.meta.liveness();
        let found = sessions.tick(now, term, broker.node_id.0, state.brokers.keys().copied(), |id| {
            BrokerId(id).node_id().and_then(|id| liveness.last_seen(id))
        });
        if let Some(gap) = found.stalled_for {
            warn!(term, stalled_ms = gap.as_millis() as u64, "controller was stalled for longer than a broker session; every broker gets a fresh session");
            continue;
        }
        let preferred_due = now.duration_since(last_rebalance) >= rebalance_every;
        if preferred_due {
            last_rebalance = now;
        }
        let mut wrote = false;
        let decisions = decide::decide(&state, &found.alive, preferred_due);
        // Moves wait for a tick without liveness or ISR decisions: those come first.
        let requested = broker.rebalance_requested.swap(false, std::sync::atomic::Ordering::Relaxed);
        let moves = if decisions.is_empty() {
            let sizes = || sizes::PartitionSizes::from_reports(&state, &broker.meta.size_reports().of_term(term));
            rebalancer.tick(&state, sizes, now, requested)
        } else {
            Vec::new()
        };
        for cmd in decisions.into_iter().chain(moves) {
            // Decisions of one tick were computed from one applied state in one term; once this node
            // no longer leads that term they are void.
            let still = broker.meta.status();
            if !still.is_leader || still.term != term {
                info!(term, now_term = still.term, "no longer the metadata leader of this term; dropping the rest of the controller's decisions");
                break;
            }
            info!(term, ?cmd, "controller decision");
            match broker.meta.write_as_leader(term, cmd).await {
                Ok(MetaResponse::Ok) => wrote = true,
                // Computed from a partition epoch that moved on meanwhile (an ISR change of its
                // leader): the next tick decides again from the newer state.
                Ok(refused) => info!(term, ?refused, "controller decision refused by the state machine"),
                Err(MetaError::ForwardToLeader { leader_id, .. }) => {
                    info!(term, ?leader_id, "lost the metadata leadership; dropping the rest of the controller's decisions");
                    break;
                }
                Err(e) => {
                    warn!(term, error = %e, "controller write failed; retrying next tick");
                    break;
                }
            }
        }
        if wrote {
            crate::reconcile::partitions(&broker).await;
        }
        follow_registered_addresses(&broker, &state).await;
        if now >= removal_retry_at {
            if let Err(e) = remove_drained(&broker, &state).await {
                warn!(term, error = %e, "a drained broker could not leave the membership yet; retrying in {} ms", DRAINED_REMOVAL_RETRY_MS);
                removal_retry_at = now + Duration::from_millis(DRAINED_REMOVAL_RETRY_MS);
            }
        }
    }
}

/// How long the controller waits before trying again to remove a drained broker it could not remove.
const DRAINED_REMOVAL_RETRY_MS: u64 = 10_000;

/// The last step of a drain: a draining broker that holds no replica any more leaves the membership
/// (the same removal as `remove-node`, with its quorum checks). When it is this node, the leadership
/// moves first and the next leader's controller finishes.
async fn remove_drained(broker: &Broker, state: &chronik_raft::MetadataState) -> Result<(), chronik_raft::MembershipError> {
    let Some(id) = rebalance::drained(state).into_iter().next() else { return Ok(()) };
    let Some(node_id) = BrokerId(id).node_id() else { return Ok(()) };
    let live: std::collections::BTreeSet<u64> = state.live_brokers().filter_map(|b| BrokerId(b.id).node_id()).collect();
    info!(node_id, "broker drained: removing it from the membership");
    match broker.meta.remove_node(node_id, false, &live, broker.config.voters_max).await {
        Ok(m) => {
            info!(node_id, voters = ?m.voters, learners = ?m.learners, "drained broker removed");
            Ok(())
        }
        // This node was the one leaving: it handed the leadership over; the next leader removes it.
        Err(chronik_raft::MembershipError::NotLeader { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The broker records hold each broker's addresses as it registered them at its last start; where the
/// Raft membership still has older ones (a restart with a new advertised address), update it, so
/// Raft, replication, Metadata and the CLI all use the same addresses.
async fn follow_registered_addresses(broker: &Broker, state: &chronik_raft::MetadataState) {
    let members = broker.meta.status().nodes;
    for b in state.brokers.values() {
        let Some(id) = BrokerId(b.id).node_id() else { continue };
        let differs = members.get(&id).is_some_and(|n| *n != b.node);
        if differs {
            if let Err(e) = broker.meta.update_member_node(id, b.node.clone()).await {
                tracing::debug!(node_id = id, error = %e, "member addresses not updated yet");
            }
        }
    }
}
