//! The leader's ISR upkeep: every `ISR_CHECK_INTERVAL_MS`, each partition led here is asked whether a
//! follower should leave the ISR (not caught up for `replica_lag_time_max_ms`) or join it (reached the
//! high watermark); the change is written through the metadata Raft group as a `SetPartitionState`
//! with this broker still leader, and takes effect here when it is applied (never before: acks=all
//! counts the committed ISR). A change is only proposed while the applied metadata still names this
//! broker leader at the same leader epoch with the same ISR the change was computed from, and it names
//! that metadata's partition epoch: if the partition moved on before the change is applied (a failover
//! while this leader was paused or cut off), the state machine refuses it.
//!
//! A leader whose own checks stalled for longer than `replica_lag_time_max_ms` (the process was paused)
//! shrinks nothing for one more lag window: its followers' silence happened while it could not listen.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronik_raft::MetaCommand;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::partition::replica_state::IsrChange;

/// How often the leader looks for ISR changes.
pub const ISR_CHECK_INTERVAL_MS: u64 = 250;

pub async fn run(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(Duration::from_millis(ISR_CHECK_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let lag_max_ms = i64::try_from(broker.config.replica_lag_time_max_ms).unwrap_or(i64::MAX);
    let lag_max = Duration::from_millis(broker.config.replica_lag_time_max_ms);
    let mut last_tick = Instant::now();
    let mut no_shrink_until: Option<Instant> = None;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let gap = now.saturating_duration_since(last_tick);
        last_tick = now;
        if gap > lag_max {
            warn!(stalled_ms = gap.as_millis() as u64, "ISR checks were stalled for longer than the replica lag limit; no shrink for one lag window");
            no_shrink_until = Some(now + lag_max);
        }
        let shrink_allowed = no_shrink_until.is_none_or(|until| now >= until);
        let now_ms = chronik_wal::now_ms();
        for p in broker.partitions.all() {
            let Some((change, epoch)) = p.isr_change(now_ms, lag_max_ms) else { continue };
            if matches!(change, IsrChange::Shrink(_)) && !shrink_allowed {
                continue;
            }
            let state = broker.meta.state();
            let Some(pm) = state.topics.get(&p.topic).and_then(|t| t.partitions.get(usize::try_from(p.index).unwrap_or(usize::MAX))) else {
                continue;
            };
            let isr = match &change {
                IsrChange::Shrink(isr) | IsrChange::Expand(isr) => isr.clone(),
            };
            // The change was computed from the ISR this leader holds; it only stands against the same
            // ISR in the metadata, at the partition epoch read here.
            let computed_from = p.isr();
            if pm.leader != broker.node_id.0
                || pm.leader_epoch != epoch
                || computed_from.as_ref() != Some(&pm.isr)
                || pm.isr == isr
                || !isr.contains(&broker.node_id.0)
            {
                continue;
            }
            info!(topic = %p.topic, partition = p.index, from = ?pm.isr, to = ?isr, ?change, "ISR change");
            let cmd = MetaCommand::SetPartitionState {
                topic: p.topic.clone(),
                partition: p.index,
                leader: broker.node_id.0,
                isr,
                expected_partition_epoch: pm.partition_epoch,
            };
            match broker.meta.write(cmd).await {
                // The leader applies its new ISR at once (the metadata follower loop would too).
                Ok(_) => super::apply_roles(&broker),
                Err(e) => warn!(topic = %p.topic, partition = p.index, error = %e, "ISR change not committed; retrying next check"),
            }
        }
    }
}
