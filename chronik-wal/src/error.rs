//! The one error type of the crate: each variant says what failed and where.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in a partition log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A file-system call failed on `path`.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Data that was fsynced earlier does not read back as valid batches: fail loudly, never guess.
    #[error("corrupt segment {} at byte {position}: {reason}", segment.display())]
    Corrupt {
        segment: PathBuf,
        position: u64,
        reason: String,
    },
    /// A batch handed to `append` is not a valid v2 record batch (bad length, magic or CRC).
    #[error("invalid record batch: {0}")]
    InvalidBatch(String),
    /// The requested offset lies outside `[log_start, log_end]`.
    #[error("offset {offset} out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    /// The batch cannot fit even in an empty segment.
    #[error("batch of {size} bytes does not fit in a segment of {segment_bytes} bytes")]
    BatchTooLarge { size: u64, segment_bytes: u64 },
    /// `sync_through` was asked for offsets the log does not hold (never appended, or truncated away).
    #[error("cannot sync through offset {requested}: the log ends at {log_end}")]
    SyncBeyondEnd { requested: i64, log_end: i64 },
    /// An earlier `fdatasync` of this log failed; nothing appended since can be made durable.
    #[error("log {} cannot be made durable since an fdatasync failed ({reason}); restart the broker", path.display())]
    SyncFailed { path: PathBuf, reason: String },
    /// A `LogConfig` value is outside what the on-disk format can represent.
    #[error("invalid log config: {0}")]
    InvalidConfig(String),
}

/// Adapter for `map_err`: tags an `io::Error` with the path it concerns.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}
