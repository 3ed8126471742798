//! Applies the metadata to the partitions hosted here: this broker leads a partition (its epoch,
//! replicas and ISR) or follows a leader at an epoch; and keeps exactly one fetcher task per leader
//! broker that this broker follows anything from.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::fetcher::{self, Assignment};
use crate::broker::Broker;

struct FetcherHandle {
    assignment: watch::Sender<Assignment>,
    task: JoinHandle<()>,
}

/// The running fetcher tasks, by leader broker id.
#[derive(Default)]
pub struct Fetchers {
    by_leader: Mutex<HashMap<i32, FetcherHandle>>,
}

impl Fetchers {
    /// Hands each leader's fetcher its partitions; starts fetchers for new leaders and stops those no
    /// longer needed.
    fn assign(&self, broker: &Arc<Broker>, wanted: BTreeMap<i32, BTreeMap<(String, i32), i32>>) {
        let mut running = self.by_leader.lock();
        running.retain(|leader, h| {
            let keep = wanted.contains_key(leader) && !h.task.is_finished();
            if !keep {
                h.task.abort();
            }
            keep
        });
        for (leader, parts) in wanted {
            let parts: Assignment = Arc::new(parts);
            match running.get(&leader) {
                Some(h) => {
                    h.assignment.send_if_modified(|cur| {
                        let changed = **cur != *parts;
                        if changed {
                            *cur = parts.clone();
                        }
                        changed
                    });
                }
                None => {
                    let (tx, rx) = watch::channel(parts);
                    let task = tokio::spawn(fetcher::run(broker.clone(), leader, rx));
                    running.insert(leader, FetcherHandle { assignment: tx, task });
                }
            }
        }
    }

    /// Leaders this broker currently fetches from (admin/status and tests).
    pub fn leaders(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.by_leader.lock().keys().copied().collect();
        v.sort_unstable();
        v
    }
}

/// Sets every local partition's role from the applied metadata, re-plans the fetchers and lets the
/// group coordinator follow the offsets partitions this broker leads. Cheap and idempotent; called
/// after every reconcile.
pub fn apply_roles(broker: &Arc<Broker>) {
    let state = broker.meta.state();
    let me = broker.node_id;
    let now_ms = crate::server::now_ms();
    let mut wanted: BTreeMap<i32, BTreeMap<(String, i32), i32>> = BTreeMap::new();
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
                p.become_follower(pm.leader, pm.leader_epoch);
                if pm.leader >= 0 {
                    wanted.entry(pm.leader).or_default().insert((t.name.clone(), index), pm.leader_epoch);
                }
            }
        }
    }
    broker.fetchers.assign(broker, wanted);
    crate::groups::ownership::sync(broker);
}
