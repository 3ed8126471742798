//! The controller: runs on every broker, acts only on the metadata Raft leader. Brokers heartbeat to the
//! leader ([`heartbeat_task`]); the leader's [`control_task`] turns missing heartbeats into fencing and
//! leader failover ([`decide`]) and periodically moves leadership back to preferred replicas.
//!
//! A broker is alive when the leader saw a heartbeat within `broker_session_timeout_ms`. A node that just
//! became leader has no heartbeat history, so it counts every broker alive for one full session first:
//! a leader change never fences live brokers. Failover time after a kill -9 is at most the session
//! timeout plus one tick plus one metadata commit.

pub mod decide;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::broker::Broker;

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
    loop {
        tick.tick().await;
        match broker.meta.heartbeat(interval).await {
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "broker heartbeat failed"),
        }
    }
}

async fn control_task(broker: Arc<Broker>) {
    let session = Duration::from_millis(broker.config.broker_session_timeout_ms);
    let rebalance_every = Duration::from_millis(broker.config.leader_rebalance_interval_ms);
    let mut tick = tokio::time::interval(Duration::from_millis(CONTROL_TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leading_since: Option<Instant> = None;
    let mut last_rebalance = Instant::now();
    loop {
        tick.tick().await;
        let status = broker.meta.status();
        if !status.is_leader {
            if leading_since.take().is_some() {
                broker.meta.liveness().clear();
            }
            continue;
        }
        let since = *leading_since.get_or_insert_with(Instant::now);
        let now = Instant::now();
        let state = broker.meta.state();
        let alive: BTreeSet<i32> = state
            .brokers
            .keys()
            .copied()
            .filter(|id| {
                if *id == broker.node_id {
                    return true;
                }
                let seen = broker.meta.liveness().last_seen(*id as u64).map_or(since, |t| t.max(since));
                now.duration_since(seen) < session
            })
            .collect();
        let rebalance = now.duration_since(last_rebalance) >= rebalance_every;
        if rebalance {
            last_rebalance = now;
        }
        for cmd in decide::decide(&state, &alive, rebalance) {
            info!(?cmd, "controller decision");
            if let Err(e) = broker.write_meta(cmd).await {
                warn!(error = %e, "controller write failed; retrying next tick");
                break;
            }
        }
    }
}
