//! The local file cache: lets a file whose size, times and inode have not changed since the last
//! backup reuse that backup's chunk list without being read.
//!
//! It lives on the device (`<config dir>/cache/<repository id>/files`), never in the repository.
//! Layout: `version (1)`, then one record per file in the order the backup walks them (see
//! [`walk_order`]): `length (u32 LE) || postcard((path bytes, Entry))`. A missing or unreadable
//! cache is empty; a damaged record ends it.
//!
//! The cache is never held whole in memory: a backup visits paths in walk order, so it reads the
//! previous cache as a merge (one record at a time, skipping the paths that are gone) and writes
//! the new one record by record, making the memory a backup needs independent of how many
//! files it has.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::chunks::FileChunks;

/// 3: records in walk order instead of one map; 2: `chunks` became `FileChunks` (a long file's
/// chunk lists). A cache of another version is ignored, so the first backup after an upgrade
/// reads every file once.
const VERSION: u8 = 3;

/// A record longer than this is damage, not a file's entry.
const MAX_RECORD: usize = 64 << 20;

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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub file: Fingerprint,
    /// For a SQLite database: the fingerprint of its `-wal` file, whose changes do not show in
    /// the database file's own times.
    pub wal: Option<Fingerprint>,
    /// Whether the file was captured as a consistent SQLite copy (its sidecars are skipped).
    pub sqlite: bool,
    pub size: u64,
    pub chunks: FileChunks,
}

/// The order in which a backup visits paths: component by component, each compared as bytes. A
/// directory's entries come right after it and before its next sibling (`a/z` < `a.txt`), as a
/// depth-first walk that sorts each directory's names by bytes visits them.
pub fn walk_order(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// The previous backup's cache, read forward as the walk asks for paths in walk order.
#[derive(Default)]
pub struct CacheReader {
    file: Option<BufReader<File>>,
    /// The next record read but not yet asked for.
    ahead: Option<(Vec<u8>, Entry)>,
}

impl CacheReader {
    /// Opens the cache at `path`; a missing cache, or one of another version, is empty.
    pub fn open(path: Option<&Path>) -> Self {
        let file = path.and_then(|p| File::open(p).ok()).and_then(|f| {
            let mut r = BufReader::with_capacity(64 << 10, f);
            let mut v = [0u8; 1];
            (r.read_exact(&mut v).is_ok() && v[0] == VERSION).then_some(r)
        });
        CacheReader { file, ahead: None }
    }

    fn read_record(&mut self) -> Option<(Vec<u8>, Entry)> {
        let r = self.file.as_mut()?;
        let record = (|| {
            let mut len = [0u8; 4];
            r.read_exact(&mut len).ok()?;
            let len = u32::from_le_bytes(len) as usize;
            if len > MAX_RECORD {
                return None;
            }
            let mut bytes = vec![0u8; len];
            r.read_exact(&mut bytes).ok()?;
            let (key, entry): (serde_bytes::ByteBuf, Entry) = postcard::from_bytes(&bytes).ok()?;
            Some((key.into_vec(), entry))
        })();
        if record.is_none() {
            // The end, or damage: nothing after it is trusted.
            self.file = None;
        }
        record
    }

    /// The entry of `key`. Keys must be asked for in walk order: records before `key` are
    /// passed over for good, and a key asked for out of order is simply not found.
    pub fn get(&mut self, key: &[u8]) -> Option<Entry> {
        loop {
            let (k, _) = match &self.ahead {
                Some(a) => a,
                None => {
                    self.ahead = Some(self.read_record()?);
                    continue;
                }
            };
            match walk_order(k, key) {
                Ordering::Less => self.ahead = None,
                Ordering::Equal => return self.ahead.take().map(|(_, e)| e),
                Ordering::Greater => return None,
            }
        }
    }
}

/// The cache this backup writes, record by record, to a temporary file that replaces the
/// previous cache only when the backup has finished.
pub struct CacheWriter {
    path: Option<PathBuf>,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    error: Option<std::io::Error>,
}

impl CacheWriter {
    /// Starts a cache to be saved at `path` (none: nothing is written). A cache that cannot be
    /// written only costs the next backup a full read; the error is given by [`Self::finish`].
    pub fn create(path: Option<&Path>) -> Self {
        let mut w = CacheWriter {
            path: path.map(Path::to_path_buf),
            tmp: PathBuf::new(),
            out: None,
            error: None,
        };
        let Some(path) = path else {
            return w;
        };
        // Unique per process: two backups of one repository on one device do not mix records.
        w.tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        let opened = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| File::create(&w.tmp))
            .and_then(|f| {
                let mut out = BufWriter::with_capacity(64 << 10, f);
                out.write_all(&[VERSION])?;
                Ok(out)
            });
        match opened {
            Ok(out) => w.out = Some(out),
            Err(e) => w.error = Some(e),
        }
        w
    }

    /// Appends the entry of `key`; keys must come in walk order.
    pub fn insert(&mut self, key: &[u8], entry: &Entry) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let written = postcard::to_stdvec(&(serde_bytes::Bytes::new(key), entry))
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                out.write_all(&(bytes.len() as u32).to_le_bytes())?;
                out.write_all(&bytes)
            });
        if let Err(e) = written {
            self.out = None;
            self.error = Some(e);
        }
    }

    /// Puts the new cache in place of the previous one (atomically: written, then renamed).
    pub fn finish(mut self) -> std::io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let (Some(path), Some(out)) = (self.path.take(), self.out.take()) else {
            return Ok(());
        };
        out.into_inner().map_err(|e| e.into_error())?;
        std::fs::rename(&self.tmp, path)
    }
}

