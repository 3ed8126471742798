//! Start-up and shutdown: identity on disk, the metadata Raft node, partition logs, the group
//! coordinator, the Kafka and admin listeners, and the background tasks (metadata follow-up,
//! retention, interval fsync).

use std::path::Path;
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

/// Identity file: the cluster id and node id this data directory belongs to.
const IDENTITY_FILE: &str = "meta.properties";

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

/// The cluster id every broker reports: the first one written to the metadata wins (the first broker
/// to start proposes the id of its identity file). The agreed id is taken from the answer to the write,
/// not from this node's state: a write forwarded to the leader is answered once the leader applied it,
/// possibly before this node has. A node whose identity file holds another id (it proposed one while
/// the cluster formed) rewrites it to the agreed one.
async fn agree_cluster_id(meta: &MetaNode, data_dir: &Path, node_id: u64, proposed: String) -> anyhow::Result<String> {
    let agreed = match meta.state().cluster_id.clone() {
        Some(known) => known,
        None => match meta
            .write(MetaCommand::InitClusterId { cluster_id: proposed.clone() })
            .await
            .context("cannot record the cluster id in the metadata")?
        {
            MetaResponse::ClusterId(agreed) => agreed,
            other => anyhow::bail!("the metadata refused the cluster id {proposed}: {other:?}"),
        },
    };
    if agreed != proposed {
        write_identity(data_dir, &agreed, node_id)?;
    }
    Ok(agreed)
}

fn write_identity(data_dir: &Path, cluster: &str, node_id: u64) -> anyhow::Result<()> {
    let path = data_dir.join(IDENTITY_FILE);
    let tmp = data_dir.join(format!("{IDENTITY_FILE}.tmp"));
    std::fs::write(&tmp, format!("cluster.id={cluster}\nnode.id={node_id}\n")).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).context("fsync identity file")?;
    std::fs::rename(&tmp, &path).context("install identity file")?;
    std::fs::File::open(data_dir).and_then(|d| d.sync_all()).context("fsync data dir")?;
    Ok(())
}

/// The cluster id this data dir belongs to; created on first start. A data dir of another node is refused.
fn load_identity(data_dir: &Path, node_id: u64) -> anyhow::Result<String> {
    let path = data_dir.join(IDENTITY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut cluster = None;
            let mut node = None;
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("cluster.id=") {
                    cluster = Some(v.trim().to_string());
                }
                if let Some(v) = line.strip_prefix("node.id=") {
                    node = v.trim().parse::<u64>().ok();
                }
            }
            let cluster = cluster.with_context(|| format!("{} has no cluster.id", path.display()))?;
            if node != Some(node_id) {
                anyhow::bail!(
                    "data dir {} belongs to node {:?}, not node {node_id}; node ids are never reused for a data dir",
                    data_dir.display(),
                    node
                );
            }
            Ok(cluster)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cluster = new_cluster_id();
            write_identity(data_dir, &cluster, node_id)?;
            Ok(cluster)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Kafka cluster ids are 22-character URL-safe base64 of a random UUID.
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u128 = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(22);
    for _ in 0..22 {
        out.push(ALPHABET[(bits & 63) as usize] as char);
        bits >>= 6;
    }
    out
}

/// Exit status of a broker halted because its metadata Raft core stopped on an error.
const METADATA_STOPPED_EXIT_CODE: i32 = 75;

/// Halts the broker when its metadata Raft core stops on an error (a metadata write failed, e.g. on
/// a full disk): such a node no longer votes or applies metadata, so it would go on serving stale
/// leaderships and topics. Halting makes it visible and lets the controller fence it and move its
/// partitions; a restart recovers the metadata from the disk (docs/OPERATIONS.md, "Disk full").
async fn halt_when_metadata_stops(broker: Arc<Broker>) {
    let reason = broker.meta.stopped_on_error().await;
    let line = format!("halting the broker: the metadata Raft core stopped ({reason}); restart it once the data dir is writable");
    tracing::error!("{line}");
    eprintln!("chronik-server: {line}");
    std::process::exit(METADATA_STOPPED_EXIT_CODE);
}

/// Pause before trying again to open partition logs that could not be opened (a full disk): the
/// metadata may not change again for a long time, and the partition must come up once space returns.
const REOPEN_RETRY_MS: u64 = 5_000;

/// Reacts to applied metadata: opens new partitions, deletes logs of deleted topics; retries every
/// `REOPEN_RETRY_MS` while some log could not be opened.
async fn follow_metadata(broker: Arc<Broker>) {
    let mut applied = broker.meta.subscribe();
    let mut retry = false;
    loop {
        if retry {
            tokio::select! {
                changed = applied.changed() => if changed.is_err() { break },
                () = tokio::time::sleep(Duration::from_millis(REOPEN_RETRY_MS)) => {}
            }
        } else if applied.changed().await.is_err() {
            break;
        }
        retry = !crate::reconcile::partitions(&broker).await;
    }
}

async fn retention_task(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(Duration::from_millis(broker.config.retention_check_interval_ms.max(1000)));
    loop {
        tick.tick().await;
        let b = broker.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let now_ms = chronik_wal::now_ms();
            for p in b.partitions.all() {
                match p.apply_retention(now_ms) {
                    Ok(0) => {}
                    Ok(n) => info!(topic = %p.topic, partition = p.index, segments = n, "retention deleted segments"),
                    Err(e) => warn!(topic = %p.topic, partition = p.index, error = %e, "retention failed"),
                }
            }
        })
        .await;
    }
}

async fn interval_fsync_task(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(Duration::from_millis(broker.config.fsync_interval_ms));
    loop {
        tick.tick().await;
        let b = broker.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for p in b.partitions.all() {
                if let Err(e) = p.sync_now() {
                    warn!(topic = %p.topic, partition = p.index, error = %e, "interval fsync failed");
                }
            }
        })
        .await;
    }
}


async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
