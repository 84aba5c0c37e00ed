//! The index's directory: tantivy's memory-mapped directory, except that small reads of the
//! document store are read into memory instead of through the map.
//!
//! A search reads the stored fields of its ten hits: one compressed block of the store each,
//! a few kilobytes at random places in the largest file of the index. Through the map, each
//! such read faults in the block and, by the kernel's fault-around, the pages next to it (64 KB
//! by default), and every page mapped that way counts as the portal's resident memory for as
//! long as it stays in the page cache: at a million documents the store alone grew the
//! resident memory by hundreds of megabytes under load. Read with `pread`, the same bytes
//! come from the same page cache, but only the block is copied, and the page cache stays the
//! kernel's to reclaim. Large reads (a merge reading a whole store) still go through the map,
//! without a copy.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::HasLen;
use tantivy::directory::error::{DeleteError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, OwnedBytes, WatchCallback,
    WatchHandle, WritePtr,
};

/// Reads up to this size from the store are copied with `pread`; larger ones use the map.
const COPY_UP_TO: usize = 256 * 1024;

/// The document store's files (tantivy's `SegmentComponent::Store`).
const STORE_EXTENSION: &str = "store";

/// [`MmapDirectory`] with store reads copied rather than mapped (see the module comment).
#[derive(Clone, Debug)]
pub(crate) struct IndexDirectory {
    mmap: MmapDirectory,
    root: PathBuf,
}

impl IndexDirectory {
    pub(crate) fn open(dir: &Path) -> Result<IndexDirectory, io::Error> {
        let mmap = MmapDirectory::open(dir).map_err(io::Error::other)?;
        Ok(IndexDirectory {
            mmap,
            root: dir.to_path_buf(),
        })
    }
}

impl Directory for IndexDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        let mapped = self.mmap.get_file_handle(path)?;
        if path.extension().is_none_or(|e| e != STORE_EXTENSION) {
            return Ok(mapped);
        }
        let full = self.root.join(path);
        let file = File::open(&full).map_err(|e| OpenReadError::wrap_io_error(e, full))?;
        Ok(Arc::new(CopiedReads { file, mapped }))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.mmap.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.mmap.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.mmap.open_write(path)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.mmap.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.mmap.atomic_write(path, data)
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.mmap.sync_directory()
    }

    fn acquire_lock(
        &self,
        lock: &Lock,
    ) -> Result<DirectoryLock, tantivy::directory::error::LockError> {
        self.mmap.acquire_lock(lock)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.mmap.watch(watch_callback)
    }
}

/// A store file: small reads copied from the file, large ones from its map.
#[derive(Debug)]
struct CopiedReads {
    file: File,
    mapped: Arc<dyn FileHandle>,
}

impl HasLen for CopiedReads {
    fn len(&self) -> usize {
        self.mapped.len()
    }
}

impl FileHandle for CopiedReads {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        if range.len() > COPY_UP_TO || range.end > self.len() {
            // Out-of-range reads fail there exactly as they would without this handle.
            return self.mapped.read_bytes(range);
        }
        let mut buffer = vec![0; range.len()];
        self.file.read_exact_at(&mut buffer, range.start as u64)?;
        Ok(OwnedBytes::new(buffer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_reads_are_copied_when_small_and_mapped_when_large_with_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let directory = IndexDirectory::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..(COPY_UP_TO * 2)).map(|i| (i % 251) as u8).collect();
        for name in ["segment.store", "segment.idx"] {
            std::fs::write(dir.path().join(name), &data).unwrap();
            let handle = directory.get_file_handle(Path::new(name)).unwrap();
            assert_eq!(handle.len(), data.len());
            for range in [0..10, 1000..5000, 0..COPY_UP_TO + 1, 7..data.len()] {
                let bytes = handle.read_bytes(range.clone()).unwrap();
                assert_eq!(bytes.as_slice(), &data[range], "{name}");
            }
        }
    }
}
