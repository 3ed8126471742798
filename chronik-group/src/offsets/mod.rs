//! Committed offsets, kept in the offsets partitions this broker owns.
//!
//! Groups are spread over `offsets_partitions` logs by Kafka's hash of the group id. In a cluster
//! those logs are the partitions of the replicated internal offsets topic, and a broker owns (serves
//! the groups of) exactly the partitions it leads: the server [`OffsetStore::begin_load`]s and
//! [`OffsetStore::load`]s one when it becomes its leader (replaying the whole log into a map) and
//! [`OffsetStore::unload`]s it when it stops leading. Asking about a group whose partition is not
//! owned gets [`GroupError::NotCoordinator`] or [`GroupError::LoadInProgress`], never an empty answer,
//! so a consumer is never told "nothing committed" by the wrong broker.
//!
//! A commit is one record batch ([`record`]); it is appended and answered once committed (fsynced,
//! and stored by every in-sync replica of a replicated log), and only then applied to the map.
//! Batches are applied in log order, whatever order their waits return in, so the map always equals
//! a replay of the committed log. A batch whose wait failed (timeout) stays pending: it is in the log
//! and is applied when a later batch is committed, as a replay would.
//!
//! Parts: [`record`] (batch codec), [`log`] (the log interface), [`wal_log`] (local `chronik-wal`
//! logs for a standalone coordinator), and the store below.

pub mod log;
pub mod membership;
pub mod record;
pub mod wal_log;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tracing::{debug, info, warn};

use crate::GroupError;
use log::{LogFailure, OffsetsLog, ReplayError};
use membership::StoredGroup;
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

pub type GroupOffsets = HashMap<TopicPartition, CommittedOffset>;

/// Whether this broker serves a group's offsets now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    Owned,
    /// Becoming owner: the log is being replayed (COORDINATOR_LOAD_IN_PROGRESS).
    Loading,
    /// Another broker (or none) owns it (NOT_COORDINATOR).
    NotOwned,
}

/// A batch appended but not yet known committed.
struct Pending {
    end_offset: i64,
    records: Vec<OffsetRecord>,
}

#[derive(Default)]
struct Offsets {
    /// Appended batches in log order, applied to `groups` once committed.
    pending: VecDeque<Pending>,
    groups: HashMap<String, GroupOffsets>,
}

/// An owned offsets partition: its log and the map replayed from it.
struct Loaded {
    index: u32,
    log: Arc<dyn OffsetsLog>,
    offsets: Mutex<Offsets>,
}

enum Slot {
    NotOwned,
    Loading { epoch: i32 },
    Owned { epoch: i32, loaded: Arc<Loaded> },
}

/// Committed offsets of the groups in the offsets partitions this broker owns.
pub struct OffsetStore {
    slots: Vec<Mutex<Slot>>,
}

/// Kafka's offsets partition for a group: `abs(groupId.hashCode) % count` with Java's String hash, so
/// the mapping is stable across builds, platforms and brokers. `count` must be at least 1.
pub fn partition_for(group: &str, count: u32) -> u32 {
    let hash = group.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)));
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let positive = if hash == i32::MIN { 0 } else { hash.unsigned_abs() };
    positive % count.max(1)
}

impl OffsetStore {
    /// A store over `count` offsets partitions, none owned yet.
    pub fn new(count: u32) -> Result<Self, GroupError> {
        if count == 0 {
            return Err(GroupError::InvalidConfig("offsets_partitions must be at least 1".into()));
        }
        Ok(Self { slots: (0..count).map(|_| Mutex::new(Slot::NotOwned)).collect() })
    }

    /// A store owning all `count` partitions at once, on logs from `open_log(index)` (a standalone
    /// coordinator).
    pub fn open_all(
        count: u32,
        mut open_log: impl FnMut(u32) -> Result<Arc<dyn OffsetsLog>, GroupError>,
    ) -> Result<Self, GroupError> {
        let store = Self::new(count)?;
        for index in 0..count {
            store.begin_load(index, 0);
            store.load(index, 0, open_log(index)?)?;
        }
        Ok(store)
    }

