//! The async facade: owns the groups, the offsets store and the timer task; `api/` holds one file
//! per Kafka API, each an `impl GroupCoordinator` block that maps the request onto [`Group`] calls.
//!
//! Concurrency: all membership lives under one short `parking_lot` mutex (no `.await` while held);
//! a request that must wait (JoinGroup until the join phase ends, a follower's SyncGroup until the
//! leader's assignment) parks on a oneshot channel that the routing of [`Delivery`] values fills.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::fence::LeadershipFence;
use crate::group::{Delivery, Group, JoinResult, Limits, MembershipRecord, SyncResult};
use crate::offsets::log::OffsetsLog;
use crate::offsets::{OffsetStore, Ownership};
use crate::{GroupConfig, GroupError};

/// How often session timeouts and phase deadlines are checked; bounds how late an expiry is noticed.
pub const TICK_INTERVAL_MS: u64 = 100;

/// Answers whether a topic partition exists (OffsetCommit on an unknown one gets UNKNOWN_TOPIC_OR_PARTITION).
pub type PartitionExists = Arc<dyn Fn(&str, i32) -> bool + Send + Sync>;

/// Who sent a JoinGroup: the request body does not carry it, the request header and socket do.
/// Member ids are `client_id + "-" + uuid`, and DescribeGroups reports both fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub client_id: String,
    pub client_host: String,
}

/// Groups plus the requests parked on them.
#[derive(Default)]
pub(crate) struct Registry {
    pub groups: HashMap<String, Group>,
    join_waiters: HashMap<(String, String), oneshot::Sender<JoinResult>>,
    sync_waiters: HashMap<(String, String), oneshot::Sender<SyncResult>>,
}

impl Registry {
    /// Hands the group's ready responses to the requests waiting for them.
    pub fn route(&mut self, group_id: &str) {
        let Some(group) = self.groups.get_mut(group_id) else { return };
        for delivery in group.take_deliveries() {
            match delivery {
                Delivery::Join { member_id, result } => {
                    if let Some(tx) = self.join_waiters.remove(&(group_id.to_string(), member_id)) {
                        // The requester may have gone away (connection closed): nothing to do.
                        let _ = tx.send(result);
                    }
                }
                Delivery::Sync { member_id, result } => {
                    if let Some(tx) = self.sync_waiters.remove(&(group_id.to_string(), member_id)) {
                        let _ = tx.send(result);
                    }
                }
            }
        }
    }

    /// Parks a JoinGroup; a previous parked join of the same member is dropped (it gets an error).
    pub fn wait_join(&mut self, group_id: &str, member_id: String) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
        self.join_waiters.insert((group_id.to_string(), member_id), tx);
        rx
    }

    /// Answers the parked requests of the groups `which` selects with NOT_COORDINATOR (this broker
    /// stopped coordinating them).
    pub fn drop_waiters(&mut self, which: impl Fn(&str) -> bool) {
        let not_coordinator = kafka_protocol::error::ResponseError::NotCoordinator;
        let joins: Vec<_> = self.join_waiters.keys().filter(|(group, _)| which(group)).cloned().collect();
        for key in joins {
            if let Some(tx) = self.join_waiters.remove(&key) {
                let _ = tx.send(JoinResult::error(not_coordinator, &key.1));
            }
        }
        let syncs: Vec<_> = self.sync_waiters.keys().filter(|(group, _)| which(group)).cloned().collect();
        for key in syncs {
            if let Some(tx) = self.sync_waiters.remove(&key) {
                let _ = tx.send(SyncResult::error(not_coordinator));
            }
        }
    }

    pub fn wait_sync(&mut self, group_id: &str, member_id: String) -> oneshot::Receiver<SyncResult> {
        let (tx, rx) = oneshot::channel();
        self.sync_waiters.insert((group_id.to_string(), member_id), tx);
        rx
    }
}

/// Kafka's group coordinator for this broker.
pub struct GroupCoordinator {
    pub(crate) config: GroupConfig,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) offsets: OffsetStore,
    pub(crate) partition_exists: PartitionExists,
    /// Zero of the coordinator's millisecond clock (tokio's, so tests can pause time).
    clock_base: Instant,
    /// Set once the timer task runs; it is started on first use because `open` may run outside a
    /// tokio runtime.
    ticker_started: AtomicBool,
    /// Lets the timer task hold the coordinator weakly, so dropping the coordinator stops it.
    weak_self: Weak<GroupCoordinator>,
    /// Set once by a broker ([`Self::set_fence`]); a standalone coordinator has none.
    fence: OnceLock<LeadershipFence>,
}

