//! A repository opened with its key: reading and writing its stored objects.

use arca_crypto::{BackupKey, DerivedKeys};
use arca_format::blob::{BlobKind, open_blob_in_place};
use arca_format::chunker::Cdc;
use arca_format::chunker::ChunkerParams;
use arca_format::config::{ConfigError, DEFAULT_PACK_SIZE, RepoConfig};
use arca_format::id::Id;
use arca_format::index::IndexFile;
use arca_format::object::{ObjectKind, open_object_owned, seal_object};
use arca_format::snapshot::Snapshot;
use arca_format::tree::Tree;
use arca_storage::{RangeBuf, Storage};
use rand_core::{OsRng, RngCore};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use crate::index::{BulkLoad, MasterIndex};
use crate::spill::Spill;
use crate::{EngineError, Result};

pub const CONFIG: &str = "config";
pub const DATA: &str = "data";
pub const INDEX: &str = "index";
pub const SNAPSHOTS: &str = "snapshots";

/// A snapshot with its id.
#[derive(Clone, Debug)]
pub struct SnapshotInfo {
    pub id: Id,
    pub snapshot: Snapshot,
}

/// An open repository.
pub struct Repository {
    storage: Storage,
    config: RepoConfig,
    keys: DerivedKeys,
    cdc: Cdc,
    /// Where and past how many blobs a loaded index moves to this device's disk.
    spill: Spill,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({})", self.storage.url())
    }
}

