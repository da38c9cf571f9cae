//! Where a repository's files live: one [`Storage`] type over Apache OpenDAL, reached by URL.
//!
//! The engine runs on plain threads; `Storage` gives them a blocking API and drives OpenDAL's
//! async operators on its own Tokio runtime. Several threads may call it at once: that is how
//! several transfers are kept in flight.

mod error;
mod stats;
mod url;

use std::sync::Arc;

use opendal::Operator;

pub use error::StorageError;
pub use stats::{Stats, StatsSnapshot};
pub use url::StorageUrl;

/// One listed file: its path relative to the repository root and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub path: String,
    pub size: u64,
}

/// A repository's storage.
#[derive(Clone)]
pub struct Storage {
    op: Operator,
    rt: Arc<tokio::runtime::Runtime>,
    url: StorageUrl,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.url)
    }
}

type Result<T> = std::result::Result<T, StorageError>;

impl Storage {
    /// Opens the storage a URL names (`file:///path`, a plain path, or `memory://`).
    pub fn open(url: &str) -> Result<Self> {
        let url = StorageUrl::parse(url)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("arca-io")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Setup(format!("cannot start the I/O runtime: {e}")))?;
        let op = url.operator()?;
        Ok(Storage {
            op,
            rt: Arc::new(rt),
            url,
            stats: Arc::new(Stats::default()),
        })
    }

    pub fn url(&self) -> &StorageUrl {
        &self.url
    }

    /// Bytes and requests moved so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    fn err(&self, path: &str, op: &'static str, e: opendal::Error) -> StorageError {
        StorageError::from_opendal(&self.url, path, op, e)
    }

    /// Reads a whole file.
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        let buf = self
            .rt
            .block_on(self.op.read(path))
            .map_err(|e| self.err(path, "read", e))?;
        let v = buf.to_vec();
        self.stats.received(v.len());
        Ok(v)
    }

    /// Reads `len` bytes at `offset`; fewer bytes than asked is an error.
    pub fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let buf = self
            .rt
            .block_on(async { self.op.read_with(path).range(offset..offset + len).await })
            .map_err(|e| match e.kind() {
                // A range past the end of the file: the file is shorter than the caller knows
                // it to be, which is damage to report as such, not a storage failure.
                opendal::ErrorKind::RangeNotSatisfied => StorageError::ShortRead {
                    path: path.to_string(),
                    wanted: len,
                    got: 0,
                },
                _ => self.err(path, "read", e),
            })?;
        let v = buf.to_vec();
        self.stats.received(v.len());
        if v.len() as u64 != len {
            return Err(StorageError::ShortRead {
                path: path.to_string(),
                wanted: len,
                got: v.len() as u64,
            });
        }
        Ok(v)
    }

    /// Writes a whole file; on the local filesystem it appears atomically (temp file, fsync,
    /// rename), so a crash never leaves a partial file under the real name.
    pub fn write(&self, path: &str, data: Vec<u8>) -> Result<()> {
        let n = data.len();
        self.rt
            .block_on(self.op.write(path, data))
            .map_err(|e| self.err(path, "write", e))?;
        self.stats.sent(n);
        Ok(())
    }

    /// Size of a file, or `None` if it does not exist.
    pub fn size(&self, path: &str) -> Result<Option<u64>> {
        self.stats.request();
        match self.rt.block_on(self.op.stat(path)) {
            Ok(m) => Ok(Some(m.content_length())),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(path, "stat", e)),
        }
    }

    /// Every file under `dir` (recursively), sorted by path.
    pub fn list(&self, dir: &str) -> Result<Vec<Listed>> {
        self.stats.request();
        let dir = if dir.ends_with('/') {
            dir.to_string()
        } else {
            format!("{dir}/")
        };
        let entries = match self
            .rt
            .block_on(async { self.op.list_with(&dir).recursive(true).await })
        {
            Ok(e) => e,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(&dir, "list", e)),
        };
        let mut out = Vec::new();
        for e in entries {
            if e.metadata().is_dir() {
                continue;
            }
            let mut size = e.metadata().content_length();
            if size == 0 {
                // Some services do not return sizes in listings.
                size = self.size(e.path())?.unwrap_or(0);
            }
            out.push(Listed {
                path: e.path().to_string(),
                size,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    pub fn delete(&self, path: &str) -> Result<()> {
        self.stats.request();
        self.rt
            .block_on(self.op.delete(path))
            .map_err(|e| self.err(path, "delete", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(s: &Storage) {
        assert!(s.list("data").unwrap().is_empty());
        s.write("data/ab/abc", b"hello world".to_vec()).unwrap();
        s.write("index/1", vec![1; 10]).unwrap();
        assert_eq!(s.read("data/ab/abc").unwrap(), b"hello world");
        assert_eq!(s.read_range("data/ab/abc", 6, 5).unwrap(), b"world");
        for (offset, len) in [(6, 50), (11, 1), (20, 5)] {
            assert!(matches!(
                s.read_range("data/ab/abc", offset, len),
                Err(StorageError::ShortRead { .. })
            ));
        }
        assert_eq!(s.size("data/ab/abc").unwrap(), Some(11));
        assert_eq!(s.size("data/ab/none").unwrap(), None);
        let l = s.list("data").unwrap();
        assert_eq!(
            l,
            vec![Listed {
                path: "data/ab/abc".into(),
                size: 11
            }]
        );
        assert!(matches!(s.read("nope"), Err(StorageError::NotFound { .. })));
        s.delete("data/ab/abc").unwrap();
        assert!(s.list("data").unwrap().is_empty());
        let st = s.stats();
        assert!(st.bytes_sent >= 21 && st.bytes_received >= 16 && st.requests >= 8);
    }

    #[test]
    fn memory_backend() {
        exercise(&Storage::open("memory://").unwrap());
    }

    #[test]
    fn local_folder_backend() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(&format!("file://{}", dir.path().display())).unwrap();
        exercise(&s);
        // no temp files are left behind under the real names
        s.write("snapshots/x", vec![5; 100]).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("snapshots/x")).unwrap(),
            vec![5; 100]
        );
    }
}