impl GroupCoordinator {
    /// A standalone coordinator that owns every offsets partition, on local logs under `dir`;
    /// rebuilds committed offsets and group membership from them.
    pub fn open(dir: &Path, config: GroupConfig, partition_exists: PartitionExists) -> Result<Arc<Self>, GroupError> {
        std::fs::create_dir_all(dir).map_err(|source| GroupError::CreateDir { dir: dir.to_path_buf(), source })?;
        let coordinator = Self::new(config, partition_exists)?;
        for index in 0..coordinator.config.offsets_partitions {
            coordinator.begin_load(index, 0);
            coordinator.load(index, 0, crate::offsets::wal_log::open(dir, index)?)?;
        }
        info!(dir = %dir.display(), partitions = coordinator.config.offsets_partitions, "group coordinator open");
        Ok(coordinator)
    }

    /// A broker's coordinator: it owns no offsets partition until the broker [`Self::load`]s the
    /// ones it leads.
    pub fn new(config: GroupConfig, partition_exists: PartitionExists) -> Result<Arc<Self>, GroupError> {
        let offsets = OffsetStore::new(config.offsets_partitions)?;
        Ok(Self::with_store(offsets, config, partition_exists))
    }

    pub(crate) fn with_store(offsets: OffsetStore, config: GroupConfig, partition_exists: PartitionExists) -> Arc<Self> {
        Arc::new_cyclic(|weak_self| Self {
            config,
            registry: Mutex::new(Registry::default()),
            offsets,
            partition_exists,
            clock_base: Instant::now(),
            ticker_started: AtomicBool::new(false),
            weak_self: weak_self.clone(),
            fence: OnceLock::new(),
        })
    }

    /// The offsets partition that decides which broker coordinates `group`.
    pub fn offsets_partition_of(&self, group: &str) -> u32 {
        self.offsets.partition_of(group)
    }

    /// Whether this broker serves `group` now.
    pub fn ownership(&self, group: &str) -> Ownership {
        self.offsets.ownership(group)
    }

    /// Makes every group request confirm leadership of its offsets partition first (see
    /// [`crate::fence`]). Set once, before the broker takes requests; a second call is ignored.
    pub fn set_fence(&self, fence: LeadershipFence) {
        if self.fence.set(fence).is_err() {
            warn!("group coordinator fence already set; the second one is ignored");
        }
    }

    /// The error a request about `group` gets from a broker that does not serve it, if any: one
    /// that does not own the group's offsets partition, is still loading it, or owns it but cannot
    /// confirm it still leads it (the fence).
    pub(crate) async fn not_serving(&self, group: &str) -> Option<kafka_protocol::error::ResponseError> {
        use kafka_protocol::error::ResponseError;
        match self.offsets.ownership(group) {
            Ownership::Owned => {
                let fence = self.fence.get()?;
                let index = self.offsets.partition_of(group);
                if fence(index).await {
                    None
                } else {
                    debug!(group = %group, partition = index, "leadership of the offsets partition not confirmed; NOT_COORDINATOR");
                    Some(ResponseError::NotCoordinator)
                }
            }
            Ownership::Loading => Some(ResponseError::CoordinatorLoadInProgress),
            Ownership::NotOwned => Some(ResponseError::NotCoordinator),
        }
    }

    /// Marks offsets partition `index` as loading for leader epoch `epoch`; true when the caller
    /// must now [`Self::load`] it (false: already loading or loaded at that epoch).
    pub fn begin_load(&self, index: u32, epoch: i32) -> bool {
        self.offsets.begin_load(index, epoch)
    }

    /// Replays `log` and starts serving the groups of offsets partition `index` (this broker became
    /// its leader at `epoch`), members included: each group comes back at its last stored
    /// generation with fresh sessions, so members that heartbeat or commit here with their member
    /// id and generation just continue. Membership left from an earlier time this broker led the
    /// partition is replaced by what the log says. Blocking I/O.
    pub fn load(&self, index: u32, epoch: i32, log: Arc<dyn OffsetsLog>) -> Result<(), GroupError> {
        let replayed = self.offsets.replay(index, epoch, log.as_ref())?;
        let records = replayed.records;
        // Groups are installed under the registry lock in the same step that makes the partition
        // owned: no request can see it owned without its groups (lock order registry → slot, as
        // everywhere).
        let mut registry = self.registry.lock();
        if !self.offsets.finish_load(index, epoch, log, replayed.offsets) {
            return Ok(());
        }
        registry.groups.retain(|id, _| self.offsets.partition_of(id) != index);
        registry.drop_waiters(|id| self.offsets.partition_of(id) == index);
        let now_ms = self.now_ms();
        let limits = self.limits();
        let mut members = 0usize;
        for (id, stored) in replayed.memberships {
            if self.offsets.partition_of(&id) != index {
                warn!(partition = index, group = %id, "skipping the membership of a group of another offsets partition");
                continue;
            }
            let group = Group::from_stored(id.clone(), stored, limits, now_ms);
            members += group.members().count();
            registry.groups.insert(id, group);
        }
        info!(partition = index, epoch, records, members, "offsets partition loaded with its group membership");
        Ok(())
    }