pub fn pack_path(id: &Id) -> String {
    let hex = id.to_hex();
    format!("{DATA}/{}/{hex}", &hex[..2])
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Repository {
    /// Creates a new repository; refuses if one exists there.
    pub fn init(storage: Storage, key: &BackupKey) -> Result<Self> {
        Self::init_with(storage, key, ChunkerParams::default(), DEFAULT_PACK_SIZE)
    }

    /// Creates a repository with chosen chunk and pack sizes (for measurements; the defaults
    /// are chosen by them).
    pub fn init_with(
        storage: Storage,
        key: &BackupKey,
        chunker: ChunkerParams,
        pack_size: u32,
    ) -> Result<Self> {
        chunker.validate().map_err(EngineError::Invalid)?;
        if !(1 << 20..=256 << 20).contains(&pack_size) {
            return Err(EngineError::Invalid(format!(
                "pack size {pack_size} is outside 1 MiB..256 MiB"
            )));
        }
        if storage.size(CONFIG)?.is_some() {
            return Err(EngineError::AlreadyExists(storage.url().to_string()));
        }
        let mut repo_id = [0u8; 16];
        OsRng.fill_bytes(&mut repo_id);
        let derived = key.derived();
        let config = RepoConfig::with_params(&derived, repo_id, now(), chunker, pack_size);
        storage.write(CONFIG, config.to_bytes())?;
        Self::open(storage, key)
    }

    /// Reads the config without a key (to tell "no repository" from "wrong key").
    /// A config that does not read back whole is read again (see [`reread_on_damage`]).
    pub fn read_config(storage: &Storage) -> Result<RepoConfig> {
        reread_on_damage(|| {
            let bytes = match storage.read(CONFIG) {
                Ok(b) => b,
                Err(e) if e.is_not_found() => {
                    return Err(EngineError::NoRepository(storage.url().to_string()));
                }
                Err(e) => return Err(e.into()),
            };
            RepoConfig::from_bytes(&bytes).map_err(|e| match e {
                ConfigError::WrongKey => EngineError::WrongKey,
                other => EngineError::damaged("the repository config (file `config`)", other),
            })
        })
    }

    /// Opens a repository with K; a wrong key is reported as such, not as damage.
    pub fn open(storage: Storage, key: &BackupKey) -> Result<Self> {
        let config = Self::read_config(&storage)?;
        let keys = config.check_key(key).map_err(|_| EngineError::WrongKey)?;
        let cdc = Cdc::new(keys.chunker.expose(), config.chunker);
        Ok(Repository {
            storage,
            config,
            keys,
            cdc,
            spill: Spill::default(),
        })
    }

    /// Where, and past how many blobs, an index this repository loads moves to this device's
    /// disk (by default: the system's temporary folder, past 16 Ki blobs).
    pub fn set_index_spill(&mut self, spill: Spill) {
        self.spill = spill;
    }

    pub fn index_spill(&self) -> &Spill {
        &self.spill
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }
    pub fn keys(&self) -> &DerivedKeys {
        &self.keys
    }
    pub fn cdc(&self) -> &Cdc {
        &self.cdc
    }
    pub fn id_hex(&self) -> String {
        hex::encode(self.config.repo_id)
    }

    /// Reads a file named by the hash of its bytes and checks the name.
    pub(crate) fn read_named(&self, path: &str, id: &Id) -> Result<Vec<u8>> {
        let bytes = match self.storage.read(path) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                return Err(EngineError::damaged(path, "it is missing"));
            }
            Err(e) => return Err(e.into()),
        };
        if Id::of_stored(&bytes) != *id {
            return Err(EngineError::damaged(
                path,
                "its content does not match its name (altered, truncated or replaced)",
            ));
        }
        Ok(bytes)
    }

    pub(crate) fn write_named(&self, dir: &str, bytes: Vec<u8>) -> Result<Id> {
        let id = Id::of_stored(&bytes);
        self.storage
            .write(&format!("{dir}/{}", id.to_hex()), bytes)?;
        Ok(id)
    }

    /// Ids of the files under `dir` (named by their hashes); other names are skipped.
    pub(crate) fn list_ids(&self, dir: &str) -> Result<Vec<(Id, u64)>> {
        let mut out = Vec::new();
        for f in self.storage.list(dir)? {
            let name = f.path.rsplit('/').next().unwrap_or("");
            match Id::from_hex(name) {
                Some(id) => out.push((id, f.size)),
                None => tracing::warn!(path = %f.path, "ignoring a file that arca did not write"),
            }
        }
        Ok(out)
    }

    pub fn load_snapshot(&self, id: &Id) -> Result<Snapshot> {
        let path = format!("{SNAPSHOTS}/{}", id.to_hex());
        reread_on_damage(|| {
            let bytes = self.read_named(&path, id)?;
            open_object_owned(&self.keys, ObjectKind::Snapshot, bytes)
                .map_err(|e| EngineError::damaged(format!("snapshot {}", id.short()), e))
        })
    }

    /// Applies `f` to every item, with as many running at once as the storage takes downloads;
    /// results keep the items' order, and the first error stops the rest.
    pub(crate) fn fetch_all<I: Sync, T: Send>(
        &self,
        items: &[I],
        f: impl Fn(&I) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let threads = self
            .storage
            .transfers()
            .downloads
            .clamp(1, items.len().max(1));
        if threads == 1 {
            return items.iter().map(&f).collect();
        }
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Vec<Mutex<Option<Result<T>>>> =
            items.iter().map(|_| Mutex::new(None)).collect();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    while !failed.load(Relaxed) {
                        let i = next.fetch_add(1, Relaxed);
                        let Some(item) = items.get(i) else { break };
                        let r = f(item);
                        if r.is_err() {
                            failed.store(true, Relaxed);
                        }
                        *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                    }
                });
            }
        });
        let mut out = Vec::with_capacity(items.len());
        for r in results {
            match r.into_inner().unwrap_or_else(|p| p.into_inner()) {
                Some(Ok(v)) => out.push(v),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        Ok(out)
    }

    /// Every snapshot, oldest first (by sequence number, then time).
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let ids = self.list_ids(SNAPSHOTS)?;
        let mut out = self.fetch_all(&ids, |(id, _)| {
            Ok(SnapshotInfo {
                id: *id,
                snapshot: self.load_snapshot(id)?,
            })
        })?;
        out.sort_by_key(|s| (s.snapshot.seq, s.snapshot.time, s.snapshot.time_nsec));
        Ok(out)
    }

    /// `latest`, or a unique prefix of a snapshot id.
    pub fn find_snapshot(&self, which: &str) -> Result<SnapshotInfo> {
        let all = self.snapshots()?;
        if which == "latest" {
            return all
                .into_iter()
                .last()
                .ok_or_else(|| EngineError::NotFound("the repository has no backups yet".into()));
        }
        let which = which.to_ascii_lowercase();
        let found: Vec<_> = all
            .into_iter()
            .filter(|s| s.id.to_hex().starts_with(&which))
            .collect();
        match found.len() {
            1 => Ok(found.into_iter().next().expect("one")),
            0 => Err(EngineError::NotFound(format!(
                "no backup has an id starting with {which}; `arca snapshots` lists them"
            ))),
            n => Err(EngineError::NotFound(format!(
                "{n} backups have ids starting with {which}; give more digits"
            ))),
        }
    }

    pub fn write_snapshot(&self, snapshot: &Snapshot) -> Result<Id> {
        self.write_named(
            SNAPSHOTS,
            seal_object(&self.keys, ObjectKind::Snapshot, snapshot),
        )
    }

    pub(crate) fn load_index_file(&self, id: &Id) -> Result<IndexFile> {
        let path = format!("{INDEX}/{}", id.to_hex());
        self.open_index_file(&path, id, self.read_named(&path, id))
    }

    /// Opens index file `id` from `first`, a read of it already made; damage found in it (or
    /// in the opening) is read again, as [`reread_on_damage`] does.
    fn open_index_file(&self, path: &str, id: &Id, first: Result<Vec<u8>>) -> Result<IndexFile> {
        let mut first = Some(first);
        reread_on_damage(|| {
            let bytes = match first.take() {
                Some(read) => read?,
                None => self.read_named(path, id)?,
            };
            open_object_owned(&self.keys, ObjectKind::Index, bytes)
                .map_err(|e| EngineError::damaged(path, e))
        })
    }

    /// The union of all index files. The files are downloaded in parallel, but opened
    /// (decrypted, decompressed, decoded) and merged one at a time, so memory holds the index,
    /// the sealed files being downloaded and one open file: at most one decoder and one decoded
    /// file however many files there are. Four decoded at once made a no-change backup's peak
    /// grow with the repository (16.7 -> 19.2 MiB from 2 to 8.5 GiB; 15.3 -> 15.6 MiB with
    /// one download). Of a blob that several packs hold, the pack merged first is kept: any of
    /// them serves.
    pub fn load_index(&self) -> Result<MasterIndex> {
        let ids = self.list_ids(INDEX)?;
        let bulk = Mutex::new(BulkLoad::new(&self.spill));
        self.fetch_all(&ids, |(id, _)| {
            let path = format!("{INDEX}/{}", id.to_hex());
            let read = self.read_named(&path, id);
            let mut bulk = bulk.lock().unwrap_or_else(|p| p.into_inner());
            bulk.add_file(self.open_index_file(&path, id, read)?)
        })?;
        bulk.into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .finish()
    }

    pub(crate) fn write_index(&self, file: &IndexFile) -> Result<Id> {
        self.write_named(INDEX, seal_object(&self.keys, ObjectKind::Index, file))
    }

    /// Reads, authenticates and verifies one blob.
    pub fn read_blob(&self, index: &MasterIndex, id: &Id, kind: BlobKind) -> Result<Vec<u8>> {
        let loc = index.get(id)?.ok_or_else(|| {
            EngineError::damaged(
                format!("blob {}", id.short()),
                "it is not in any index (an index file is missing or damaged)",
            )
        })?;
        if loc.kind != kind {
            return Err(EngineError::damaged(
                format!("blob {}", id.short()),
                "the index lists it with the wrong kind",
            ));
        }
        let (pack, _) = index.pack(&loc);
        let path = pack_path(&pack);
        reread_on_damage(|| {
            let mut sealed = self.read_pack_range(&pack, loc.offset as u64, loc.length as u64)?;
            open_blob_in_place(&self.keys, kind, id, &mut sealed, loc.raw_length as usize)
                .map(|p| p.into_vec(sealed))
                .map_err(|e| EngineError::damaged(format!("{path} (blob {})", id.short()), e))
        })
    }

    /// Reads `len` bytes at `offset` of a pack; a missing or short pack is damage, named.
    pub(crate) fn read_pack_range(&self, pack: &Id, offset: u64, len: u64) -> Result<Vec<u8>> {
        let mut buf = RangeBuf::new();
        self.read_pack_range_into(pack, offset, len, &mut buf)?;
        Ok(buf.into_vec())
    }

    /// [`Repository::read_pack_range`] into a buffer the caller reuses.
    pub(crate) fn read_pack_range_into(
        &self,
        pack: &Id,
        offset: u64,
        len: u64,
        buf: &mut RangeBuf,
    ) -> Result<()> {
        let path = pack_path(pack);
        self.storage
            .read_range_into(&path, offset, len, buf)
            .map_err(|e| match e {
                arca_storage::StorageError::NotFound { .. } => {
                    EngineError::damaged(&path, "it is missing")
                }
                arca_storage::StorageError::ShortRead { .. } => {
                    EngineError::damaged(&path, "it is truncated")
                }
                other => other.into(),
            })
    }

    pub fn read_tree(&self, index: &MasterIndex, id: &Id) -> Result<Tree> {
        let bytes = self.read_blob(index, id, BlobKind::Tree)?;
        let tree: Tree = arca_format::decode(&bytes)
            .map_err(|e| EngineError::damaged(format!("tree {}", id.short()), e))?;
        tree.validate()
            .map_err(|e| EngineError::damaged(format!("tree {}", id.short()), e))?;
        Ok(tree)
    }

    /// Reads one chunk list of a long file (a blob of kind Tree).
    pub fn read_chunk_list(
        &self,
        index: &MasterIndex,
        id: &Id,
    ) -> Result<arca_format::tree::ChunkList> {
        let bytes = self.read_blob(index, id, BlobKind::Tree)?;
        crate::chunks::decode_list(id, &bytes)
    }
}

