//! Files streamed straight into a repository in a local folder.
//!
//! OpenDAL's folder service takes a whole object in memory and passes it through Tokio's file
//! type, which copies it again in 2 MiB pieces on its blocking pool. For the largest objects a
//! backup writes (packs of several MiB), a backup to a local folder can instead write each piece
//! to a temporary file as it is produced, so no pack is ever held whole in memory: the kernel's
//! page cache is the buffer. This is the one place arca writes repository files without OpenDAL,
//! and it keeps OpenDAL's guarantees for the folder service: a file appears whole under its name
//! or not at all (temporary file in `.tmp/`, `fdatasync`, rename), and it adds the parent folder's
//! fsync so the rename itself is durable before anything that refers to the file is written.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::stats::Stats;
use crate::{Result, StorageError};

/// A file being written under a temporary name; see [`crate::Storage::create_local`].
/// Dropped without [`LocalFile::commit`], it is removed.
pub struct LocalFile {
    file: Option<BufWriter<File>>,
    tmp: PathBuf,
    root: PathBuf,
    url: String,
    written: u64,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for LocalFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalFile({})", self.tmp.display())
    }
}

impl LocalFile {
    pub(crate) fn create(root: &Path, url: String, stats: Arc<Stats>) -> Result<Self> {
        let dir = root.join(".tmp");
        std::fs::create_dir_all(&dir).map_err(|e| io(&url, ".tmp", "create", e))?;
        let tmp = dir.join(format!("stream-{}", crate::rand_suffix()));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io(&url, ".tmp", "create", e))?;
        Ok(LocalFile {
            // Small blobs (SQLite pages) are gathered into larger writes.
            file: Some(BufWriter::with_capacity(256 * 1024, file)),
            tmp,
            root: root.to_path_buf(),
            url,
            written: 0,
            stats,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Appends `data`.
    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let file = self
            .file
            .as_mut()
            .expect("a LocalFile is open until commit");
        file.write_all(data)
            .map_err(|e| io(&self.url, ".tmp", "write", e))?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Makes the file durable and gives it its name, `path` under the repository root.
    pub fn commit(mut self, path: &str) -> Result<()> {
        let file = self.file.take().expect("a LocalFile is open until commit");
        let dest = self.root.join(path);
        let parent = dest.parent().unwrap_or(&self.root).to_path_buf();
        let r = (|| {
            let file = file.into_inner().map_err(|e| e.into_error())?;
            file.sync_data()?;
            drop(file);
            std::fs::create_dir_all(&parent)?;
            std::fs::rename(&self.tmp, &dest)?;
            File::open(&parent)?.sync_all()
        })();
        if let Err(e) = r {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(io(&self.url, path, "write", e));
        }
        self.stats.request();
        self.stats.sent(self.written);
        Ok(())
    }
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Reads the whole file `path` under `root`.
pub(crate) fn read_whole(
    root: &Path,
    url: &crate::StorageUrl,
    stats: &Stats,
    path: &str,
) -> Result<Vec<u8>> {
    let v = std::fs::read(root.join(path)).map_err(|e| read_error(url, path, e))?;
    stats.request();
    stats.received(v.len() as u64);
    Ok(v)
}

fn read_error(url: &crate::StorageUrl, path: &str, e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound {
            url: url.to_string(),
            path: path.to_string(),
        }
    } else {
        io(&url.to_string(), path, "read", e)
    }
}

/// Reads `len` bytes at `offset` of `path` under `root` (fewer if the file ends first), with one
/// `pread` into the returned buffer instead of OpenDAL's copies through Tokio's blocking pool.
pub(crate) fn read_range(
    root: &Path,
    url: &crate::StorageUrl,
    stats: &Stats,
    path: &str,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = File::open(root.join(path)).map_err(|e| read_error(url, path, e))?;
    let mut buf = vec![0u8; len as usize];
    let mut got = 0usize;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(&url.to_string(), path, "read", e)),
        }
    }
    buf.truncate(got);
    stats.request();
    stats.received(got as u64);
    Ok(buf)
}

fn io(url: &str, path: &str, op: &'static str, e: std::io::Error) -> StorageError {
    let detail = e.to_string();
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        StorageError::PermissionDenied {
            url: url.to_string(),
            path: path.to_string(),
            op,
            detail,
        }
    } else {
        StorageError::Other {
            url: url.to_string(),
            path: path.to_string(),
            op,
            detail,
            // A full disk or an I/O error does not go away by trying again at once.
            temporary: false,
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
        let mut f = LocalFile::create(dir.path(), "file://x".into(), stats.clone()).unwrap();
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

        let mut g = LocalFile::create(dir.path(), "file://x".into(), stats).unwrap();
        g.write_all(b"abandoned").unwrap();
        drop(g);
        assert_eq!(
            std::fs::read_dir(dir.path().join(".tmp")).unwrap().count(),
            0
        );
    }
}
