//! Start-up and shutdown: the identity on disk ([`identity`]), the metadata Raft node, partition logs,
//! the group coordinator, the Kafka and admin listeners, registration, and the background tasks
//! ([`tasks`]: metadata follow-up, halt when the metadata stops, retention, interval fsync); the
//! broker runs until a shutdown signal ([`signals`]).

mod identity;
mod signals;
mod tasks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chronik_group::{GroupConfig, GroupCoordinator, PartitionExists};
use chronik_raft::{BrokerNode, MetaCommand, MetaConfig, MetaNode, MetaResponse};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::config::{Config, FsyncMode};
use crate::partition::PartitionManager;
use identity::{agree_cluster_id, load_identity};
use signals::shutdown_signal;
use tasks::{follow_metadata, halt_when_metadata_stops, interval_fsync_task, retention_task};

pub async fn run(config: Config) -> anyhow::Result<()> {
    let broker = start(config).await?;
    shutdown_signal().await;
    info!("shutting down");
    if let Err(e) = broker.meta.shutdown().await {
        warn!(error = %e, "metadata node shutdown");
    }
    // Make everything appended durable before exit, whatever the fsync mode, and record it as each
    // partition's recovery point so the next start scans nothing.
    for p in broker.partitions.all() {
        if let Err(e) = p.sync_now().and_then(|()| p.write_recovery_point()) {
            warn!(topic = %p.topic, partition = p.index, error = %e, "final fsync failed");
        }
    }
    Ok(())
}

/// Starts every part and returns the running broker (listeners and tasks are spawned).
pub async fn start(config: Config) -> anyhow::Result<Arc<Broker>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let cluster_id = load_identity(&config.data_dir, config.node_id)?;
    let node = BrokerNode {
        kafka_addr: config.advertise.kafka.clone(),
        wal_addr: config.advertise.wal.clone(),
        raft_addr: config.advertise.raft.clone(),
        admin_addr: config.advertise.admin.clone(),
        rack: None,
    };
    // Bind before anything slow so a port clash fails fast and names the address. Every node binds
    // its wal (replication) and raft (metadata) listeners, so a single node can take a second one
    // without a restart.
    let kafka_listener = TcpListener::bind(&config.bind.kafka)
        .await
        .with_context(|| format!("cannot listen on bind.kafka {}", config.bind.kafka))?;
    let admin_listener = std::net::TcpListener::bind(&config.bind.admin)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .with_context(|| format!("cannot listen on bind.admin {}", config.bind.admin))?;
    // Partition replication is served on the wal port with the Kafka protocol (followers fetch).
    let wal_listener = TcpListener::bind(&config.bind.wal)
        .await
        .with_context(|| format!("cannot listen on bind.wal {}", config.bind.wal))?;
    let peers: std::collections::BTreeMap<u64, BrokerNode> = config
        .peers
        .iter()
        .filter(|p| config.initial_cluster.contains(&p.id))
        .map(|p| {
            let n = if p.id == config.node_id {
                node.clone()
            } else {
                BrokerNode {
                    kafka_addr: p.kafka.clone(),
                    wal_addr: p.wal.clone(),
                    raft_addr: p.raft.clone(),
                    admin_addr: Config::peer_admin_addr(p),
                    rack: None,
                }
            };
            (p.id, n)
        })
        .collect();
    let meta = MetaNode::start(MetaConfig {
        node_id: config.node_id,
        node: node.clone(),
        dir: config.data_dir.clone(),
        bind_raft_addr: Some(config.bind.raft.clone()),
        peers: if config.is_cluster() { peers } else { Default::default() },
        may_bootstrap: config.may_bootstrap(),
        ..MetaConfig::default()
    })
    .await
    .context("metadata node failed to start")?;

    // Until this node has joined and caught up, a small admin API says so.
    let (joined_tx, joined_rx) = watch::channel(false);
    let waiting_admin = tokio::spawn(crate::admin::serve_waiting(
        meta.clone(),
        TcpListener::from_std(admin_listener.try_clone().context("cannot share the admin listener")?)
            .context("cannot use the admin listener")?,
        joined_rx,
    ));
    if !meta.has_joined() {
        if config.join {
            tokio::spawn(crate::join::run(config.clone(), config.node_id, node.clone(), meta.clone()));
        }
        info!(node_id = config.node_id, join = config.join, "waiting to be added to the cluster");
        meta.wait_joined(Duration::from_millis(JOIN_REPORT_INTERVAL_MS)).await;
        info!(node_id = config.node_id, "joined the cluster");
    }

    let cluster_id = agree_cluster_id(&meta, &config.data_dir, config.node_id, cluster_id).await?;
    let (data_changed, _) = watch::channel(0u64);
    let partitions = PartitionManager::new(&config, data_changed.clone()).context("cannot create logs dir")?;
    let exists_meta = meta.clone();
    let partition_exists: PartitionExists = Arc::new(move |topic: &str, p: i32| {
        exists_meta
            .state()
            .topics
            .get(topic)
            .map(|t| p >= 0 && (p as usize) < t.partitions.len())
            .unwrap_or(false)
    });
    let groups = GroupCoordinator::new(
        GroupConfig {
            session_timeout_ms_min: config.group_session_timeout_ms_min,
            session_timeout_ms_max: config.group_session_timeout_ms_max,
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            offsets_partitions: config.offsets_partitions,
            ..GroupConfig::default()
        },
        partition_exists,
    )
    .context("group coordinator config")?;
    let legacy_offsets = config.data_dir.join("__consumer_offsets");
    if legacy_offsets.is_dir() {
        warn!(dir = %legacy_offsets.display(), "committed offsets in this pre-replication directory are not read: offsets now live in the __consumer_offsets topic");
    }

    let broker = Arc::new(Broker::new(config, cluster_id, meta, partitions, groups, data_changed));
    crate::groups::fence::install(&broker);
    register_self(&broker, node).await?;
    crate::reconcile::partitions(&broker).await;

    tokio::spawn(crate::kafka::listener::run(broker.clone(), kafka_listener));
    tokio::spawn(crate::kafka::listener::run(broker.clone(), wal_listener));
    tokio::spawn(crate::admin::serve(broker.clone(), TcpListener::from_std(admin_listener).context("cannot use the admin listener")?));
    // The waiting admin API stops taking connections and ends once its open ones close.
    joined_tx.send_replace(true);
    drop(waiting_admin);
    tokio::spawn(follow_metadata(broker.clone()));
    tokio::spawn(halt_when_metadata_stops(broker.clone()));
    tokio::spawn(retention_task(broker.clone()));
    crate::replication::spawn(broker.clone());
    crate::controller::spawn(broker.clone());
    if broker.config.fsync == FsyncMode::Interval {
        tokio::spawn(interval_fsync_task(broker.clone()));
    }
    info!(
        node_id = broker.node_id.0,
        cluster_id = %broker.cluster_id,
        kafka = %broker.config.bind.kafka,
        admin = %broker.config.bind.admin,
        data_dir = %broker.config.data_dir.display(),
        "chronik broker started"
    );
    Ok(broker)
}