/// Runs `attempt` (a read and the authentication of what it read) again when it finds damage,
/// up to [`READ_ATTEMPTS`] times in all. Bytes can be corrupted on their way from sound storage
/// (a faulty proxy, network card or RAM): such an answer fails authentication and is never used;
/// only damage found every time is reported as damage. A config that says the key is wrong is
/// confirmed the same way.
pub(crate) fn reread_on_damage<T>(attempt: impl FnMut() -> Result<T>) -> Result<T> {
    reread_while(attempt, |r| match r {
        Err(e) if e.is_damage() || matches!(e, EngineError::WrongKey) => Some(e.to_string()),
        _ => None,
    })
}

/// The mechanism behind [`reread_on_damage`], for attempts whose damage is not an error:
/// `damage` names what is wrong with a result, and while it does, `attempt` runs again.
pub(crate) fn reread_while<T>(
    mut attempt: impl FnMut() -> T,
    damage: impl Fn(&T) -> Option<String>,
) -> T {
    let mut tries = 1;
    loop {
        let r = attempt();
        match damage(&r) {
            Some(what) if tries < READ_ATTEMPTS => {
                tracing::warn!("{what}; reading it again in case it was damaged on the way");
                tries += 1;
            }
            _ => return r,
        }
    }
}

/// How many times an object that fails authentication is read before it is called damaged.
pub const READ_ATTEMPTS: u32 = 3;
