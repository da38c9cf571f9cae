//! Files streamed straight into a repository in a local folder.
//!
//! OpenDAL's folder service takes a whole object in memory and passes it through Tokio's file
//! type, which copies it again in 2 MiB pieces on its blocking pool. For the largest objects a
//! backup writes (packs of several MiB), a backup to a local folder can instead write each piece
//! to a temporary file as it is produced, so no pack is ever held whole in memory: a 1 MiB
//! buffer gathers the short pieces (all of them with `O_DIRECT`), long ones are written from
//! where they are, and the file reaches the disk without filling the page cache (see
//! [`crate::direct`]); large reads pass the cache (`O_DIRECT`). This is the one place arca
//! writes repository files without OpenDAL, and it keeps OpenDAL's guarantees for the folder
//! service: a file appears whole under its name or not at all (temporary file in `.tmp/`,
//! `fdatasync`, rename), and it adds the parent folder's fsync so the rename itself is durable
//! before anything that refers to the file is written.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use crate::RangeBuf;
use crate::direct::{self, AlignedBuf, DirectWriter, InFlight};
use crate::stats::Stats;
use crate::{Result, StorageError, TEMPORARY_DIR};

/// Reads of a pack range at least this long pass the page cache.
const DIRECT_READ_FROM: u64 = 64 << 10;

/// The buffer that gathers a pack's short pieces into writes (every piece, with `O_DIRECT`).
const PACK_WRITE_BUF: usize = 1 << 20;

/// A repository in a local folder, read and written without OpenDAL (see the module docs).
#[derive(Clone, Debug)]
pub struct LocalFolder {
    root: PathBuf,
    url: String,
    stats: Arc<Stats>,
}

impl LocalFolder {
    pub(crate) fn new(root: PathBuf, url: String, stats: Arc<Stats>) -> Self {
        LocalFolder { root, url, stats }
    }

    /// A new file in [`TEMPORARY_DIR`] to stream an object into, to be committed under its name
    /// when it is complete.
    pub fn create(&self) -> Result<LocalFile> {
        let dir = self.root.join(TEMPORARY_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| self.io(TEMPORARY_DIR, "create", e))?;
        let name = format!("{TEMPORARY_DIR}stream-{}", crate::rand_suffix());
        let mut options = File::options();
        options.write(true).create_new(true);
        // Small blobs (SQLite pages) are gathered into larger writes, which are streamed to the
        // disk or pass the page cache (see `direct`): the pack is made durable at once and not
        // read again by this run.
        let file = DirectWriter::open(
            &options,
            &self.root.join(&name),
            AlignedBuf::new(PACK_WRITE_BUF),
            direct::large_writes(),
        )
        .map_err(|e| self.io(&name, "create", e))?;
        Ok(LocalFile {
            body: Body::Open(file),
            name,
            folder: self.clone(),
            written: 0,
        })
    }

    /// Reads the whole file `path`.
    pub(crate) fn read(&self, path: &str) -> Result<Vec<u8>> {
        let v = std::fs::read(self.root.join(path)).map_err(|e| self.read_error(path, e))?;
        self.stats.request();
        self.stats.received(v.len() as u64);
        Ok(v)
    }

    /// Reads `len` bytes at `offset` of `path` into `buf` (fewer if the file ends first), with
    /// one `pread` instead of OpenDAL's copies through Tokio's blocking pool. `buf` is reused:
    /// a caller that reads many ranges keeps one buffer, so its pages are not faulted in and
    /// zeroed by the kernel again for every read. A range of [`DIRECT_READ_FROM`] bytes or more
    /// is read past the page cache (see [`crate::direct`]): a restore reads each pack once.
    pub(crate) fn read_range_into(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        buf: &mut RangeBuf,
    ) -> Result<()> {
        let full = self.root.join(path);
        let len = len as usize;
        let direct = match len as u64 >= DIRECT_READ_FROM {
            true => direct::open_for_reading(&full).map_err(|e| self.read_error(path, e))?,
            false => None,
        };
        let got = match direct.map(|file| direct::read_range(&file, offset, len, buf)) {
            Some(Err(e)) if !direct::refused(&e) => Err(e),
            Some(Ok(got)) => Ok(got),
            // Not asked for, or the filesystem refused O_DIRECT at the open or the read.
            _ => {
                let file = File::open(&full).map_err(|e| self.read_error(path, e))?;
                direct::read_range_cached(&file, offset, len, buf)
            }
        }
        .map_err(|e| self.io(path, "read", e))?;
        self.stats.request();
        self.stats.received(got as u64);
        Ok(())
    }

    fn read_error(&self, path: &str, e: std::io::Error) -> StorageError {
        if e.kind() == std::io::ErrorKind::NotFound {
            StorageError::NotFound {
                url: self.url.clone(),
                path: path.to_string(),
            }
        } else {
            self.io(path, "read", e)
        }
    }

    fn io(&self, path: &str, op: &'static str, e: std::io::Error) -> StorageError {
        let (url, path, detail) = (self.url.clone(), path.to_string(), e.to_string());
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            StorageError::PermissionDenied {
                url,
                path,
                op,
                detail,
            }
        } else {
            StorageError::Other {
                url,
                path,
                op,
                detail,
                // A full disk or an I/O error does not go away by trying again at once.
                temporary: false,
            }
        }
    }
}