    pub fn partition_count(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// The offsets partition of `group`.
    pub fn partition_of(&self, group: &str) -> u32 {
        partition_for(group, self.partition_count())
    }

    fn slot(&self, index: u32) -> Option<&Mutex<Slot>> {
        self.slots.get(index as usize)
    }

    /// Whether this broker serves `group` now.
    pub fn ownership(&self, group: &str) -> Ownership {
        match self.slot(self.partition_of(group)).map(|s| s.lock()) {
            Some(slot) => match &*slot {
                Slot::Owned { .. } => Ownership::Owned,
                Slot::Loading { .. } => Ownership::Loading,
                Slot::NotOwned => Ownership::NotOwned,
            },
            None => Ownership::NotOwned,
        }
    }

    /// Marks partition `index` as loading for leader epoch `epoch`. Returns false when it is already
    /// loading or loaded at that epoch (nothing to do); true when the caller must now [`Self::load`] it.
    pub fn begin_load(&self, index: u32, epoch: i32) -> bool {
        let Some(slot) = self.slot(index) else { return false };
        let mut slot = slot.lock();
        match &*slot {
            Slot::Loading { epoch: e } | Slot::Owned { epoch: e, .. } if *e == epoch => false,
            _ => {
                *slot = Slot::Loading { epoch };
                true
            }
        }
    }

    /// Replays `log` into partition `index` and owns it, unless the partition was unloaded or
    /// re-begun at another epoch meanwhile (then the replay is dropped). Stored memberships are
    /// dropped: a coordinator installs them itself ([`Self::replay`] + [`Self::finish_load`]).
    /// Blocking I/O.
    pub fn load(&self, index: u32, epoch: i32, log: Arc<dyn OffsetsLog>) -> Result<(), GroupError> {
        let replayed = self.replay(index, epoch, log.as_ref())?;
        self.finish_load(index, epoch, log, replayed.offsets);
        Ok(())
    }

    /// Reads the whole log of partition `index` (being loaded at `epoch`): committed offsets and
    /// the last membership of each group. On failure the partition goes back to not owned (if it is
    /// still loading at `epoch`). Blocking I/O; the slot is not locked meanwhile.
    pub fn replay(&self, index: u32, epoch: i32, log: &dyn OffsetsLog) -> Result<Replayed, GroupError> {
        let mut replayed = Replayed::default();
        let result = log.replay(&mut |chunk| {
            let decoded = record::decode_batches(chunk).map_err(|reason| GroupError::CorruptRecord {
                partition: index,
                log_offset: -1,
                reason,
            })?;
            replayed.records += decoded.len();
            for record in decoded {
                replayed.apply(index, record);
            }
            Ok(())
        });
        let failed = match result {
            Ok(()) => return Ok(replayed),
            Err(ReplayError::Visit(error)) => error,
            Err(ReplayError::Log(source)) => {
                GroupError::Log { partition: index, verb: "replay", source: LogFailure::Storage(source) }
            }
        };
        if let Some(slot) = self.slot(index) {
            let mut slot = slot.lock();
            if matches!(&*slot, Slot::Loading { epoch: e } if *e == epoch) {
                *slot = Slot::NotOwned;
            }
        }
        Err(failed)
    }

    /// Owns partition `index` with the replayed `offsets`, if it is still loading at `epoch`;
    /// returns whether it did (false: unloaded or re-begun at another epoch meanwhile).
    pub fn finish_load(&self, index: u32, epoch: i32, log: Arc<dyn OffsetsLog>, offsets: HashMap<String, GroupOffsets>) -> bool {
        let Some(slot) = self.slot(index) else { return false };
        let mut slot = slot.lock();
        if !matches!(&*slot, Slot::Loading { epoch: e } if *e == epoch) {
            debug!(partition = index, epoch, "offsets load superseded");
            return false;
        }
        debug!(partition = index, epoch, groups = offsets.len(), "offsets partition loaded");
        let loaded = Arc::new(Loaded { index, log, offsets: Mutex::new(Offsets { pending: VecDeque::new(), groups: offsets }) });
        *slot = Slot::Owned { epoch, loaded };
        true
    }

    /// Stops serving partition `index` (this broker no longer leads it). Returns whether it was
    /// owned or loading.
    pub fn unload(&self, index: u32) -> bool {
        self.unload_through(index, i32::MAX)
    }

    /// Stops serving partition `index` if it is owned or loading at leader epoch `epoch` or earlier
    /// (a view in which another broker leads it at `epoch`); a load begun at a later epoch — this
    /// broker was named leader again meanwhile — is kept. Returns whether it was unloaded.
    pub fn unload_through(&self, index: u32, epoch: i32) -> bool {
        let Some(slot) = self.slot(index) else { return false };
        let mut slot = slot.lock();
        if matches!(&*slot, Slot::Loading { epoch: e } | Slot::Owned { epoch: e, .. } if *e > epoch) {
            return false;
        }
        let previous = std::mem::replace(&mut *slot, Slot::NotOwned);
        if let Slot::Owned { epoch, .. } = previous {
            info!(partition = index, epoch, "offsets partition unloaded");
        }
        !matches!(previous, Slot::NotOwned)
    }

    /// The owned partition holding `group`, or why there is none.
    fn owned(&self, group: &str) -> Result<Arc<Loaded>, GroupError> {
        let index = self.partition_of(group);
        let slot = self.slot(index).ok_or(GroupError::NotCoordinator { partition: index })?;
        let slot = slot.lock();
        match &*slot {
            Slot::Owned { loaded, .. } => Ok(loaded.clone()),
            Slot::Loading { .. } => Err(GroupError::LoadInProgress { partition: index }),
            Slot::NotOwned => Err(GroupError::NotCoordinator { partition: index }),
        }
    }

    fn all_owned(&self) -> Vec<Arc<Loaded>> {
        self.slots
            .iter()
            .filter_map(|s| match &*s.lock() {
                Slot::Owned { loaded, .. } => Some(loaded.clone()),
                _ => None,
            })
            .collect()
    }

    /// Commits `offsets` for `group`; returns once they are committed and visible.
    pub async fn commit(&self, group: &str, offsets: Vec<(TopicPartition, CommittedOffset)>) -> Result<(), GroupError> {
        let records = offsets
            .into_iter()
            .map(|(partition, committed)| OffsetRecord::Commit { group: group.to_string(), partition, committed })
            .collect();
        let loaded = self.owned(group)?;
        write(&loaded, records).await
    }

    /// Deletes every offset of `group`.
    pub async fn delete_group(&self, group: &str) -> Result<(), GroupError> {
        let loaded = self.owned(group)?;
        write(&loaded, vec![OffsetRecord::DeleteGroup { group: group.to_string() }]).await
    }

    /// Appends `group`'s membership (`None`: it has no members any more) now, in log order with
    /// every other record of its partition, and returns the wait for it to be committed (fsynced
    /// and stored by every in-sync replica, as a commit). The caller decides whether to wait.
    pub fn append_membership(
        &self,
        group: &str,
        membership: Option<StoredGroup>,
    ) -> Result<impl std::future::Future<Output = Result<(), GroupError>> + Send + 'static, GroupError> {
        let loaded = self.owned(group)?;
        let end_offset = append(&loaded, vec![OffsetRecord::Membership { group: group.to_string(), membership }])?;
        Ok(async move { settle(&loaded, end_offset).await })
    }

