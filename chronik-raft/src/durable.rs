//! Small files written so that a crash leaves either the old or the new content: write a temp file,
//! fsync it, rename it over the target, fsync the directory. Used for the vote, the committed log id,
//! the purge point and snapshots.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::error::StoreError;

/// Replace `path` with `bytes` atomically and durably.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(StoreError::io("create", &tmp))?;
    file.write_all(bytes).map_err(StoreError::io("write", &tmp))?;
    file.sync_all().map_err(StoreError::io("fsync", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(StoreError::io("rename over", path))?;
    sync_parent(path)
}

/// The content of `path`, or `None` when it does not exist.
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::Io { verb: "read", path: path.to_path_buf(), source: e }),
    }
}

/// Serialise `value` as JSON into `path` atomically.
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, what: &'static str, value: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|source| StoreError::Encode { what, source })?;
    write_atomic(path, &bytes)
}

/// Read JSON written by [`write_json`], `None` when the file does not exist.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &'static str) -> Result<Option<T>, StoreError> {
    match read_if_exists(path)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StoreError::Decode { what, path: path.to_path_buf(), source }),
    }
}

/// fsync the directory holding `path`, so a create, rename or delete in it survives a crash.
pub(crate) fn sync_parent(path: &Path) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("fsync directory", dir))
}

/// Run blocking file I/O off the async worker threads (fsync can take milliseconds).
pub(crate) async fn blocking<T, F>(what: &'static str, f: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task { what, reason: e.to_string() })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(StoreError::io("tempdir", "/tmp"))?;
        let path = dir.path().join("vote.json");
        assert_eq!(read_json::<u64>(&path, "vote")?, None);
        write_json(&path, "vote", &5u64)?;
        write_json(&path, "vote", &7u64)?;
        assert_eq!(read_json::<u64>(&path, "vote")?, Some(7));
        assert!(!path.with_extension("tmp").exists());
        fs::write(&path, b"{not json").map_err(StoreError::io("write", &path))?;
        assert!(matches!(read_json::<u64>(&path, "vote"), Err(StoreError::Decode { .. })));
        Ok(())
    }
}
