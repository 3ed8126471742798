//! Chronik's segmented, memory-mapped partition log storing Kafka v2 record batches verbatim.
//! Synchronous (no tokio); the byte layout is in `docs/WAL-FORMAT.md`.
//!
//! Parts:
//! - `partition_log`: `PartitionLog`, one partition's directory of segments — append, zero-copy
//!   read, time lookup, truncation, retention, recovery on open.
//! - `flusher`: `Flusher`, group commit — concurrent callers share one `fdatasync`.
//! - `histogram`: a latency histogram in atomics, and the process-wide one of those `fdatasync`s.
//! - `segment`: one `.log` file mapped read-only, appended by positioned writes, plus its indexes.
//! - `index`: sparse offset and time indexes (memory-mapped) and the rule that places entries.
//! - `batch`: the one reading of the v2 batch header: `split_batches` checks a record set (length,
//!   magic, CRC-32C, counts) into `BatchView`s the log appends as they are; `stored_headers` reads
//!   the headers of bytes the log handed out (the group coordinator's offsets replay); offset stamping.
//! - `scan`: walking a segment's batches to find its valid end (recovery, index rebuild).
//! - `recovery_point`: the per-partition file saying how far the log is known fsynced and valid.
//! - `recovery`: opening a partition's segments, trusting what lies below the recovery point.
//! - `checkpoint_writer`: the background thread writing recovery points off the append/ack path.
//! - `mmap`: the only `unsafe` — mapping files — with the argument why it is sound.
//! - `config`, `error`, `fsutil` (file names, directory fsync).

mod batch;
mod checkpoint_writer;
pub mod config;
pub mod error;
mod flusher;
mod fsutil;
mod histogram;
mod index;
mod mmap;
mod on_demand_file;
mod partition_log;
mod recovery;
mod recovery_point;
mod scan;
mod segment;

pub use batch::{split_batches, stored_headers, BatchError, BatchFault, BatchHeader, BatchView, BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};
pub use config::LogConfig;
pub use error::WalError;
pub use flusher::Flusher;
pub use index::{OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES};
pub use histogram::{Histogram, HistogramSnapshot, SYNC_BUCKETS_US, SYNC_STATS};
pub use partition_log::{AppendInfo, PartitionLog, ReadResult, NO_LOG_APPEND_TIME};
pub use recovery::RecoveryStats;

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it). The one wall clock of
/// the workspace: record timestamps, retention, segment age and the broker's ISR lag all read it.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
