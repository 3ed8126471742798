//! A file that holds a descriptor only while it is being written: the index files.
//!
//! An index is read through its memory map, which needs no descriptor once made; only writing
//! (`pwrite` of new entries), syncing and trimming do. Holding the descriptors of both index files of
//! every active segment would cost three descriptors per partition where one (the log) is enough: on
//! a node with 10,000 partitions, 30,000 against a common limit of 20,000. So an index file is opened
//! at its first write after a sync and closed again by the next recovery point write, which syncs it
//! anyway (`Flusher::checkpoint`): an idle partition holds no index descriptor, one taking writes
//! holds two until its next recovery point.
//!
//! Syncing through a descriptor other than the one that wrote is sound: `fdatasync` flushes the
//! inode's dirty pages, whoever dirtied them.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

pub(crate) struct OnDemandFile {
    path: PathBuf,
    open: Mutex<Option<Arc<File>>>,
}

impl OnDemandFile {
    /// A handle on the existing file at `path`, holding no descriptor yet.
    pub(crate) fn closed(path: &Path) -> OnDemandFile {
        OnDemandFile { path: path.to_path_buf(), open: Mutex::new(None) }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `buf` at `at`, opening the file first if no descriptor is held.
    pub(crate) fn write_all_at(&self, buf: &[u8], at: u64) -> io::Result<()> {
        self.descriptor()?.write_all_at(buf, at)
    }

    /// Whether a descriptor is held.
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.open.lock().is_some()
    }

    /// Makes everything written so far durable (`fdatasync`) and lets the descriptor go. A write racing
    /// this opens a descriptor of its own, which the next call syncs and closes.
    pub(crate) fn sync_data_and_close(&self) -> io::Result<()> {
        let held = self.open.lock().take();
        let file = match held {
            Some(f) => f,
            None => Arc::new(self.reopen()?),
        };
        file.sync_data()
    }

    /// Cuts the file to `len` bytes, makes it durable (`fsync`) and lets the descriptor go (sealing).
    pub(crate) fn set_len_sync_and_close(&self, len: u64) -> io::Result<()> {
        let file = self.descriptor()?;
        file.set_len(len)?;
        file.sync_all()?;
        self.open.lock().take();
        Ok(())
    }

    fn descriptor(&self) -> io::Result<Arc<File>> {
        let mut open = self.open.lock();
        if let Some(f) = open.as_ref() {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(self.reopen()?);
        *open = Some(Arc::clone(&f));
        Ok(f)
    }

    fn reopen(&self) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_is_held_from_a_write_until_the_next_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [0u8; 16]).unwrap();
        let f = OnDemandFile::closed(&path);
        assert!(!f.is_open());
        f.write_all_at(b"abcd", 4).unwrap();
        assert!(f.is_open());
        f.sync_data_and_close().unwrap();
        assert!(!f.is_open());
        // Syncing with nothing held opens, syncs and closes again.
        f.sync_data_and_close().unwrap();
        assert!(!f.is_open());
        f.set_len_sync_and_close(8).unwrap();
        assert!(!f.is_open());
        assert_eq!(std::fs::read(&path).unwrap(), b"\0\0\0\0abcd");
    }

    #[test]
    fn a_missing_file_is_an_error_not_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = OnDemandFile::closed(&dir.path().join("gone"));
        assert!(f.write_all_at(b"x", 0).is_err());
        assert!(!dir.path().join("gone").exists());
    }
}
