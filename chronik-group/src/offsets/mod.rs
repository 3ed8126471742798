//! Durable committed offsets.
//!
//! Groups are spread over `offsets_partitions` logs by Kafka's hash of the group id. A commit is
//! one record batch ([`record`]); it is appended, fsynced (sharing the fsync with concurrent
//! commits), and only then applied to the in-memory map and answered. Batches are applied in log
//! order, whatever order their fsyncs return in, so the map always equals a replay of the durable
//! log. [`OffsetStore::open`] rebuilds the map by replaying every log.
//!
//! Parts: [`record`] (batch codec), [`log`] (the log interface), [`wal_log`] (its `chronik-wal`
//! binding), and the store below.

pub mod log;
pub mod record;
pub mod wal_log;


use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tracing::{debug, info};

use crate::GroupError;
use log::{OffsetsLog, ReplayError, Syncer};
use record::OffsetRecord;

/// A topic partition named by topic name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// What a group committed for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp_ms: i64,
}

type GroupOffsets = HashMap<TopicPartition, CommittedOffset>;

/// A batch appended but not yet known durable.
struct Pending {
    end_offset: i64,
    records: Vec<OffsetRecord>,
}

struct PartitionState {
    log: Box<dyn OffsetsLog>,
    /// Appended batches in log order, applied to `groups` once fsynced.
    pending: VecDeque<Pending>,
    groups: HashMap<String, GroupOffsets>,
}

struct OffsetPartition {
    index: u32,
    state: Mutex<PartitionState>,
    syncer: Syncer,
}

/// Committed offsets of all groups, across the offsets logs.
pub struct OffsetStore {
    partitions: Vec<Arc<OffsetPartition>>,
}

impl OffsetStore {
    /// Opens `count` logs with `open_log(index)` and replays them.
    pub fn open(
        count: u32,
        mut open_log: impl FnMut(u32) -> Result<Box<dyn OffsetsLog>, GroupError>,
    ) -> Result<Self, GroupError> {
        if count == 0 {
            return Err(GroupError::InvalidConfig("offsets_partitions must be at least 1".into()));
        }
        let mut partitions = Vec::with_capacity(count as usize);
        for index in 0..count {
            let log = open_log(index)?;
            let mut groups = HashMap::new();
            let mut records = 0usize;
            let replayed = log.replay(&mut |chunk| {
                let decoded = record::decode_batches(chunk).map_err(|reason| GroupError::CorruptRecord {
                    partition: index,
                    log_offset: -1,
                    reason,
                })?;
                records += decoded.len();
                for record in decoded {
                    apply(&mut groups, record);
                }
                Ok(())
            });
            match replayed {
                Ok(()) => {}
                Err(ReplayError::Visit(error)) => return Err(error),
                Err(ReplayError::Log(source)) => {
                    return Err(GroupError::Log { partition: index, verb: "replay", source })
                }
            }
            info!(partition = index, records, groups = groups.len(), "offsets partition loaded");
            let syncer = log.syncer();
            partitions.push(Arc::new(OffsetPartition {
                index,
                state: Mutex::new(PartitionState { log, pending: VecDeque::new(), groups }),
                syncer,
            }));
        }
        Ok(Self { partitions })
    }

