//! The broker's background tasks: following applied metadata (open and delete partition logs),
//! halting when the metadata Raft core stops, retention, and the interval fsync.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::broker::Broker;

/// Exit status of a broker halted because its metadata Raft core stopped on an error.
const METADATA_STOPPED_EXIT_CODE: i32 = 75;

/// Halts the broker when its metadata Raft core stops on an error (a metadata write failed, e.g. on
/// a full disk): such a node no longer votes or applies metadata, so it would go on serving stale
/// leaderships and topics. Halting makes it visible and lets the controller fence it and move its
/// partitions; a restart recovers the metadata from the disk (docs/OPERATIONS.md, "Disk full").
pub(super) async fn halt_when_metadata_stops(broker: Arc<Broker>) {
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
pub(super) async fn follow_metadata(broker: Arc<Broker>) {
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

pub(super) async fn retention_task(broker: Arc<Broker>) {
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

pub(super) async fn interval_fsync_task(broker: Arc<Broker>) {
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