    /// Stops serving the groups of offsets partition `index` (this broker no longer leads it): their
    /// membership is dropped, parked JoinGroup/SyncGroup requests are answered with an error and
    /// the members find the new coordinator.
    pub fn unload(&self, index: u32) {
        if self.offsets.unload(index) {
            self.drop_groups_of(index);
        }
    }

    /// [`Self::unload`], unless the partition was loaded or begun at a leader epoch after `epoch`
    /// (the epoch at which the caller saw another broker lead it).
    pub fn unload_through(&self, index: u32, epoch: i32) {
        if self.offsets.unload_through(index, epoch) {
            self.drop_groups_of(index);
        }
    }

    fn drop_groups_of(&self, index: u32) {
        let mut registry = self.registry.lock();
        let before = registry.groups.len();
        registry.groups.retain(|id, _| self.offsets.partition_of(id) != index);
        registry.drop_waiters(|id| self.offsets.partition_of(id) == index);
        let dropped = before - registry.groups.len();
        if dropped > 0 {
            info!(partition = index, groups = dropped, "group membership dropped with the offsets partition");
        }
    }

    /// After a group changed: hands its ready responses to the waiting requests and appends its
    /// membership record if one is due. The record is appended now (so records of one group are in
    /// the log in the order of the changes) and committed in the background like an offset commit
    /// (fsynced, stored by every in-sync replica); it is durable once that completes. A record lost
    /// to a coordinator crash or move before that only costs a rejoin: the next coordinator loads
    /// the previous generation (or none), and members of the newer one get ILLEGAL_GENERATION /
    /// UNKNOWN_MEMBER_ID and rejoin.
    pub(crate) fn after_change(&self, registry: &mut Registry, group_id: &str) {
        registry.route(group_id);
        let Some(group) = registry.groups.get_mut(group_id) else { return };
        let generation = group.generation_id();
        let membership = match group.take_membership_record() {
            None => return,
            Some(MembershipRecord::Store(stored)) => Some(stored),
            Some(MembershipRecord::Clear) => None,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            warn!(group = %group_id, "no runtime to store the group membership on; members rejoin after a coordinator move");
            return;
        };
        match self.offsets.append_membership(group_id, membership) {
            Ok(wait) => {
                let group_id = group_id.to_string();
                runtime.spawn(async move {
                    match wait.await {
                        Ok(()) => debug!(group = %group_id, generation, "group membership stored"),
                        Err(e) => warn!(group = %group_id, generation, error = %e,
                                        "storing the group membership failed; members rejoin if the coordinator moves"),
                    }
                });
            }
            Err(e) => warn!(group = %group_id, generation, error = %e,
                            "appending the group membership failed; members rejoin if the coordinator moves"),
        }
    }

    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.clock_base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            members_max: self.config.members_per_group_max,
            initial_rebalance_delay_ms: self.config.initial_rebalance_delay_ms,
        }
    }

    /// Starts the timer task on first use (we are inside the runtime by then).
    pub(crate) fn ensure_ticker(&self) {
        if self.ticker_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = self.weak_self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(TICK_INTERVAL_MS));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(coordinator) = weak.upgrade() else {
                    debug!("group coordinator dropped; timer stops");
                    return;
                };
                coordinator.tick();
            }
        });
    }

    /// Expires sessions and ends phases whose deadline passed, in every group.
    fn tick(&self) {
        let now_ms = self.now_ms();
        let mut registry = self.registry.lock();
        let ids: Vec<String> = registry.groups.keys().cloned().collect();
        for id in ids {
            if let Some(group) = registry.groups.get_mut(&id) {
                group.tick(now_ms);
            }
            self.after_change(&mut registry, &id);
        }
    }

    /// Whether a group may be created: under `groups_max`, after evicting groups that are empty
    /// and own no offsets (they carry no information).
    pub(crate) fn make_room(&self, registry: &mut Registry) -> bool {
        if registry.groups.len() < self.config.groups_max {
            return true;
        }
        registry.groups.retain(|id, group| !group.is_empty() || self.offsets.has_offsets(id));
        registry.groups.len() < self.config.groups_max
    }
}