/// A file being written under a temporary name; see [`LocalFolder::create`].
/// Dropped without [`LocalFile::commit`], it is removed.
pub struct LocalFile {
    body: Body,
    /// Its path under the repository root, in [`TEMPORARY_DIR`].
    name: String,
    folder: LocalFolder,
    written: u64,
}

enum Body {
    /// Being written through its buffer.
    Open(DirectWriter<AlignedBuf>),
    /// Written whole and its buffer freed ([`LocalFile::close`]), waiting for its commit; its
    /// last part may still be on its way to the disk.
    Closed(File, InFlight),
    /// A write or close failed: the file cannot be committed.
    Broken,
    /// Named and durable; dropping it leaves it in place.
    Committed,
}

impl std::fmt::Debug for LocalFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalFile({})", self.name)
    }
}

impl LocalFile {
    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Appends `data`.
    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let Body::Open(file) = &mut self.body else {
            return Err(self.folder.io(&self.name, "write", not_open()));
        };
        if let Err(e) = file.write_all(data) {
            self.body = Body::Broken;
            return Err(self.folder.io(&self.name, "write", e));
        }
        self.written += data.len() as u64;
        Ok(())
    }

    /// Writes out what the buffer still holds and frees the buffer; nothing can be appended
    /// after. A backup closes each pack as soon as it is full, so the packs waiting for their
    /// `fdatasync` in [`LocalFile::commit`] do not each keep a 1 MiB buffer.
    pub fn close(&mut self) -> Result<()> {
        self.body = match std::mem::replace(&mut self.body, Body::Broken) {
            Body::Open(file) => {
                // The packer does not wait for the disk here: the commit's `fdatasync` does,
                // on the uploader's thread.
                let (file, rest) = file
                    .finish_in_flight()
                    .map_err(|e| self.folder.io(&self.name, "write", e))?;
                Body::Closed(file, rest)
            }
            Body::Closed(file, rest) => Body::Closed(file, rest),
            Body::Broken | Body::Committed => {
                return Err(self.folder.io(&self.name, "write", not_open()));
            }
        };
        Ok(())
    }

    /// Makes the file durable and gives it its name, `path` under the repository root.
    pub fn commit(mut self, path: &str) -> Result<()> {
        self.close()?;
        let Body::Closed(file, rest) = std::mem::replace(&mut self.body, Body::Broken) else {
            unreachable!("close leaves the file closed or fails");
        };
        let root = &self.folder.root;
        let tmp = root.join(&self.name);
        let dest = root.join(path);
        let parent = dest.parent().unwrap_or(root).to_path_buf();
        let r = (|| {
            file.sync_data()?;
            // On the disk now: this only drops the pages from the cache.
            rest.settle(&file)?;
            drop(file);
            std::fs::create_dir_all(&parent)?;
            std::fs::rename(&tmp, &dest)?;
            File::open(&parent)?.sync_all()
        })();
        if let Err(e) = r {
            return Err(self.folder.io(path, "write", e));
        }
        self.body = Body::Committed;
        self.folder.stats.request();
        self.folder.stats.sent(self.written);
        Ok(())
    }
}

/// A write to a file that is closed, or that an earlier failed write left incomplete.
fn not_open() -> std::io::Error {
    std::io::Error::other("the file was closed, or an earlier write to it failed")
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        if !matches!(self.body, Body::Committed) {
            let _ = std::fs::remove_file(self.folder.root.join(&self.name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_names_the_file_and_drop_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(Stats::default());
        let folder = LocalFolder::new(dir.path().to_path_buf(), "file://x".into(), stats.clone());
        let mut f = folder.create().unwrap();
        f.write_all(b"hello ").unwrap();
        f.write_all(b"world").unwrap();
        assert_eq!(f.len(), 11);
        f.commit("data/ab/abcd").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("data/ab/abcd")).unwrap(),
            b"hello world"
        );
        assert_eq!(stats.snapshot().bytes_sent, 11);
        assert_eq!(stats.snapshot().requests, 1);

        let mut g = folder.create().unwrap();
        g.write_all(b"abandoned").unwrap();
        drop(g);
        let mut h = folder.create().unwrap();
        h.write_all(b"closed, abandoned").unwrap();
        h.close().unwrap();
        drop(h);
        assert_eq!(
            std::fs::read_dir(dir.path().join(TEMPORARY_DIR))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn a_closed_file_takes_no_more_and_commits_what_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(Stats::default());
        let folder = LocalFolder::new(dir.path().to_path_buf(), "file://x".into(), stats);
        let mut f = folder.create().unwrap();
        // More than one buffer's worth, and not a whole number of blocks.
        let data: Vec<u8> = (0..PACK_WRITE_BUF + 5000)
            .map(|i| (i % 251) as u8)
            .collect();
        f.write_all(&data).unwrap();
        f.close().unwrap();
        f.close().unwrap();
        let err = f.write_all(b"late").unwrap_err().to_string();
        assert!(err.contains("closed"), "{err}");
        assert_eq!(f.len(), data.len() as u64);
        f.commit("data/cd/cdef").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("data/cd/cdef")).unwrap(),
            data
        );
    }
}
