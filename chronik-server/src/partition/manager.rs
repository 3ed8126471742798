//! Keeps the partitions hosted here in step with the metadata: opens the log of every partition this
//! broker is a replica of, deletes logs of topics that are gone (also leftovers found at start).
//! Directories are `logs/<topic>-<partition>` (at most 255 bytes for a 249-character name, as in Kafka),
//! each with a `partition.metadata` file naming the topic id, so a topic re-created under the same name
//! never reuses an old log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chronik_raft::MetadataState;
use chronik_wal::LogConfig;
use parking_lot::RwLock;
use tokio::sync::watch;
use tracing::{info, warn};

use super::disk_floor::{DiskFloor, DATA_FREE_BYTES_MIN};
use super::error::PartitionError;
use super::partition::Partition;
use super::topic_config::TopicConfig;
use crate::config::{Config, FsyncMode};
use crate::ids::{BrokerId, TopicPartition, TopicPartitionRef};

/// Threads one reconcile opens new partition logs on. Each open waits on fsyncs (the topic-id file,
/// the directory, the new segment); concurrent fsyncs share journal commits, so creating thousands
/// of partitions is several times faster than one at a time, and the bound keeps the burst small.
const OPEN_THREADS_MAX: usize = 16;

/// Names the topic id a partition directory belongs to.
const TOPIC_ID_FILE: &str = "partition.metadata";

pub struct PartitionManager {
    logs_dir: PathBuf,
    node_id: BrokerId,
    /// The log settings of this broker; a topic's configs override some of them.
    defaults: LogConfig,
    /// The configs of a topic that sets none, parsed once from the broker's config.
    topic_defaults: TopicConfig,
    fsync: FsyncMode,
    /// A `hashbrown` map: [`Self::get`] looks up by a borrowed key (`TopicPartitionRef`), which the
    /// fetch path does for every partition of every fetch.
    partitions: RwLock<hashbrown::HashMap<TopicPartition, Arc<Partition>>>,
    /// Bumped whenever a partition is added to or removed from `partitions`: holders of looked-up
    /// handles (the replica fetchers) know theirs are still the ones in the map while it is unchanged.
    generation: std::sync::atomic::AtomicU64,
    /// Reconciles run one at a time: two opening the same log would map and trim one file twice.
    reconcile_lock: parking_lot::Mutex<()>,
    /// Set after the first reconcile swept directories of topics deleted while this broker was down;
    /// later reconciles sweep only when they deleted something.
    swept_once: std::sync::atomic::AtomicBool,
    data_changed: watch::Sender<u64>,
    /// Bumped on every append to any partition here; followers' long-polling fetches wait on it.
    appended: watch::Sender<u64>,
    /// The data directory's free-space floor, shared by every partition.
    floor: Arc<DiskFloor>,
}

