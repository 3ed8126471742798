//! openraft's [`RaftStateMachine`]: applies committed entries to [`MetadataState`], publishes each
//! new state to readers, and builds and installs snapshots through [`SnapshotStore`].
//!
//! Applied state is kept in memory only; durability comes from the log (replayed up to the saved
//! committed log id on restart) and from snapshots, written every `snapshot_logs_since_last` entries.

use std::io::Cursor;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, StorageIOError};
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::command::MetaResponse;
use crate::durable::blocking;
use crate::error::StoreError;
use crate::snapshot_store::{SnapshotData, SnapshotStore, StoredSnapshot};
use crate::state::MetadataState;
use crate::types::{LogEntry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

/// The latest applied state, swapped whole after each applied batch so readers never lock for long
/// and never see half a batch.
pub type PublishedState = Arc<RwLock<Arc<MetadataState>>>;

/// The metadata state machine driven by openraft.
pub struct StateMachineStore {
    /// Working copy. Copy-on-write: the first command of a batch clones it if readers still hold the
    /// published copy, the rest of the batch mutates in place.
    state: Arc<MetadataState>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    published: PublishedState,
    /// Last applied log index for subscribers (0 before anything is applied).
    applied_tx: watch::Sender<u64>,
    snapshots: Arc<SnapshotStore>,
}

impl StateMachineStore {
    /// Load the latest snapshot (if any) from `snapshots` and publish it. openraft then replays the
    /// log after it.
    pub fn open(snapshots: Arc<SnapshotStore>, published: PublishedState, applied_tx: watch::Sender<u64>) -> Result<Self, StoreError> {
        let data = snapshots.load()?.map(|s| s.data).unwrap_or_default();
        if let Some(at) = data.last_applied {
            tracing::info!(index = at.index, term = at.leader_id.term, "loaded metadata snapshot");
        }
        let mut sm = StateMachineStore {
            state: Arc::new(data.state),
            last_applied: data.last_applied,
            last_membership: data.last_membership,
            published,
            applied_tx,
            snapshots,
        };
        sm.publish();
        Ok(sm)
    }

    /// True when a snapshot was loaded at open.
    pub fn has_state(&self) -> bool {
        self.last_applied.is_some()
    }

    fn publish(&mut self) {
        *self.published.write() = self.state.clone();
        self.applied_tx.send_replace(self.last_applied.map_or(0, |l| l.index));
    }
}

/// Builds a snapshot from a copy of the state taken when openraft asked for the builder.
pub struct SnapshotBuilder {
    data: SnapshotData,
    snapshots: Arc<SnapshotStore>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let last = self.data.last_applied;
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let snapshot_id = match last {
            Some(l) => format!("{}-{}-{stamp}", l.leader_id.term, l.index),
            None => format!("none-{stamp}"),
        };
        let meta = SnapshotMeta { last_log_id: last, last_membership: self.data.last_membership.clone(), snapshot_id };
        let stored = StoredSnapshot { meta: meta.clone(), data: self.data.clone() };
        let bytes = stored.data.to_bytes().map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        let store = self.snapshots.clone();
        blocking("write snapshot", move || store.save(&stored))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        tracing::info!(index = ?last.map(|l| l.index), bytes = bytes.len(), "built metadata snapshot");
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetaResponse>, StorageError>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => MetaResponse::Ok,
                EntryPayload::Normal(cmd) => {
                    let term = entry.log_id.leader_id.term;
                    let response = Arc::make_mut(&mut self.state).apply_entry(term, &cmd);
                    if let MetaResponse::StaleTerm { decided_in, entry_term } = response {
                        tracing::info!(index = entry.log_id.index, decided_in, entry_term, ?cmd, "refused a controller decision of an earlier term");
                    } else {
                        tracing::debug!(index = entry.log_id.index, ?cmd, ?response, "applied metadata command");
                    }
                    response
                }
                EntryPayload::Membership(m) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    MetaResponse::Ok
                }
            };
            responses.push(response);
        }
        self.publish();
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            data: SnapshotData {
                last_applied: self.last_applied,
                last_membership: self.last_membership.clone(),
                state: (*self.state).clone(),
            },
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Box<Cursor<Vec<u8>>>) -> Result<(), StorageError> {
        let sig = meta.signature();
        let data = SnapshotData::from_bytes(snapshot.get_ref()).map_err(|e| StorageIOError::read_snapshot(Some(sig.clone()), &e))?;
        if data.last_applied != meta.last_log_id {
            let e = StoreError::BadSnapshot {
                what: "install",
                reason: format!("meta says {:?} but data was applied up to {:?}", meta.last_log_id, data.last_applied),
            };
            return Err(StorageIOError::read_snapshot(Some(sig), &e).into());
        }
        let stored = StoredSnapshot { meta: meta.clone(), data };
        let store = self.snapshots.clone();
        let to_save = stored.clone();
        blocking("install snapshot", move || store.save(&to_save))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(sig), &e))?;
        tracing::info!(index = ?meta.last_log_id.map(|l| l.index), "installed metadata snapshot");
        self.state = Arc::new(stored.data.state);
        self.last_applied = stored.data.last_applied;
        self.last_membership = stored.data.last_membership;
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let store = self.snapshots.clone();
        let Some(stored) = blocking("read snapshot", move || store.load())
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?
        else {
            return Ok(None);
        };
        let bytes = stored.data.to_bytes().map_err(|e| StorageIOError::read_snapshot(Some(stored.meta.signature()), &e))?;
        Ok(Some(Snapshot { meta: stored.meta, snapshot: Box::new(Cursor::new(bytes)) }))
    }
}
