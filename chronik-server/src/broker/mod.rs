//! The context every request handler sees: config, metadata, partitions, groups, metrics, and the
//! shared state of the parts above it that must live as long as the broker: the replica fetcher
//! registry ([`fetchers`]), the catch-up throttle ([`catch_up`]), the group coordinator's view of
//! the topics ([`group_ownership`]) and the fetch sessions (`fetch_session::cache`); and the sizes
//! of the replicas it hosts ([`replica_sizes`]). What follows the metadata (logs, roles, fetchers,
//! group ownership) is `reconcile`.

pub mod catch_up;
pub mod fetchers;
pub mod group_ownership;
pub mod replica_sizes;

use std::sync::Arc;

use chronik_group::GroupCoordinator;
use chronik_raft::{MetaCommand, MetaError, MetaNode, MetaResponse};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::config::Config;
use crate::ids::BrokerId;
use crate::metrics::Metrics;
use crate::partition::PartitionManager;

/// Producer ids reserved through Raft per allocation, so InitProducerId rarely needs a metadata write.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

pub struct Broker {
    pub config: Config,
    /// This broker's id (`config.broker_id`, the node id checked to fit).
    pub node_id: BrokerId,
    pub cluster_id: String,
    pub meta: Arc<MetaNode>,
    pub partitions: PartitionManager,
    pub groups: Arc<GroupCoordinator>,
    pub metrics: Metrics,
    /// Bumped when any partition's high watermark advances; long-polling fetches wait on it.
    pub data_changed: watch::Sender<u64>,
    /// The current block of producer ids: next to hand out, end (exclusive).
    producer_ids: tokio::sync::Mutex<(i64, i64)>,
    /// Serialises metadata-changing admin operations coming from Kafka clients.
    pub topic_ops: tokio::sync::Mutex<()>,
    /// One replica fetcher per leader broker this broker follows partitions from.
    pub fetchers: fetchers::Fetchers,
    /// Set by `POST /admin/rebalance`; the controller's next tick plans a rebalance round.
    pub rebalance_requested: std::sync::atomic::AtomicBool,
    /// Throttle and rate of catch-up fetches by replicas being added (`reassignment_throttle_bytes_per_s`).
    pub catch_up: catch_up::CatchUp,
    /// Which offsets partitions the group coordinator serves (see `groups::ownership`).
    pub group_ownership: group_ownership::GroupOwnership,
    /// Incremental fetch sessions (KIP-227) opened with this broker (`fetch_session::cache`).
    pub fetch_sessions: crate::fetch_session::cache::FetchSessionCache,
    started: Mutex<std::time::Instant>,
}

impl Broker {
    pub fn new(
        config: Config,
        cluster_id: String,
        meta: Arc<MetaNode>,
        partitions: PartitionManager,
        groups: Arc<GroupCoordinator>,
        data_changed: watch::Sender<u64>,
    ) -> Broker {
        Broker {
            node_id: config.broker_id,
            catch_up: catch_up::CatchUp::new(config.reassignment_throttle_bytes_per_s),
            fetch_sessions: crate::fetch_session::cache::FetchSessionCache::new(config.fetch_sessions_max, config.fetch_session_idle_ms),
            config,
            cluster_id,
            meta,
            partitions,
            groups,
            metrics: Metrics::default(),
            data_changed,
            producer_ids: tokio::sync::Mutex::new((0, 0)),
            topic_ops: tokio::sync::Mutex::new(()),
            fetchers: fetchers::Fetchers::default(),
            rebalance_requested: std::sync::atomic::AtomicBool::new(false),
            group_ownership: Default::default(),
            started: Mutex::new(std::time::Instant::now()),
        }
    }

    /// Hands out a cluster-unique producer id, reserving a new block through Raft when needed.
    pub async fn next_producer_id(&self) -> Result<i64, MetaError> {
        let mut ids = self.producer_ids.lock().await;
        if ids.0 >= ids.1 {
            match self.meta.write(MetaCommand::AllocateProducerIds { broker: self.node_id.0, count: PRODUCER_ID_BLOCK_SIZE }).await? {
                MetaResponse::ProducerIdBlock { first, count } => *ids = (first, first + count),
                other => {
                    return Err(MetaError::Config(format!("unexpected answer to a producer id allocation: {other:?}")));
                }
            }
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.lock().elapsed()
    }
}
