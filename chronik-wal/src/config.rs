//! Per-partition log settings and their limits.

use crate::batch::BATCH_HEADER_BYTES;
use crate::error::WalError;
use crate::index::TIME_INDEX_ENTRY_BYTES;

const MS_PER_DAY: u64 = 24 * 60 * 60 * 1000;
/// Default segment size: 1 GiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
/// Default segment age before a roll, and default retention: 7 days.
pub const DEFAULT_SEGMENT_MS: u64 = 7 * MS_PER_DAY;
/// Default bytes of log data between two index entries.
pub const DEFAULT_INDEX_INTERVAL_BYTES: u32 = 4096;
/// Default size of each index file: 10 MiB.
pub const DEFAULT_INDEX_BYTES_MAX: u64 = 10 << 20;
/// Default least time between two recovery point writes after group-commit fsyncs: 1 s. A crash
/// makes the next open scan at most what was appended since (plus what came after the last sync).
pub const DEFAULT_RECOVERY_POINT_INTERVAL_MS: u64 = 1000;
/// Positions in the offset index are u32, so a segment can never exceed 4 GiB.
pub const SEGMENT_BYTES_MAX: u64 = u32::MAX as u64;

/// How a partition log rolls segments, indexes them and expires them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll before an append would make the active segment larger than this.
    pub segment_bytes: u64,
    /// Roll when the active segment's first append is older than this.
    pub segment_ms: u64,
    /// Bytes of log data between two sparse index entries.
    pub index_interval_bytes: u32,
    /// Size of each index file; a segment also rolls when an index is full.
    pub index_bytes_max: u64,
    /// Whole-partition size above which the oldest sealed segments are deleted; None = unlimited.
    pub retention_bytes: Option<u64>,
    /// Age (by a segment's largest timestamp) after which a sealed segment is deleted; None = forever.
    pub retention_ms: Option<u64>,
    /// Least time between two recovery point writes after syncs (rolls, opens and explicit writes
    /// do not wait for it). 0: after every sync that moved the durable end.
    pub recovery_point_interval_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: DEFAULT_SEGMENT_MS,
            index_interval_bytes: DEFAULT_INDEX_INTERVAL_BYTES,
            index_bytes_max: DEFAULT_INDEX_BYTES_MAX,
            retention_bytes: None,
            retention_ms: Some(DEFAULT_SEGMENT_MS),
            recovery_point_interval_ms: DEFAULT_RECOVERY_POINT_INTERVAL_MS,
        }
    }
}

impl LogConfig {
    /// Refuse settings the on-disk format cannot represent, naming the key.
    pub fn validate(&self) -> Result<(), WalError> {
        if self.segment_bytes < BATCH_HEADER_BYTES as u64 || self.segment_bytes > SEGMENT_BYTES_MAX {
            return Err(WalError::InvalidConfig(format!(
                "segment_bytes = {} must be between {} and {}",
                self.segment_bytes, BATCH_HEADER_BYTES, SEGMENT_BYTES_MAX
            )));
        }
        if self.index_bytes_max < TIME_INDEX_ENTRY_BYTES as u64 || self.index_bytes_max > SEGMENT_BYTES_MAX {
            return Err(WalError::InvalidConfig(format!(
                "index_bytes_max = {} must be between {} and {}",
                self.index_bytes_max, TIME_INDEX_ENTRY_BYTES, SEGMENT_BYTES_MAX
            )));
        }
        Ok(())
    }
}