impl Drop for CacheWriter {
    /// An unfinished cache (a failed backup) is thrown away.
    fn drop(&mut self) {
        if self.path.is_some() && !self.tmp.as_os_str().is_empty() {
            self.out = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_format::id::Id;

    fn entry(n: u8) -> Entry {
        Entry {
            file: Fingerprint {
                size: n as u64,
                mtime: 1,
                mtime_nsec: 2,
                ctime: 3,
                ctime_nsec: 4,
                ino: 5,
                dev: 6,
            },
            wal: None,
            sqlite: false,
            size: n as u64,
            chunks: FileChunks::Inline(vec![Id([n; 32])]),
        }
    }

    #[test]
    fn walk_order_is_depth_first_by_name() {
        let mut paths: Vec<&[u8]> = vec![b"/a.txt", b"/a/z", b"/a/b/c", b"/b", b"/a", b"/a-"];
        paths.sort_by(|a, b| walk_order(a, b));
        let want: Vec<&[u8]> = vec![b"/a", b"/a/b/c", b"/a/z", b"/a-", b"/a.txt", b"/b"];
        assert_eq!(paths, want);
        // The same order `Path`'s own comparison gives, which sorts the backup's roots.
        let mut as_paths: Vec<&Path> = paths
            .iter()
            .map(|p| Path::new(std::str::from_utf8(p).unwrap()))
            .collect();
        as_paths.sort();
        let back: Vec<&[u8]> = as_paths
            .iter()
            .map(|p| p.as_os_str().as_encoded_bytes())
            .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn a_cache_is_read_back_as_a_merge_in_walk_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/files");
        let mut w = CacheWriter::create(Some(&path));
        for (k, n) in [(&b"/a"[..], 1), (b"/a/b", 2), (b"/a.txt", 3), (b"/c", 4)] {
            w.insert(k, &entry(n));
        }
        w.finish().unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["files"], "the temporary file was not renamed");

        let mut r = CacheReader::open(Some(&path));
        assert_eq!(r.get(b"/a"), Some(entry(1)));
        // "/a/b" is gone from this backup: skipped; a path new since then is not found.
        assert_eq!(r.get(b"/a/new"), None);
        assert_eq!(r.get(b"/a.txt"), Some(entry(3)));
        // Asked out of order: not found, and the merge goes on.
        assert_eq!(r.get(b"/a"), None);
        assert_eq!(r.get(b"/c"), Some(entry(4)));
        assert_eq!(r.get(b"/d"), None);
    }

    #[test]
    fn damage_ends_the_cache_and_an_unfinished_cache_is_thrown_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("files");
        let mut w = CacheWriter::create(Some(&path));
        w.insert(b"/a", &entry(1));
        w.insert(b"/b", &entry(2));
        w.finish().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        // The second record's length says more than there is.
        let first = 1 + 4 + u32::from_le_bytes(bytes[1..5].try_into().unwrap()) as usize;
        bytes[first..first + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let mut r = CacheReader::open(Some(&path));
        assert_eq!(r.get(b"/a"), Some(entry(1)));
        assert_eq!(r.get(b"/b"), None);

        // Another version: empty.
        bytes[0] = VERSION + 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(CacheReader::open(Some(&path)).get(b"/a"), None);

        // A backup that fails leaves the previous cache and no temporary file.
        let before = std::fs::read(&path).unwrap();
        let mut w = CacheWriter::create(Some(&path));
        w.insert(b"/z", &entry(9));
        drop(w);
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_cache_that_cannot_be_written_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let mut w = CacheWriter::create(Some(&blocker.join("files")));
        w.insert(b"/a", &entry(1));
        assert!(w.finish().is_err());
        assert!(CacheWriter::create(None).finish().is_ok());
        assert_eq!(CacheReader::open(None).get(b"/a"), None);
    }
}
