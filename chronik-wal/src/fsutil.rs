//! File naming and directory durability.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{io_at, WalError};

/// Extension of segment data files.
pub(crate) const LOG_EXT: &str = "log";
/// Extension of offset index files.
pub(crate) const INDEX_EXT: &str = "index";
/// Extension of time index files.
pub(crate) const TIME_INDEX_EXT: &str = "timeindex";
/// Extension of a segment copy being written by `truncate_to`; leftovers are deleted on open.
pub(crate) const TMP_EXT: &str = "tmp";
/// Digits of the zero-padded base offset in file names.
const NAME_DIGITS: usize = 20;

/// `{dir}/{base:020}.{ext}`.
pub(crate) fn segment_file(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// The base offset encoded in a segment file stem, if it is one.
pub(crate) fn parse_base(stem: &str) -> Option<i64> {
    if stem.len() != NAME_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// fsyncs a directory so that file creations, renames and deletions in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_at(dir))
}