    /// Kafka's partition for a group: `abs(groupId.hashCode) % n` with Java's String hash, so the
    /// mapping is stable across builds and platforms.
    fn partition_for(&self, group: &str) -> &Arc<OffsetPartition> {
        let hash = group.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)));
        // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
        let positive = if hash == i32::MIN { 0 } else { hash.unsigned_abs() };
        let index = positive as usize % self.partitions.len();
        &self.partitions[index]
    }

    /// Durably commits `offsets` for `group`; returns once they are fsynced and visible.
    pub async fn commit(&self, group: &str, offsets: Vec<(TopicPartition, CommittedOffset)>) -> Result<(), GroupError> {
        let records = offsets
            .into_iter()
            .map(|(partition, committed)| OffsetRecord::Commit { group: group.to_string(), partition, committed })
            .collect();
        self.write(group, records).await
    }

    /// Durably deletes every offset of `group`.
    pub async fn delete_group(&self, group: &str) -> Result<(), GroupError> {
        self.write(group, vec![OffsetRecord::DeleteGroup { group: group.to_string() }]).await
    }

    /// Durably deletes every group's offsets for `topic`.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), GroupError> {
        for partition in &self.partitions {
            let per_group: Vec<(String, Vec<OffsetRecord>)> = {
                let state = partition.state.lock();
                state
                    .groups
                    .iter()
                    .map(|(group, offsets)| {
                        let records = offsets
                            .keys()
                            .filter(|tp| tp.topic == topic)
                            .map(|tp| OffsetRecord::DeleteOffset { group: group.clone(), partition: tp.clone() })
                            .collect::<Vec<_>>();
                        (group.clone(), records)
                    })
                    .filter(|(_, records)| !records.is_empty())
                    .collect()
            };
            for (group, records) in per_group {
                self.write(&group, records).await?;
            }
        }
        Ok(())
    }

    /// Appends `records` to the group's log, waits for the fsync, applies them.
    async fn write(&self, group: &str, records: Vec<OffsetRecord>) -> Result<(), GroupError> {
        let partition = self.partition_for(group).clone();
        let index = partition.index;
        tokio::task::spawn_blocking(move || write_blocking(&partition, records))
            .await
            .map_err(|e| GroupError::Task { partition: index, reason: e.to_string() })?
    }

    /// The committed offset of `group` for each of `partitions` (None where nothing is committed).
    pub fn fetch(&self, group: &str, partitions: &[TopicPartition]) -> Vec<Option<CommittedOffset>> {
        let state = self.partition_for(group).state.lock();
        let offsets = state.groups.get(group);
        partitions.iter().map(|tp| offsets.and_then(|o| o.get(tp)).cloned()).collect()
    }

    /// Every offset `group` committed, sorted by topic and partition.
    pub fn fetch_all(&self, group: &str) -> Vec<(TopicPartition, CommittedOffset)> {
        let state = self.partition_for(group).state.lock();
        let mut all: Vec<_> = state
            .groups
            .get(group)
            .map(|o| o.iter().map(|(tp, c)| (tp.clone(), c.clone())).collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Whether `group` has any committed offset.
    pub fn has_offsets(&self, group: &str) -> bool {
        self.partition_for(group).state.lock().groups.get(group).is_some_and(|o| !o.is_empty())
    }

    /// Ids of all groups with committed offsets.
    pub fn group_ids(&self) -> Vec<String> {
        self.partitions
            .iter()
            .flat_map(|p| p.state.lock().groups.keys().cloned().collect::<Vec<_>>())
            .collect()
    }
}

/// The blocking half of a write: append under the lock, fsync outside it, apply in log order.
fn write_blocking(partition: &OffsetPartition, records: Vec<OffsetRecord>) -> Result<(), GroupError> {
    let index = partition.index;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let mut batch = record::encode_batch(&records, now_ms).map_err(|reason| GroupError::Encode { partition: index, reason })?;
    let end_offset = {
        let mut state = partition.state.lock();
        let end_offset = state
            .log
            .append(&mut batch)
            .map_err(|source| GroupError::Log { partition: index, verb: "append", source })?;
        state.pending.push_back(Pending { end_offset, records });
        end_offset
    };
    let synced = (partition.syncer)(end_offset);
    let mut state = partition.state.lock();
    match synced {
        Ok(()) => {
            // Everything up to end_offset is durable, including batches of other writers still
            // waiting on their own fsync: apply them all, in log order.
            while state.pending.front().is_some_and(|p| p.end_offset <= end_offset) {
                if let Some(done) = state.pending.pop_front() {
                    for record in done.records {
                        apply(&mut state.groups, record);
                    }
                }
            }
            debug!(partition = index, end_offset, "offsets durable");
            Ok(())
        }
        Err(source) => {
            state.pending.retain(|p| p.end_offset != end_offset);
            Err(GroupError::Log { partition: index, verb: "fsync", source })
        }
    }
}

fn apply(groups: &mut HashMap<String, GroupOffsets>, record: OffsetRecord) {
    match record {
        OffsetRecord::Commit { group, partition, committed } => {
            groups.entry(group).or_default().insert(partition, committed);
        }
        OffsetRecord::DeleteOffset { group, partition } => {
            if let Some(offsets) = groups.get_mut(&group) {
                offsets.remove(&partition);
                if offsets.is_empty() {
                    groups.remove(&group);
                }
            }
        }
        OffsetRecord::DeleteGroup { group } => {
            groups.remove(&group);
        }
    }
}

/// Opens the store on the logs under `dir` (one sub-directory per offsets partition).
pub fn open_dir(dir: &std::path::Path, count: u32) -> Result<OffsetStore, GroupError> {
    std::fs::create_dir_all(dir).map_err(|source| GroupError::CreateDir { dir: dir.to_path_buf(), source })?;
    OffsetStore::open(count, |index| wal_log::open(dir, index))
}

#[cfg(test)]
mod tests {
    use super::log::memory::{MemoryLog, Shared};
    use super::*;

    fn open(shared: &[Arc<Mutex<Shared>>]) -> OffsetStore {
        OffsetStore::open(shared.len() as u32, |i| {
            Ok(Box::new(MemoryLog { shared: shared[i as usize].clone() }) as Box<dyn OffsetsLog>)
        })
        .expect("open")
    }

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition { topic: topic.into(), partition }
    }

    fn at(offset: i64) -> CommittedOffset {
        CommittedOffset { offset, leader_epoch: 1, metadata: Some("m".into()), commit_timestamp_ms: 5 }
    }

    #[test]
    fn java_string_hash_matches_kafka() {
        // "hello".hashCode() == 99162322 in Java; 99162322 % 50 == 22.
        let shared: Vec<_> = (0..50).map(|_| Arc::new(Mutex::new(Shared::default()))).collect();
        let store = open(&shared);
        assert_eq!(store.partition_for("hello").index, 22);
    }

    #[tokio::test]
    async fn commits_survive_reopen_and_deletes_stick() {
        let shared: Vec<_> = (0..3).map(|_| Arc::new(Mutex::new(Shared::default()))).collect();
        let store = open(&shared);
        store.commit("g1", vec![(tp("a", 0), at(10)), (tp("a", 1), at(11))]).await.expect("commit");
        store.commit("g1", vec![(tp("a", 0), at(12))]).await.expect("commit");
        store.commit("g2", vec![(tp("b", 0), at(20)), (tp("a", 0), at(21))]).await.expect("commit");
        assert_eq!(store.fetch("g1", &[tp("a", 0), tp("zz", 0)]), vec![Some(at(12)), None]);
        let synced: usize = shared.iter().map(|s| s.lock().syncs).sum();
        assert_eq!(synced, 3, "one fsync per commit");
        drop(store);

        let store = open(&shared);
        assert_eq!(store.fetch_all("g1"), vec![(tp("a", 0), at(12)), (tp("a", 1), at(11))]);
        store.delete_group("g1").await.expect("delete");
        store.delete_topic("a").await.expect("delete topic");
        assert_eq!(store.fetch_all("g2"), vec![(tp("b", 0), at(20))]);
        drop(store);

        let store = open(&shared);
        assert!(!store.has_offsets("g1"));
        assert_eq!(store.fetch_all("g2"), vec![(tp("b", 0), at(20))]);
        let mut ids = store.group_ids();
        ids.sort();
        assert_eq!(ids, vec!["g2"]);
    }
}
