//! What the broker does when a partition log's disk fails, by kind of failure (the policy is in
//! docs/OPERATIONS.md, "Disk full"):
//!
//! - **A write or allocation fails** (ENOSPC on a full disk, EDQUOT, or an error creating a segment's
//!   files): `chronik_wal` has rolled the append back, so the log, its index and its end offset are
//!   as before and nothing of the batch is visible or counted. The request is answered
//!   KAFKA_STORAGE_ERROR for that partition (a retriable error: clients retry) and the broker keeps
//!   serving — reads of what is stored, other partitions, and the same partition once space returns.
//!   A follower that cannot write stops advancing, so the leader drops it from the ISR after
//!   `replica_lag_time_max_ms` and acks=all writes then get NOT_ENOUGH_REPLICAS while the ISR is
//!   below `min.insync.replicas`.
//! - **An `fdatasync` fails**: the kernel may already have dropped the dirty pages and marked them
//!   clean, so what the page cache shows (and followers may have fetched) is not known to be on the
//!   disk, and a second `fdatasync` that succeeds proves nothing (fsyncgate). Nothing appended after
//!   the last good sync is ever acknowledged (`chronik_wal::Flusher` refuses it for good), and the
//!   broker halts, as Kafka does on a log I/O error: its restart re-reads the log from the disk and
//!   cuts the unsynced tail, and in a cluster the partitions' leadership moves to in-sync replicas
//!   meanwhile. Serving on would leave a leader whose log end may go backwards under its followers.

use chronik_wal::WalError;

/// Exit status of a broker halted by a failed fdatasync (EX_IOERR of sysexits.h).
pub const SYNC_FAILED_EXIT_CODE: i32 = 74;

/// Halts the process when `error` is a failed fdatasync (see the module docs); returns otherwise.
pub fn halt_on_sync_failure(topic: &str, partition: i32, error: &WalError) {
    if !error.is_sync_failure() {
        return;
    }
    let line = format!(
        "halting the broker: fdatasync of partition log {topic}-{partition} failed ({error}); \
         data appended since the last good fdatasync was never acknowledged, and a restart's \
         recovery will read the log from the disk"
    );
    tracing::error!(topic, partition, error = %error, "{line}");
    // Also straight to stderr: the process exits before a buffered log writer could flush.
    eprintln!("chronik-server: {line}");
    std::process::exit(SYNC_FAILED_EXIT_CODE);
}
