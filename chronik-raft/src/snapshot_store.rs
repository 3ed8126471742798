//! The one durable snapshot of the state machine, `raft/snapshot.json`: the snapshot meta plus
//! [`SnapshotData`] (applied state, last applied log id, last membership), replaced atomically.
//!
//! The bytes openraft ships to other nodes are the JSON of [`SnapshotData`] alone; the meta travels
//! beside them in the install RPC.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::durable::{read_json, write_json};
use crate::error::StoreError;
use crate::state::MetadataState;
use crate::types::{LogId, SnapshotMeta, StoredMembership};

const SNAPSHOT_FILE: &str = "snapshot.json";

/// What a snapshot holds: enough to restart the state machine without the log before it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SnapshotData {
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
    pub state: MetadataState,
}

impl SnapshotData {
    /// The bytes openraft carries for this snapshot.
    pub fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(|source| StoreError::Encode { what: "snapshot data", source })
    }

    /// Parse received snapshot bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes)
            .map_err(|e| StoreError::BadSnapshot { what: "data", reason: format!("does not decode: {e}") })
    }
}

/// A snapshot as stored on disk.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoredSnapshot {
    pub meta: SnapshotMeta,
    pub data: SnapshotData,
}

/// Owner of the snapshot file. Shared by the state machine (install) and snapshot builders, which
/// run in their own task; the mutex keeps an older build from overwriting a newer snapshot.
#[derive(Debug)]
pub struct SnapshotStore {
    path: PathBuf,
    /// Last log id of the snapshot on disk; guards against going backwards.
    current: Mutex<Option<Option<LogId>>>,
}

impl SnapshotStore {
    pub fn new(dir: &Path) -> Self {
        SnapshotStore { path: dir.join(SNAPSHOT_FILE), current: Mutex::new(None) }
    }

    /// The snapshot on disk, if any.
    pub fn load(&self) -> Result<Option<StoredSnapshot>, StoreError> {
        let mut current = self.current.lock();
        let snap: Option<StoredSnapshot> = read_json(&self.path, "snapshot")?;
        if let Some(s) = &snap {
            if s.meta.last_log_id != s.data.last_applied {
                return Err(StoreError::BadSnapshot {
                    what: "file",
                    reason: format!("meta says {:?} but data was applied up to {:?}", s.meta.last_log_id, s.data.last_applied),
                });
            }
        }
        *current = Some(snap.as_ref().and_then(|s| s.meta.last_log_id));
        Ok(snap)
    }

    /// Write `snap` durably unless the snapshot on disk is newer. Returns whether it was written.
    /// Blocking: call from the blocking pool.
    pub fn save(&self, snap: &StoredSnapshot) -> Result<bool, StoreError> {
        let mut current = self.current.lock();
        if let Some(on_disk) = *current {
            if on_disk > snap.meta.last_log_id {
                tracing::debug!(?on_disk, new = ?snap.meta.last_log_id, "skipping older snapshot");
                return Ok(false);
            }
        }
        write_json(&self.path, "snapshot", snap)?;
        *current = Some(snap.meta.last_log_id);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn snap(index: u64, next_producer_id: i64) -> StoredSnapshot {
        let last = Some(LogId::new(CommittedLeaderId::new(1, 1), index));
        StoredSnapshot {
            meta: SnapshotMeta { last_log_id: last, last_membership: StoredMembership::default(), snapshot_id: format!("s{index}") },
            data: SnapshotData { last_applied: last, state: MetadataState { next_producer_id, ..Default::default() }, ..Default::default() },
        }
    }

    #[test]
    fn newer_snapshot_wins_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::new(dir.path());
        assert_eq!(store.load().expect("load empty"), None);
        assert!(store.save(&snap(10, 5)).expect("save 10"));
        assert!(!store.save(&snap(7, 3)).expect("save 7"), "an older build must not replace a newer snapshot");
        assert!(store.save(&snap(12, 9)).expect("save 12"));
        let reopened = SnapshotStore::new(dir.path()).load().expect("reload");
        assert_eq!(reopened, Some(snap(12, 9)));
    }

    #[test]
    fn data_round_trips_and_garbage_is_refused() {
        let data = snap(3, 42).data;
        assert_eq!(SnapshotData::from_bytes(&data.to_bytes().expect("encode")).expect("decode"), data);
        assert!(matches!(SnapshotData::from_bytes(b"[1,2"), Err(StoreError::BadSnapshot { .. })));
    }

    #[test]
    fn meta_and_data_disagreeing_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::new(dir.path());
        let mut bad = snap(4, 1);
        bad.data.last_applied = None;
        store.save(&bad).expect("save");
        assert!(matches!(SnapshotStore::new(dir.path()).load(), Err(StoreError::BadSnapshot { .. })));
    }
}
