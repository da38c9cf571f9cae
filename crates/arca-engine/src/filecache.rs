//! The local file cache: lets a file whose size, times and inode have not changed since the last
//! backup reuse that backup's chunk list without being read.
//!
//! It lives on the device (`<config dir>/cache/<repository id>/files`), never in the repository.
//! Layout: `version (1) || postcard(map path -> Entry)`. A missing or unreadable cache is empty.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use arca_format::id::Id;
use serde::{Deserialize, Serialize};

const VERSION: u8 = 1;

/// What identifies an unchanged file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub ctime: i64,
    pub ctime_nsec: i64,
    pub ino: u64,
    pub dev: u64,
}

impl Fingerprint {
    pub fn of(m: &std::fs::Metadata) -> Self {
        Fingerprint {
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec(),
            ino: m.ino(),
            dev: m.dev(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub file: Fingerprint,
    /// For a SQLite database: the fingerprint of its `-wal` file, whose changes do not show in
    /// the database file's own times.
    pub wal: Option<Fingerprint>,
    /// Whether the file was captured as a consistent SQLite copy (its sidecars are skipped).
    pub sqlite: bool,
    pub size: u64,
    pub chunks: Vec<Id>,
}

#[derive(Debug, Default)]
pub struct FileCache {
    path: Option<PathBuf>,
    entries: HashMap<Vec<u8>, Entry>,
}

impl FileCache {
    /// Loads the cache at `path`; anything unreadable gives an empty cache.
    pub fn load(path: Option<&Path>) -> Self {
        let Some(path) = path else {
            return FileCache::default();
        };
        let entries = std::fs::read(path)
            .ok()
            .and_then(|b| {
                if b.first() == Some(&VERSION) {
                    postcard::from_bytes(&b[1..]).ok()
                } else {
                    None
                }
            })
            .unwrap_or_default();
        FileCache {
            path: Some(path.to_path_buf()),
            entries,
        }
    }

    pub fn empty_like(&self) -> Self {
        FileCache {
            path: self.path.clone(),
            entries: HashMap::new(),
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn insert(&mut self, key: Vec<u8>, entry: Entry) {
        self.entries.insert(key, entry);
    }

    /// Writes the cache atomically (temp file, then rename).
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut bytes = vec![VERSION];
        bytes
            .extend_from_slice(&postcard::to_stdvec(&self.entries).map_err(std::io::Error::other)?);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    }
}
