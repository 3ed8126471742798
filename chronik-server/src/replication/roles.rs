//! Applies the metadata to the partitions hosted here: this broker leads a partition (its epoch,
//! replicas and ISR) or follows a leader at an epoch; and keeps exactly one fetcher task per leader
//! broker that this broker follows anything from (the registry is `broker::fetchers`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::fetcher;
use crate::broker::fetchers::Partitions;
use crate::broker::Broker;
use crate::ids::{BrokerId, LeaderEpoch, TopicPartition};

/// Sets every local partition's role from the applied metadata and re-plans the fetchers. Cheap and
/// idempotent; called after every reconcile (`reconcile::partitions`) and ISR change.
pub fn apply_roles(broker: &Arc<Broker>) {
    let state = broker.meta.state();
    let me = broker.node_id.0;
    let now_ms = chronik_wal::now_ms();
    let mut wanted: BTreeMap<BrokerId, Partitions> = BTreeMap::new();
    for t in state.topics.values() {
        for (i, pm) in t.partitions.iter().enumerate() {
            let Ok(index) = i32::try_from(i) else { continue };
            if !pm.replicas.contains(&me) {
                continue;
            }
            let Some(p) = broker.partitions.get(&t.name, index) else { continue };
            if p.topic_id != t.topic_id {
                continue;
            }
            if pm.leader == me {
                p.become_leader(pm.leader_epoch, pm.replicas.clone(), pm.isr.clone(), now_ms);
            } else {
                let (leader, epoch) = (BrokerId(pm.leader), LeaderEpoch(pm.leader_epoch));
                p.become_follower(leader, epoch);
                if pm.leader >= 0 {
                    wanted.entry(leader).or_default().insert(TopicPartition::new(t.name.as_str(), index), epoch);
                }
            }
        }
    }
    broker.fetchers.assign(wanted, |leader, assignment| tokio::spawn(fetcher::run(broker.clone(), leader, assignment)));
}