/// A partition log the metadata assigns here that is not open yet.
struct ToOpen {
    key: TopicPartition,
    topic_id: [u8; 16],
    config: LogConfig,
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl PartitionManager {
    pub fn new(config: &Config, data_changed: watch::Sender<u64>) -> Result<Self, std::io::Error> {
        let logs_dir = config.data_dir.join("logs");
        std::fs::create_dir_all(&logs_dir)?;
        let defaults = LogConfig {
            segment_bytes: config.segment_bytes,
            retention_ms: u64::try_from(config.retention_ms).ok(),
            retention_bytes: u64::try_from(config.retention_bytes).ok(),
            ..LogConfig::default()
        };
        Ok(PartitionManager {
            floor: Arc::new(DiskFloor::new(&logs_dir, DATA_FREE_BYTES_MIN)),
            logs_dir,
            node_id: config.broker_id,
            defaults,
            topic_defaults: TopicConfig::defaults(config),
            fsync: config.fsync,
            partitions: RwLock::new(hashbrown::HashMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
            reconcile_lock: parking_lot::Mutex::new(()),
            swept_once: std::sync::atomic::AtomicBool::new(false),
            data_changed,
            appended: watch::channel(0).0,
        })
    }

    /// Wakes on every append (replica fetches read past the high watermark, so they wait for this).
    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    pub fn node_id(&self) -> BrokerId {
        self.node_id
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions.read().get(&TopicPartitionRef { topic, partition }).cloned()
    }

    /// Changes whenever a partition is added or removed (see the field).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    fn dir_for(&self, topic: &str, partition: i32) -> PathBuf {
        self.logs_dir.join(format!("{topic}-{partition}"))
    }

    /// Prepares the directory of a partition of topic `topic_id`: a directory left by an earlier topic of
    /// the same name is removed first. The id file is written durably before the log is opened.
    fn claim_dir(dir: &Path, topic_id: &[u8; 16]) -> std::io::Result<()> {
        let id_file = dir.join(TOPIC_ID_FILE);
        let want = format!("topic_id: {}\n", hex(topic_id));
        match std::fs::read_to_string(&id_file) {
            Ok(have) if have == want => return Ok(()),
            Ok(_) => {
                warn!(dir = %dir.display(), "removing log of an earlier topic with the same name");
                std::fs::remove_dir_all(dir)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!("{TOPIC_ID_FILE}.part"));
        std::fs::write(&tmp, want)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &id_file)?;
        std::fs::File::open(dir)?.sync_all()
    }

    /// Opens what the metadata assigns here and drops what it no longer lists. Idempotent; called at
    /// start and after every metadata change. Blocking file I/O: call from a blocking context.
    /// `current` is read after taking the reconcile lock, so an older view can never undo a newer one.
    ///
    /// Cost with P partitions hosted here and N of them new: one O(P) pass over the metadata (the log
    /// settings are worked out only for new partitions), N opens spread over [`OPEN_THREADS_MAX`] threads
    /// (each open waits on a few fsyncs; concurrent fsyncs share journal commits), and the O(P)
    /// directory sweep only when something was deleted or at the first reconcile.
    pub fn reconcile(&self, current: impl Fn() -> Arc<MetadataState>) -> Result<(), PartitionError> {
        let _one_at_a_time = self.reconcile_lock.lock();
        let state = current();
        let mut wanted: HashMap<(&str, i32), [u8; 16]> = HashMap::new();
        let mut missing: Vec<ToOpen> = Vec::new();
        {
            let open = self.partitions.read();
            for topic in state.topics.values() {
                for (i, p) in topic.partitions.iter().enumerate() {
                    if !p.replicas.contains(&self.node_id.0) {
                        continue;
                    }
                    let index = i as i32;
                    wanted.insert((topic.name.as_str(), index), topic.topic_id);
                    let key = TopicPartitionRef { topic: topic.name.as_str(), partition: index };
                    let is_open = open.get(&key).is_some_and(|p| p.topic_id == topic.topic_id);
                    if !is_open {
                        let key = TopicPartition::new(topic.name.as_str(), index);
                        missing.push(ToOpen { key, topic_id: topic.topic_id, config: self.log_config(&topic.configs) });
                    }
                }
            }
        }
        // Drop partitions no longer wanted (or whose topic was re-created with a new id).
        let stale: Vec<Arc<Partition>> = {
            let mut map = self.partitions.write();
            let keys: Vec<TopicPartition> = map
                .iter()
                .filter(|(k, p)| wanted.get(&(k.topic.as_str(), k.partition)).is_none_or(|id| *id != p.topic_id))
                .map(|(k, _)| k.clone())
                .collect();
            let removed: Vec<Arc<Partition>> = keys.into_iter().filter_map(|k| map.remove(&k)).collect();
            if !removed.is_empty() {
                self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
            removed
        };
        let deleted_any = !stale.is_empty();
        for p in stale {
            info!(topic = %p.topic, partition = p.index, "deleting partition log");
            p.delete();
        }
        // Open the missing ones. One partition that cannot open (disk error, corruption, no file
        // descriptors) is reported and does not keep the others from opening.
        let first_error = self.open_all(missing);
        let first_sweep = !self.swept_once.swap(true, std::sync::atomic::Ordering::AcqRel);
        if first_sweep || deleted_any {
            let wanted_dirs: HashSet<PathBuf> = wanted.keys().map(|(t, i)| self.dir_for(t, *i)).collect();
            self.remove_orphan_dirs(&wanted_dirs);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The typed configs of a topic whose own configs are `configs` (the metadata's), over this
    /// broker's defaults.
    pub fn topic_config(&self, configs: &BTreeMap<String, String>) -> TopicConfig {
        self.topic_defaults.with_own(configs)
    }

    /// The log settings of a partition of a topic with `configs`: the broker's defaults overridden
    /// by the topic's retention and segment configs.
    fn log_config(&self, configs: &BTreeMap<String, String>) -> LogConfig {
        self.topic_config(configs).log_config(&self.defaults)
    }

    /// Opens `missing` partitions on up to [`OPEN_THREADS_MAX`] threads, each inserted as soon as it
    /// is open. Returns the first error; the others are logged.
    fn open_all(&self, missing: Vec<ToOpen>) -> Option<PartitionError> {
        if missing.is_empty() {
            return None;
        }
        let threads = missing.len().min(OPEN_THREADS_MAX);
        let queue = parking_lot::Mutex::new(missing.into_iter());
        let first_error = parking_lot::Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let Some(ToOpen { key, topic_id, config }) = queue.lock().next() else { break };
                    match self.open_one(&key.topic, key.partition, topic_id, config) {
                        Ok(p) => {
                            self.partitions.write().insert(key, Arc::new(p));
                            self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                        }
                        Err(e) => {
                            tracing::error!(topic = %key.topic, partition = key.partition, error = %e, "cannot open partition log");
                            first_error.lock().get_or_insert(e);
                        }
                    }
                });
            }
        });
        first_error.into_inner()
    }

    fn open_one(&self, topic: &str, index: i32, topic_id: [u8; 16], cfg: LogConfig) -> Result<Partition, PartitionError> {
        let dir = self.dir_for(topic, index);
        Self::claim_dir(&dir, &topic_id)
            .map_err(|source| PartitionError::wal(topic, index, chronik_wal::WalError::Io { path: dir.clone(), source }))?;
        Partition::open(&dir, topic, index, topic_id, self.node_id.0, cfg, self.fsync, self.data_changed.clone(), self.appended.clone(), self.floor.clone())
    }

    /// Log directories on disk that the metadata does not assign here: topics deleted while this broker
    /// was down. A partition that failed to open is still wanted, so its data is never removed here.
    fn remove_orphan_dirs(&self, owned: &HashSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(&self.logs_dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !owned.contains(&path) {
                warn!(dir = %path.display(), "removing log directory of a deleted topic");
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    warn!(dir = %path.display(), error = %e, "cannot remove orphan log directory");
                }
            }
        }
    }

    pub fn logs_dir(&self) -> &Path {
        &self.logs_dir
    }
}