    /// Deletes every group's offsets for `topic`, in the partitions owned here (each owner does
    /// its own).
    pub async fn delete_topic(&self, topic: &str) -> Result<(), GroupError> {
        for loaded in self.all_owned() {
            let per_group: Vec<Vec<OffsetRecord>> = {
                let offsets = loaded.offsets.lock();
                offsets
                    .groups
                    .iter()
                    .map(|(group, offsets)| {
                        offsets
                            .keys()
                            .filter(|tp| tp.topic == topic)
                            .map(|tp| OffsetRecord::DeleteOffset { group: group.clone(), partition: tp.clone() })
                            .collect::<Vec<_>>()
                    })
                    .filter(|records| !records.is_empty())
                    .collect()
            };
            for records in per_group {
                write(&loaded, records).await?;
            }
        }
        Ok(())
    }

    /// The committed offset of `group` for each of `partitions` (None where nothing is committed).
    pub fn fetch(&self, group: &str, partitions: &[TopicPartition]) -> Result<Vec<Option<CommittedOffset>>, GroupError> {
        let loaded = self.owned(group)?;
        let offsets = loaded.offsets.lock();
        let mine = offsets.groups.get(group);
        Ok(partitions.iter().map(|tp| mine.and_then(|o| o.get(tp)).cloned()).collect())
    }

