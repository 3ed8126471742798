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
    /// An `fdatasync` of this log failed (now or earlier): nothing appended since the last good one
    /// can be made durable, so nothing of it may be acknowledged (see `flusher`).
    #[error("fdatasync of log {} failed ({reason}): data appended since the last good fdatasync is not durable", path.display())]
    SyncFailed { path: PathBuf, reason: String },
    /// A `LogConfig` value is outside what the on-disk format can represent.
    #[error("invalid log config: {0}")]
    InvalidConfig(String),
}

impl WalError {
    /// A failed `fdatasync`: the page cache may have dropped data it still shows, so the only safe
    /// answer is a restart whose recovery reads the disk (the server halts).
    pub fn is_sync_failure(&self) -> bool {
        matches!(self, WalError::SyncFailed { .. })
    }

    /// The file system is out of space (ENOSPC) or out of quota (EDQUOT): an append that failed this
    /// way was rolled back and can be retried once space returns.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            WalError::Io { source, .. } => {
                source.kind() == io::ErrorKind::StorageFull || source.kind() == io::ErrorKind::QuotaExceeded
            }
            _ => false,
        }
    }
}

/// Adapter for `map_err`: tags an `io::Error` with the path it concerns.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}