/// Records this broker (all its addresses, and this start's random incarnation) in the metadata and
/// waits until this node has applied that record. Raft applies entries in log order, so from then on
/// the local metadata holds everything committed before this start registered — the fencing and the
/// new partition leaders decided while this broker was down — and the partition roles taken next come
/// from that view. Without the wait, a restarted broker would act for a moment as the leader its
/// pre-crash metadata remembers: serving its own stale copy of committed offsets as a group
/// coordinator, or taking acks=1 writes the real leader never sees.
async fn register_self(broker: &Arc<Broker>, node: BrokerNode) -> anyhow::Result<()> {
    // A heartbeat first, so the controller counts this broker alive when the registration unfences it.
    let heartbeat = Duration::from_millis(broker.config.broker_heartbeat_interval_ms);
    if let Err(e) = broker.meta.heartbeat(heartbeat).await {
        tracing::debug!(error = %e, "heartbeat before registering failed");
    }
    let incarnation = uuid::Uuid::new_v4().as_u64_pair().0;
    let answer = broker
        .meta
        .write(MetaCommand::RegisterBroker { id: broker.node_id.0, node, incarnation: Some(incarnation) })
        .await
        .context("cannot register this broker in the metadata")?;
    if answer != MetaResponse::Ok {
        // A removed id, most likely: say what the metadata said.
        let why = match answer {
            MetaResponse::InvalidRequest(m) => m,
            other => format!("{other:?}"),
        };
        anyhow::bail!("the cluster refused this broker's registration: {why}");
    }
    let mine = |b: &Broker| b.meta.state().brokers.get(&b.node_id.0).and_then(|r| r.incarnation) == Some(incarnation);
    let mut applied = broker.meta.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(REGISTRATION_APPLY_WAIT_MS);
    while !mine(broker) {
        if tokio::time::timeout_at(deadline, applied.changed()).await.map_or(true, |r| r.is_err()) {
            anyhow::bail!(
                "this broker's registration was committed but not applied here within {REGISTRATION_APPLY_WAIT_MS} ms"
            );
        }
    }
    Ok(())
}

/// How often a node waiting to be added says so in its log.
const JOIN_REPORT_INTERVAL_MS: u64 = 10_000;

/// How long a starting broker waits to apply its own committed registration (normally milliseconds:
/// the next AppendEntries from the leader carries the commit).
const REGISTRATION_APPLY_WAIT_MS: u64 = 10_000;
