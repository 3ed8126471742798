//! The registry of this broker's replica fetcher tasks, one per leader broker it follows anything
//! from, each with the partitions (and leader epochs) it fetches. `replication::roles` decides what
//! each should fetch; the tasks themselves are `replication::fetcher`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ids::{BrokerId, LeaderEpoch, TopicPartition};

/// The partitions one fetcher fetches, each with the leader epoch to fetch at.
pub type Partitions = BTreeMap<TopicPartition, LeaderEpoch>;

/// What one fetcher task is handed (and handed again when it changes).
pub type Assignment = Arc<Partitions>;

struct FetcherHandle {
    assignment: watch::Sender<Assignment>,
    task: JoinHandle<()>,
}

/// The running fetcher tasks, by leader broker id.
#[derive(Default)]
pub struct Fetchers {
    by_leader: Mutex<HashMap<BrokerId, FetcherHandle>>,
}

impl Fetchers {
    /// Hands each leader's fetcher its partitions; starts fetchers (with `spawn`) for new leaders and
    /// stops those no longer needed.
    pub fn assign(&self, wanted: BTreeMap<BrokerId, Partitions>, spawn: impl Fn(BrokerId, watch::Receiver<Assignment>) -> JoinHandle<()>) {
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
                    let task = spawn(leader, rx);
                    running.insert(leader, FetcherHandle { assignment: tx, task });
                }
            }
        }
    }

    /// Leaders this broker currently fetches from (admin/status and tests).
    pub fn leaders(&self) -> Vec<BrokerId> {
        let mut v: Vec<BrokerId> = self.by_leader.lock().keys().copied().collect();
        v.sort_unstable();
        v
    }
}