    /// Every offset `group` committed, sorted by topic and partition.
    pub fn fetch_all(&self, group: &str) -> Result<Vec<(TopicPartition, CommittedOffset)>, GroupError> {
        let loaded = self.owned(group)?;
        let offsets = loaded.offsets.lock();
        let mut all: Vec<_> = offsets
            .groups
            .get(group)
            .map(|o| o.iter().map(|(tp, c)| (tp.clone(), c.clone())).collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    /// Whether `group` has any committed offset (false when its partition is not owned here).
    pub fn has_offsets(&self, group: &str) -> bool {
        self.owned(group).is_ok_and(|l| l.offsets.lock().groups.get(group).is_some_and(|o| !o.is_empty()))
    }

    /// Ids of all groups with committed offsets in the partitions owned here.
    pub fn group_ids(&self) -> Vec<String> {
        self.all_owned().iter().flat_map(|l| l.offsets.lock().groups.keys().cloned().collect::<Vec<_>>()).collect()
    }
}

/// Appends `records` as one batch, waits until it is committed, applies everything committed.
async fn write(loaded: &Loaded, records: Vec<OffsetRecord>) -> Result<(), GroupError> {
    let end_offset = append(loaded, records)?;
    settle(loaded, end_offset).await
}

/// Appends `records` as one batch (in log order with every other writer); returns the end offset
/// to wait for.
fn append(loaded: &Loaded, records: Vec<OffsetRecord>) -> Result<i64, GroupError> {
    let index = loaded.index;
    let mut batch = record::encode_batch(&records, chronik_wal::now_ms()).map_err(|reason| GroupError::Encode { partition: index, reason })?;
    // Appending under the map's lock keeps `pending` in log order.
    let mut offsets = loaded.offsets.lock();
    let end_offset = loaded.log.append(&mut batch).map_err(|source| GroupError::Log { partition: index, verb: "append", source })?;
    offsets.pending.push_back(Pending { end_offset, records });
    Ok(end_offset)
}

/// Waits until the log is committed through `end_offset`, then applies everything committed.
async fn settle(loaded: &Loaded, end_offset: i64) -> Result<(), GroupError> {
    let index = loaded.index;
    loaded.log.committed(end_offset).await.map_err(|source| GroupError::Log { partition: index, verb: "commit", source })?;
    let mut offsets = loaded.offsets.lock();
    // Everything up to end_offset is committed, including batches of other writers still waiting
    // (or whose own wait failed): apply them all, in log order.
    while offsets.pending.front().is_some_and(|p| p.end_offset <= end_offset) {
        if let Some(done) = offsets.pending.pop_front() {
            for record in done.records {
                apply(&mut offsets.groups, record);
            }
        }
    }
    debug!(partition = index, end_offset, "offsets committed");
    Ok(())
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
        // Membership is the coordinator's: only a load reads it back ([`Replayed`]).
        OffsetRecord::Membership { .. } | OffsetRecord::UnreadableMembership { .. } => {}
    }
}

/// What a load reads from an offsets partition's log.
#[derive(Default)]
pub struct Replayed {
    /// Committed offsets per group.
    pub offsets: HashMap<String, GroupOffsets>,
    /// The last stored membership per group (groups whose last record is a tombstone, a
    /// deletion or unreadable have none).
    pub memberships: HashMap<String, StoredGroup>,
    /// Records read, for the log line.
    pub records: usize,
}

impl Replayed {
    fn apply(&mut self, index: u32, record: OffsetRecord) {
        match record {
            OffsetRecord::Membership { group, membership: Some(stored) } => {
                self.memberships.insert(group, stored);
            }
            OffsetRecord::Membership { group, membership: None } => {
                self.memberships.remove(&group);
            }
            OffsetRecord::UnreadableMembership { group, reason } => {
                // Written by a newer broker, or damaged: its members rejoin, which is safe.
                warn!(partition = index, group = %group, reason = %reason, "skipping an unreadable group membership record");
                self.memberships.remove(&group);
            }
            OffsetRecord::DeleteGroup { ref group } => {
                self.memberships.remove(group);
                apply(&mut self.offsets, record);
            }
            other => apply(&mut self.offsets, other),
        }
    }
}

#[cfg(test)]
mod tests;
