//! Backup as a pipeline of threads joined by bounded channels:
//!
//! ```text
//! walker (this thread): walk -> file cache -> read -> cut -> keyed hash -> dedup
//!   -> workers (N):      compress -> seal
//!   -> packer:           fill data and tree packs, pad, seal headers
//!   -> uploaders (M):    write packs
//!   -> indexer:          write an index file every few packs
//! ```
//! then the snapshot. Memory is bounded by the channel capacities times the chunk and pack sizes,
//! not by the amount of data. Objects are written before anything refers to them: a pack before
//! the index naming it, every index before the snapshot. A crash leaves at worst unreferenced
//! packs, and indexed packs are reused by the next run instead of uploaded again.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arca_crypto::TAG_LEN;
use arca_format::blob::{BlobKind, SEAL_ROOM, Sealer};
use arca_format::chunker::{CutState, sqlite_chunk_len, sqlite_page_size};
use arca_format::id::Id;
use arca_format::index::{IndexFile, IndexPack};
use arca_format::magic::is_compressed_format;
use arca_format::pack::{BlobEntry, PackBuilder, PackLayout};
use arca_format::snapshot::{Snapshot, Summary};
use arca_format::tree::{Content, Node, Tree};
use arca_storage::LocalFile;
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use rustix::fs::FileType;

use crate::chunks::{ChunksBuilder, FileChunks};
use crate::filecache::{self, CacheReader, CacheWriter, Fingerprint};
use crate::index::MasterIndex;
use crate::pool::{Budget, BufPool};
use crate::progress::Counters;
use crate::repo::{Repository, pack_path};
use crate::sent::Sent;
use crate::sqlite::{SIDECARS, consistent_copy, read_lock};
use crate::stat::{Stat, fstat, list, lstat_at, open_at, open_dir_at, open_dir_beneath};
use crate::streamhash::StreamHash;
use crate::{EngineError, Result};

/// How to run a backup.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    pub paths: Vec<PathBuf>,
    pub host: String,
    /// This device's cache folder for this repository (file cache, temporary copies).
    pub cache_dir: Option<PathBuf>,
    /// Paths never backed up (the repository itself, arca's own state).
    pub exclude: Vec<PathBuf>,
    /// Threads that compress and seal.
    pub workers: usize,
    /// Packs uploaded at once.
    pub uploads: usize,
    pub compression_level: i32,
    /// The lowest sequence number the new snapshot may take (one past the key vault's head
    /// register, so the sequence keeps growing even in a repository that was rolled back).
    pub min_seq: u64,
}

impl BackupOptions {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        BackupOptions {
            paths,
            host: hostname(),
            cache_dir: None,
            exclude: Vec::new(),
            workers: cpus,
            uploads: 4,
            compression_level: 3,
            min_seq: 0,
        }
    }
}

/// This machine's name.
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

#[derive(Clone, Debug)]
pub struct BackupReport {
    pub id: Id,
    pub snapshot: Snapshot,
    pub warnings: Vec<String>,
    /// Packs an interrupted backup had uploaded, indexed and reused by this one.
    pub reused_packs: usize,
}

/// A chunk on its way to a sealer: `data` is [`SEAL_ROOM`] free bytes, then the plaintext, with
/// room after it for the tag, so that the sealer seals it where it lies.
struct Job {
    id: Id,
    kind: BlobKind,
    data: Vec<u8>,
    /// A chunk of a file of a compressed format (`arca_format::magic`).
    media: bool,
}

/// Whether a blob's buffer comes from the pool and goes back to it: a data chunk's does. A tree
/// (one per folder; about 70 KiB for a folder of 1,000 small files) takes a buffer of its own,
/// which the packer drops: pooled, the trees of wide folders kept up to a dozen idle buffers of
/// their size (BENCHMARKS.md, "Session 15").
fn pooled(kind: BlobKind) -> bool {
    kind == BlobKind::Data
}

struct SealedBlob {
    id: Id,
    kind: BlobKind,
    raw_len: u32,
    bytes: Vec<u8>,
}

/// A finished pack: whole in memory, or already written to a temporary file in a local folder.
struct PackOut {
    id: Id,
    body: PackBody,
    blobs: Vec<BlobEntry>,
}

enum PackBody {
    Memory(Vec<u8>),
    Local(LocalFile),
}

impl PackBody {
    fn len(&self) -> u64 {
        match self {
            PackBody::Memory(bytes) => bytes.len() as u64,
            PackBody::Local(file) => file.len(),
        }
    }
}

/// A data pack being streamed to a local file as its blobs arrive; hashed on the way for its name.
struct StreamPack {
    file: LocalFile,
    hasher: StreamHash,
    layout: PackLayout,
}

impl StreamPack {
    fn new(file: LocalFile) -> Result<Self> {
        let mut p = StreamPack {
            file,
            hasher: StreamHash::new(),
            layout: PackLayout::new(),
        };
        p.append(&PackLayout::START)?;
        Ok(p)
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.file.write_all(bytes)?;
        Ok(())
    }

    fn push(&mut self, b: &SealedBlob) -> Result<()> {
        self.layout.push(b.id, b.kind, b.raw_len, b.bytes.len());
        self.append(&b.bytes)
    }

    fn finish(mut self, keys: &arca_crypto::DerivedKeys) -> Result<PackOut> {
        let blobs = std::mem::take(&mut self.layout).finish(keys, |tail| self.append(tail))?;
        // Its write buffer is freed here, not after the uploader's `fdatasync`.
        self.file.close()?;
        Ok(PackOut {
            id: Id(self.hasher.finalize()),
            body: PackBody::Local(self.file),
            blobs,
        })
    }
}

/// The first error of any stage stops the others.
#[derive(Default)]
struct Shared {
    failed: AtomicBool,
    error: Mutex<Option<EngineError>>,
    uploaded: AtomicU64,
}

impl Shared {
    fn fail(&self, e: EngineError) {
        let mut g = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(e);
        }
        self.failed.store(true, Relaxed);
    }
    fn failed(&self) -> bool {
        self.failed.load(Relaxed)
    }
    fn take(&self) -> Option<EngineError> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Makes `p` absolute without following symlinks.
fn absolute(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).map_err(|e| EngineError::io(p, e))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

fn now_parts() -> (i64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    (d.as_secs() as i64, d.subsec_nanos())
}

/// Backs up `opts.paths` and writes a snapshot.
pub fn backup(
    repo: &Repository,
    opts: &BackupOptions,
    counters: &Counters,
) -> Result<BackupReport> {
    let (time, time_nsec) = now_parts();
    let mut paths = Vec::new();
    for p in &opts.paths {
        let abs = absolute(p)?;
        std::fs::symlink_metadata(&abs)
            .map_err(|e| EngineError::NotFound(format!("cannot back up {}: {e}", abs.display())))?;
        paths.push(abs);
    }
    if paths.is_empty() {
        return Err(EngineError::Invalid("no paths to back up".into()));
    }
    paths.sort();
    paths.dedup();
    let paths: Vec<PathBuf> = paths
        .iter()
        .filter(|p| !paths.iter().any(|q| q != *p && p.starts_with(q)))
        .cloned()
        .collect();

    let mut index = repo.load_index()?;
    // Packs a killed or disconnected run uploaded but did not index are reused, not re-sent.
    let salvaged = crate::salvage::salvage(repo, &mut index)?;
    let snapshots = repo.snapshots()?;
    let seq = snapshots
        .iter()
        .map(|s| s.snapshot.seq)
        .max()
        .map_or(1, |m| m + 1)
        .max(opts.min_seq);
    let path_bytes: Vec<serde_bytes::ByteBuf> = paths
        .iter()
        .map(|p| serde_bytes::ByteBuf::from(p.as_os_str().as_bytes().to_vec()))
        .collect();
    let parent = snapshots
        .iter()
        .rev()
        .find(|s| s.snapshot.host == opts.host && s.snapshot.paths == path_bytes)
        .map(|s| s.id);

    let cache_path = opts.cache_dir.as_ref().map(|d| d.join("files"));
    let own_tmp = std::env::temp_dir().join(format!("arca-{}", std::process::id()));
    let mut tmp_dir = match &opts.cache_dir {
        Some(d) => d.join("tmp"),
        None => own_tmp.clone(),
    };
    if let Err(e) = std::fs::create_dir_all(&tmp_dir) {
        if tmp_dir == own_tmp {
            return Err(EngineError::io(&tmp_dir, e));
        }
        // The cache is optional: when its folder cannot be written (a full disk, a read-only
        // config dir), temporary copies go to the system's temporary folder.
        tracing::warn!(
            "cannot use {} ({e}); using the system's temporary folder",
            tmp_dir.display()
        );
        tmp_dir = own_tmp.clone();
        std::fs::create_dir_all(&tmp_dir).map_err(|e| EngineError::io(&tmp_dir, e))?;
    }

    let shared = Shared::default();
    let workers = opts.workers.max(1);
    let uploads = opts.uploads.max(1);
    let pack_size = repo.config().pack_size as usize;
    // Chunk bytes between the walker and the packer, each chunk in one buffer that it is sealed in:
    // one and a half of the largest chunk (6 MiB), whatever the mix of chunk sizes. With the idle
    // buffers capped at one largest chunk, a day-0 backup of the 2 GiB chat folder took 3.6-4.3 s
    // at 43-50 MiB against 4.0-4.5 s at 50-52 MiB with 8 MiB of each (BENCHMARKS.md, session 6):
    // less memory touched, fewer page faults. The budget counts chunk bytes, not the room of their
    // buffers: a chunk read with content-defined cuts is in a buffer made for twice the average
    // chunk ([`ChunkReads`]).
    let max_chunk = repo.cdc().max_size();
    let budget = Budget::new(max_chunk + max_chunk / 2);
    let pool = BufPool::new(workers * 4 + 4, max_chunk);

    let (root, walker) = std::thread::scope(|s| {
        let (job_tx, job_rx) = bounded::<Job>(workers * 2);
        let (sealed_tx, sealed_rx) = bounded::<SealedBlob>(workers * 2);
        let (pack_tx, pack_rx) = bounded::<PackOut>(1);
        let (done_tx, done_rx) = unbounded::<IndexPack>();

        for _ in 0..workers {
            let (rx, tx, shared) = (job_rx.clone(), sealed_tx.clone(), &shared);
            let level = opts.compression_level;
            s.spawn(move || seal_worker(repo, level, rx, tx, shared));
        }
        drop((job_rx, sealed_tx));
        s.spawn(|| packer(repo, pack_size, sealed_rx, pack_tx, &shared, &pool, &budget));
        for _ in 0..uploads {
            let (rx, tx, shared) = (pack_rx.clone(), done_tx.clone(), &shared);
            s.spawn(move || uploader(repo, rx, tx, shared));
        }
        drop((pack_rx, done_tx));
        let indexer = s.spawn(|| indexer(repo, done_rx, &shared));

        let mut walker = Walker {
            repo,
            index: &index,
            new_ids: Sent::new(repo.index_spill()),
            job_tx: Some(job_tx),
            pool: &pool,
            budget: &budget,
            shared: &shared,
            counters,
            old_cache: CacheReader::open(cache_path.as_deref()),
            new_cache: CacheWriter::create(cache_path.as_deref()),
            warnings: Vec::new(),
            summary: Summary::default(),
            exclude: opts
                .exclude
                .iter()
                .filter_map(|p| absolute(p).ok())
                .collect(),
            tmp_dir: tmp_dir.clone(),
            started: time,
            copies: 0,
            media: false,
            open_dirs: 0,
            listing: vec![MaybeUninit::uninit(); LISTING_BUF],
        };
        let root = walker.save_roots(&paths);
        walker.job_tx = None;
        if let Err(e) = indexer
            .join()
            .unwrap_or_else(|_| Err(EngineError::Invalid("the indexer thread panicked".into())))
        {
            shared.fail(e);
        }
        (root, walker)
    });
    if tmp_dir == own_tmp {
        let _ = std::fs::remove_dir_all(&tmp_dir);
    }
    if let Some(e) = shared.take() {
        return Err(e);
    }
    let root = root?;
    let mut summary = walker.summary;
    summary.uploaded_bytes = shared.uploaded.load(Relaxed);
    summary.warnings = walker.warnings.len() as u64;
    let snapshot = Snapshot {
        seq,
        time,
        time_nsec,
        host: opts.host.clone(),
        paths: path_bytes,
        parent,
        tree: root,
        summary,
    };
    let id = repo.write_snapshot(&snapshot)?;
    let mut warnings = walker.warnings;
    if let Err(e) = walker.new_cache.finish() {
        warnings.push(format!(
            "could not save the file cache ({e}); the next backup will read every file again"
        ));
    }
    Ok(BackupReport {
        id,
        snapshot,
        warnings,
        reused_packs: salvaged,
    })
}

fn seal_worker(
    repo: &Repository,
    level: i32,
    rx: Receiver<Job>,
    tx: Sender<SealedBlob>,
    shared: &Shared,
) {
    let mut sealer = Sealer::new(level);
    for job in rx {
        if shared.failed() {
            continue;
        }
        let raw_len = (job.data.len() - SEAL_ROOM) as u32;
        let mut bytes = job.data;
        sealer.seal_in_place_from(repo.keys(), job.kind, &job.id, &mut bytes, job.media);
        let sealed = SealedBlob {
            id: job.id,
            kind: job.kind,
            raw_len,
            bytes,
        };
        if tx.send(sealed).is_err() {
            break;
        }
    }
}

fn packer(
    repo: &Repository,
    pack_size: usize,
    rx: Receiver<SealedBlob>,
    tx: Sender<PackOut>,
    shared: &Shared,
    pool: &BufPool,
    budget: &Budget,
) {
    if let Err(e) = pack_blobs(repo, pack_size, rx, &tx, pool, budget) {
        shared.fail(e);
    }
}

/// Most blobs in one pack. A pack's list of blobs stays in memory until the pack is sealed,
/// and is copied a few times while its header is encoded and sealed: about 48 bytes a blob
/// each time. Without a cap, a folder of tiny files (JSON caches of a hundred bytes) put some
/// 67 k blobs in one 16 MiB pack: a backup of 200 k of them peaked at 50-54 MiB against 33 MiB
/// for 50 k, and at 28-30 MiB with the cap (BENCHMARKS.md, "Memory across file counts"). The
/// same number as an index file's, so one index file holds under 16 Ki blobs; a pack of SQLite
/// pages (about 7 k at 16 MiB) is not cut short unless its pages compress below 2 KiB.
pub const PACK_MAX_BLOBS: usize = INDEX_MAX_BLOBS;

/// Fills data and tree packs, each up to the pack size or [`PACK_MAX_BLOBS`] blobs. Packs go
/// straight to a temporary file when the repository is a local folder, so no pack is held
/// whole in memory (the tree pack of a large backup, with the chunk lists of its databases,
/// grows to the full pack size); otherwise both kinds are built in memory and uploaded whole.
fn pack_blobs(
    repo: &Repository,
    pack_size: usize,
    rx: Receiver<SealedBlob>,
    tx: &Sender<PackOut>,
    pool: &BufPool,
    budget: &Budget,
) -> Result<()> {
    let cap = pack_size + repo.cdc().max_size() + 4096;
    let local = repo.storage().local_folder();
    let mut stream: Option<StreamPack> = None;
    let mut tree_stream: Option<StreamPack> = None;
    let mut data: Option<PackBuilder> = None;
    let mut trees = PackBuilder::default();
    let send = |out: PackOut| {
        tx.send(out)
            .map_err(|_| EngineError::Invalid("the backup pipeline stopped".into()))
    };
    let ship = |pb: PackBuilder| {
        let (id, bytes, blobs) = pb.finish(repo.keys());
        send(PackOut {
            id,
            body: PackBody::Memory(bytes),
            blobs,
        })
    };
    for b in rx {
        match (b.kind, local) {
            (kind, Some(folder)) => {
                let open = if kind == BlobKind::Data {
                    &mut stream
                } else {
                    &mut tree_stream
                };
                let mut sp = match open.take() {
                    Some(sp) => sp,
                    None => StreamPack::new(folder.create()?)?,
                };
                sp.push(&b)?;
                if sp.layout.len() >= pack_size as u64 || sp.layout.blob_count() >= PACK_MAX_BLOBS {
                    send(sp.finish(repo.keys())?)?;
                } else {
                    *open = Some(sp);
                }
            }
            (BlobKind::Data, None) => {
                let pb = data.get_or_insert_with(|| PackBuilder::with_capacity(cap));
                pb.push(b.id, b.kind, b.raw_len, &b.bytes);
                if pb.len() >= pack_size || pb.blob_count() >= PACK_MAX_BLOBS {
                    ship(data.take().expect("a pack is open"))?;
                }
            }
            (BlobKind::Tree, None) => {
                trees.push(b.id, b.kind, b.raw_len, &b.bytes);
                if trees.len() >= pack_size || trees.blob_count() >= PACK_MAX_BLOBS {
                    ship(std::mem::take(&mut trees))?;
                }
            }
        }
        if pooled(b.kind) {
            pool.put(b.bytes);
        }
        budget.give(b.raw_len as usize);
    }
    for sp in [stream, tree_stream].into_iter().flatten() {
        send(sp.finish(repo.keys())?)?;
    }
    for pb in [data, Some(trees)].into_iter().flatten() {
        if !pb.is_empty() {
            ship(pb)?;
        }
    }
    Ok(())
}

fn uploader(repo: &Repository, rx: Receiver<PackOut>, tx: Sender<IndexPack>, shared: &Shared) {
    for p in rx {
        if shared.failed() {
            continue;
        }
        let path = pack_path(&p.id);
        let size = p.body.len();
        let written = match p.body {
            PackBody::Memory(bytes) => repo.storage().write(&path, bytes),
            PackBody::Local(file) => file.commit(&path),
        };
        match written {
            Ok(()) => {
                shared.uploaded.fetch_add(size, Relaxed);
                let _ = tx.send(IndexPack {
                    id: p.id,
                    size,
                    blobs: p.blobs,
                });
            }
            Err(e) => shared.fail(e.into()),
        }
    }
}

/// An index file lists at most this many packs ...
const INDEX_MAX_PACKS: usize = 16;
/// ... and, once it has this many blobs, no more packs. Sixteen packs of SQLite pages are 64 Ki
/// blobs, a 4 MiB index file that every later run would hold whole (twice, while decoding) as
/// it loads the index; 8 Ki blobs keep a file near 0.5 MiB.
const INDEX_MAX_BLOBS: usize = 8 * 1024;

/// Writes index files as packs arrive, so an interrupted backup's uploaded packs are reused.
fn indexer(repo: &Repository, rx: Receiver<IndexPack>, shared: &Shared) -> Result<()> {
    let mut pending = IndexFile::default();
    let mut blobs = 0;
    let mut since = Instant::now();
    for p in rx {
        blobs += p.blobs.len();
        pending.packs.push(p);
        if pending.packs.len() >= INDEX_MAX_PACKS
            || blobs >= INDEX_MAX_BLOBS
            || since.elapsed() > Duration::from_secs(20)
        {
            repo.write_index(&pending)?;
            pending = IndexFile::default();
            blobs = 0;
            since = Instant::now();
        }
        if shared.failed() && pending.packs.is_empty() {
            continue;
        }
    }
    if !pending.packs.is_empty() {
        repo.write_index(&pending)?;
    }
    Ok(())
}

/// How [`Walker::read_cdc`] reads a file into the buffers of its chunks, in bytes, from the
/// chunker's average chunk (1 MiB by default). The walker read through a buffer of its own
/// before, and copied each chunk out of it (BENCHMARKS.md, "Session 19").
struct ChunkReads {
    /// Read at a time: a quarter of the average chunk. What was read past a cut, copied to the
    /// next chunk's buffer, is less than this: a tenth of a chunk, on average.
    step: usize,
    /// A chunk's buffer holds at first: twice the average chunk, room for all but about 2% of
    /// the chunks of random bytes.
    room: usize,
    /// A chunk's buffer grows by, when the chunk runs longer: the average chunk.
    grow: usize,
}

impl ChunkReads {
    fn new(avg: usize) -> Self {
        ChunkReads {
            step: (avg / 4).max(1),
            room: avg * 2,
            grow: avg,
        }
    }
}

/// Reads at most `max` bytes onto the end of `buf`, into its spare capacity (nothing is zeroed
/// first), retrying when interrupted; the bytes read, 0 at the end of the file.
fn read_onto(file: &File, buf: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
    let spare = &mut buf.spare_capacity_mut()[..max];
    let n = loop {
        match rustix::io::read(file, &mut *spare) {
            Ok((init, _)) => break init.len(),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    };
    // SAFETY: rustix returns as `init` the first `n` bytes of `spare`, the ones the read
    // initialized; `spare` is the start of `buf`'s spare capacity, so the bytes up to the new
    // length are all initialized, and `n <= max <= spare.len()` keeps it within capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// A directory of the snapshot root that stands for a path's ancestors.
enum Virtual {
    Node(Node),
    Dir(BTreeMap<Vec<u8>, Virtual>),
}

struct Walker<'a> {
    repo: &'a Repository,
    index: &'a MasterIndex,
    new_ids: Sent,
    job_tx: Option<Sender<Job>>,
    pool: &'a BufPool,
    budget: &'a Budget,
    shared: &'a Shared,
    counters: &'a Counters,
    /// The previous backup's file cache, read as the walk goes (paths come in walk order).
    old_cache: CacheReader,
    new_cache: CacheWriter,
    warnings: Vec<String>,
    summary: Summary,
    exclude: Vec<PathBuf>,
    tmp_dir: PathBuf,
    started: i64,
    copies: u64,
    /// The file being read is of a compressed format: its small chunks are stored untried.
    media: bool,
    /// Directories the walk holds open, one per level ([`OPEN_DIRS`]).
    open_dirs: usize,
    /// The buffer directories are listed through, one for the whole walk.
    listing: Vec<MaybeUninit<u8>>,
}

/// Bytes of directory entries one `getdents` call returns at most (about 1,000 names).
const LISTING_BUF: usize = 32 * 1024;

/// Most directories held open at once, one per level of the walk; deeper ones are open only
/// while the walk is not below them ([`Here::Deep`]), so that a tree thousands of levels deep
/// cannot use up the process's file descriptors (1,024 by default) that packs and caches need.
const OPEN_DIRS: usize = 64;

fn node(name: &[u8], m: &Stat, content: Content) -> Node {
    Node {
        name: name.to_vec(),
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
        mtime: m.file.mtime,
        mtime_nsec: m.file.mtime_nsec as u32,
        content,
    }
}

/// Where a file was found: in the listing of its open directory (`dir` and its `name` there),
/// or by its path (no `dir`). `may_have_wal`: a `-wal` sidecar may be beside it (false when the
/// directory's listing has none, so that most files cost no lookup for it).
#[derive(Clone, Copy)]
struct Found<'a> {
    dir: Option<BorrowedFd<'a>>,
    name: &'a OsStr,
    may_have_wal: bool,
}

impl<'a> Found<'a> {
    fn by_path(path: &'a Path) -> Self {
        Found {
            dir: None,
            name: path.file_name().unwrap_or_default(),
            may_have_wal: true,
        }
    }
}

/// The deepest directory the walk holds open above an entry, and its path.
type Anchor<'a> = (BorrowedFd<'a>, &'a Path);

/// Opens the directory `path` below `anchor`, one name at a time, following no symlink on the
/// way (`stat.rs`); a source path (no anchor), by path.
fn open_dir_from(anchor: Option<Anchor<'_>>, path: &Path) -> std::io::Result<OwnedFd> {
    match anchor {
        Some((fd, at)) => {
            let rel = path
                .strip_prefix(at)
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
            open_dir_beneath(fd, rel)
        }
        None => open_dir_at(None, path.file_name().unwrap_or_default(), path),
    }
}

/// The directory whose entries are being saved.
enum Here<'a> {
    /// Held open while all its entries are saved: the anchor of the directories below it.
    Held(BorrowedFd<'a>),
    /// Deeper than [`OPEN_DIRS`] levels: open while its other entries are saved, closed while
    /// the walk is in one of its subdirectories, then opened again from `anchor` and checked to
    /// be the same directory (`id`: device and inode).
    Deep {
        fd: Option<OwnedFd>,
        anchor: Option<Anchor<'a>>,
        id: (u64, u64),
    },
}

impl<'a> Here<'a> {
    /// The directory, open.
    fn open(&mut self, path: &Path) -> std::io::Result<BorrowedFd<'_>> {
        match self {
            Here::Held(fd) => Ok(*fd),
            Here::Deep { fd, anchor, id } => {
                if fd.is_none() {
                    let again = open_dir_from(*anchor, path)?;
                    let s = fstat(again.as_fd())?;
                    if (s.file.dev, s.file.ino) != *id {
                        return Err(std::io::Error::other("it was replaced"));
                    }
                    *fd = Some(again);
                }
                Ok(fd.as_ref().expect("opened above").as_fd())
            }
        }
    }

    /// The anchor of its subdirectories: itself when held, else its own anchor.
    fn anchor<'p>(&self, path: &'p Path) -> Option<Anchor<'p>>
    where
        'a: 'p,
    {
        match self {
            Here::Held(fd) => Some((*fd, path)),
            Here::Deep { anchor, .. } => *anchor,
        }
    }

    /// Closes the directory, if it is not held.
    fn close(&mut self) {
        if let Here::Deep { fd, .. } = self {
            *fd = None;
        }
    }
}

/// The warning for an entry that could not be looked at or opened, and so is left out.
fn not_read(path: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!("{} vanished before it was read: {e}", path.display())
    } else if e.raw_os_error() == Some(libc::ELOOP) {
        // Files and directories are opened without following a symlink (`stat.rs`).
        format!(
            "{} was replaced by a symlink while the backup ran; skipped (the next backup records the symlink)",
            path.display()
        )
    } else if e.raw_os_error() == Some(libc::ENAMETOOLONG) {
        format!(
            "{} is not backed up: its path is {} bytes, too long for this system ({e})",
            path.display(),
            path.as_os_str().len()
        )
    } else {
        format!("cannot read {}: {e}; skipped", path.display())
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Walker<'_> {
    fn warn(&mut self, msg: String) {
        tracing::warn!("{msg}");
        self.warnings.push(msg);
    }

    fn check_failed(&self) -> Result<()> {
        if self.shared.failed() {
            Err(stopped())
        } else {
            Ok(())
        }
    }

    /// Whether the repository, or this backup so far, holds every blob of `ids`.
    fn all_known(&self, ids: &[Id]) -> Result<bool> {
        for id in ids {
            if !self.new_ids.contains(id)? && !self.index.contains(id)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Hashes a blob and sends it on unless the repository already has it.
    fn emit(&mut self, data: &[u8], kind: BlobKind) -> Result<Id> {
        let id = Id(self.repo.keys().blob_id(data));
        if self.take_new(&id, data.len())? {
            let cap = SEAL_ROOM + data.len() + TAG_LEN;
            let mut buf = if pooled(kind) {
                self.pool.get(cap)
            } else {
                Vec::with_capacity(cap)
            };
            buf.resize(SEAL_ROOM, 0);
            buf.extend_from_slice(data);
            self.send(id, kind, buf)?;
        }
        Ok(id)
    }

    /// Whether the blob `id` of `len` bytes is new to the repository and to this backup. A new
    /// one is counted as sent, and its bytes are taken from the budget (waiting for room).
    fn take_new(&mut self, id: &Id, len: usize) -> Result<bool> {
        if self.new_ids.contains(id)? || self.index.contains(id)? {
            return Ok(false);
        }
        self.new_ids.add(id)?;
        self.summary.new_bytes += len as u64;
        // The budget refuses only once the pipeline has failed; its error is reported.
        if !self.budget.take(len, || self.shared.failed()) {
            return Err(stopped());
        }
        Ok(true)
    }

    /// Sends a new blob to the sealers: `data` is [`SEAL_ROOM`] bytes, then the plaintext, in a
    /// buffer with room for the tag after it.
    fn send(&mut self, id: Id, kind: BlobKind, data: Vec<u8>) -> Result<()> {
        let job = Job {
            id,
            kind,
            data,
            media: self.media && kind == BlobKind::Data,
        };
        let sent = self.job_tx.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if !sent {
            self.check_failed()?;
            return Err(EngineError::Invalid("the backup pipeline stopped".into()));
        }
        Ok(())
    }

    fn store_tree(&mut self, mut tree: Tree) -> Result<Id> {
        tree.normalize();
        let bytes = arca_format::encode(&tree);
        self.emit(&bytes, BlobKind::Tree)
    }

    fn save_roots(&mut self, paths: &[PathBuf]) -> Result<Id> {
        if paths.len() == 1 && paths[0] == Path::new("/") {
            let root = Path::new("/");
            let mut meta = std::fs::symlink_metadata(root)
                .map(|m| Stat::from(&m))
                .map_err(|e| EngineError::io(root, e))?;
            return match self.save_dir(root, None, &mut meta)? {
                Some(id) => Ok(id),
                None => Err(EngineError::io(
                    root,
                    std::io::Error::from_raw_os_error(libc::ENOTDIR),
                )),
            };
        }
        let mut root: BTreeMap<Vec<u8>, Virtual> = BTreeMap::new();
        for p in paths {
            let comps: Vec<Vec<u8>> = p
                .components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n.as_bytes().to_vec()),
                    _ => None,
                })
                .collect();
            let Some((name, ancestors)) = comps.split_last() else {
                continue;
            };
            let meta = match std::fs::symlink_metadata(p) {
                Ok(m) => Stat::from(&m),
                Err(e) => {
                    self.warn(not_read(p, &e));
                    continue;
                }
            };
            let Some(n) = self.save_path(p, name, meta, None, None)? else {
                continue;
            };
            let mut dir = &mut root;
            for a in ancestors {
                let entry = dir
                    .entry(a.clone())
                    .or_insert_with(|| Virtual::Dir(BTreeMap::new()));
                dir = match entry {
                    Virtual::Dir(d) => d,
                    Virtual::Node(_) => unreachable!("nested source paths were removed"),
                };
            }
            dir.insert(name.clone(), Virtual::Node(n));
        }
        self.save_virtual(Path::new("/"), root)
    }

    fn save_virtual(&mut self, path: &Path, children: BTreeMap<Vec<u8>, Virtual>) -> Result<Id> {
        let mut tree = Tree::default();
        for (name, v) in children {
            match v {
                Virtual::Node(n) => tree.nodes.push(n),
                Virtual::Dir(ch) => {
                    let sub = path.join(std::ffi::OsStr::from_bytes(&name));
                    let id = self.save_virtual(&sub, ch)?;
                    let meta = std::fs::symlink_metadata(&sub)
                        .map(|m| Stat::from(&m))
                        .map_err(|e| EngineError::io(&sub, e))?;
                    tree.nodes
                        .push(node(&name, &meta, Content::Dir { tree: id }));
                }
            }
        }
        self.store_tree(tree)
    }

    /// Saves the entry `path`, named `name` in its directory. `dir`: that directory, when it is
    /// open (else the entry is looked at by path); `anchor`: the deepest directory above the
    /// entry that the walk holds open, and its path, from which a subdirectory is opened.
    /// `meta` is what the listing saw.
    fn save_path(
        &mut self,
        path: &Path,
        name: &[u8],
        mut meta: Stat,
        dir: Option<BorrowedFd<'_>>,
        anchor: Option<Anchor<'_>>,
    ) -> Result<Option<Node>> {
        self.check_failed()?;
        let content = match meta.file_type() {
            FileType::Directory => match self.save_dir(path, anchor, &mut meta)? {
                Some(tree) => {
                    self.summary.dirs += 1;
                    Content::Dir { tree }
                }
                None => return Ok(None),
            },
            // Files in a listing are saved by `save_entries`; this is a source path.
            FileType::RegularFile => match self.save_file(path, Found::by_path(path), &meta)? {
                Some((c, _)) => c,
                None => return Ok(None),
            },
            FileType::Symlink => {
                let target = match dir {
                    Some(dir) => rustix::fs::readlinkat(dir, OsStr::from_bytes(name), Vec::new())
                        .map(|t| t.into_bytes())
                        .map_err(std::io::Error::from),
                    None => std::fs::read_link(path).map(|t| t.into_os_string().into_vec()),
                };
                match target {
                    Ok(target) => Content::Symlink { target },
                    // `readlink` of what is not a symlink.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        self.warn(format!(
                            "{} was a symlink and was replaced while the backup ran; skipped (the next backup saves what is there then)",
                            path.display()
                        ));
                        return Ok(None);
                    }
                    Err(e) => {
                        self.warn(format!(
                            "cannot read symlink {}: {e}; skipped",
                            path.display()
                        ));
                        return Ok(None);
                    }
                }
            }
            FileType::Fifo => Content::Fifo,
            FileType::Socket => Content::Socket,
            FileType::CharacterDevice => Content::CharDevice { rdev: meta.rdev },
            FileType::BlockDevice => Content::BlockDevice { rdev: meta.rdev },
            FileType::Unknown => {
                self.warn(format!(
                    "{} has an unknown file type; skipped",
                    path.display()
                ));
                return Ok(None);
            }
        };
        Ok(Some(node(name, &meta, content)))
    }

    /// Saves the directory `path` as a tree. It is opened from `anchor` (by path for a source
    /// path) without following any symlink, then listed and looked into through that
    /// descriptor: the tree saved is the directory opened, whatever is renamed around it
    /// meanwhile, and a symlink swapped in for a directory is never followed. `meta` becomes
    /// what was opened, if another directory took the place of the one listed. `None`: it is
    /// gone, or no longer a directory, and is left out with a warning.
    fn save_dir(
        &mut self,
        path: &Path,
        anchor: Option<Anchor<'_>>,
        meta: &mut Stat,
    ) -> Result<Option<Id>> {
        let opened = open_dir_from(anchor, path).and_then(|fd| Ok((fstat(fd.as_fd())?, fd)));
        let (found, fd) = match opened {
            Ok(o) => o,
            // Below the held levels it is opened through the folders above it, one name at a
            // time (`Here::Deep`): any of them may be what was replaced or removed.
            Err(e)
                if anchor.is_some_and(|(_, at)| path.parent() != Some(at))
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::ENOTDIR | libc::ELOOP | libc::ENOENT)
                    ) =>
            {
                self.warn(format!(
                    "{} is not backed up: it, or a folder above it, was replaced or removed while the backup ran ({e}); the next backup saves what is there then",
                    path.display()
                ));
                return Ok(None);
            }
            // Listed as a directory, it is something else now, a symlink included (opening one
            // with `O_DIRECTORY|O_NOFOLLOW` gives ENOTDIR). Only here does ENOTDIR mean that:
            // for a source path looked at by path, it means a file where a folder was named.
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                self.warn(format!(
                    "{} was replaced by a symlink or something else that is not a directory while the backup ran; skipped (the next backup records it)",
                    path.display()
                ));
                return Ok(None);
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ELOOP)) => {
                self.warn(not_read(path, &e));
                return Ok(None);
            }
            Err(e) => {
                self.warn(format!(
                    "cannot read directory {}: {e}; it is recorded as empty",
                    path.display()
                ));
                return self.store_tree(Tree::default()).map(Some);
            }
        };
        if (found.file.dev, found.file.ino) != (meta.file.dev, meta.file.ino) {
            *meta = found;
        }
        let (mut names, err) = list(fd.as_fd(), &mut self.listing);
        if let Some(e) = err {
            self.warn(format!(
                "error listing {}: {e}; some entries may be missing",
                path.display()
            ));
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let tree = if self.open_dirs < OPEN_DIRS {
            self.open_dirs += 1;
            let tree = self.save_entries(path, &names, Here::Held(fd.as_fd()));
            self.open_dirs -= 1;
            tree
        } else {
            let here = Here::Deep {
                fd: Some(fd),
                anchor,
                id: (found.file.dev, found.file.ino),
            };
            self.save_entries(path, &names, here)
        };
        self.store_tree(tree?).map(Some)
    }

    /// The tree of the entries `names` (sorted) of the directory `path`, open as `here`.
    fn save_entries(&mut self, path: &Path, names: &[OsString], mut here: Here) -> Result<Tree> {
        let mut captured: HashSet<Vec<u8>> = HashSet::new();
        let mut tree = Tree::default();
        let mut wal_name = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let nb = name.as_bytes();
            let sidecar_of_capture = SIDECARS.iter().any(|s| {
                nb.len() > s.len()
                    && nb.ends_with(s.as_bytes())
                    && captured.contains(&nb[..nb.len() - s.len()])
            });
            if sidecar_of_capture {
                continue;
            }
            let child = path.join(name);
            if self.exclude.iter().any(|x| x == &child) {
                continue;
            }
            // Looked at by name, a file whose whole path is too long for the system would be
            // backed up, but could not be restored where it was: it is left out, with the
            // warning a look by path gives.
            if child.as_os_str().len() >= libc::PATH_MAX as usize {
                let e = std::io::Error::from_raw_os_error(libc::ENAMETOOLONG);
                self.warn(not_read(&child, &e));
                continue;
            }
            let anchor = here.anchor(path);
            let dir = match here.open(path) {
                Ok(d) => d,
                Err(e) => {
                    self.warn(format!(
                        "{} changed while the backup ran ({e}); its entries from {} on are left out (the next backup saves them)",
                        path.display(),
                        name.to_string_lossy()
                    ));
                    break;
                }
            };
            let meta = match lstat_at(Some(dir), name, &child) {
                Ok(m) => m,
                Err(e) => {
                    self.warn(not_read(&child, &e));
                    continue;
                }
            };
            if meta.is_file() {
                self.check_failed()?;
                // Its `-wal` sorts after it.
                wal_name.clear();
                wal_name.extend_from_slice(nb);
                wal_name.extend_from_slice(b"-wal");
                let found = Found {
                    dir: Some(dir),
                    name,
                    may_have_wal: names[i + 1..]
                        .binary_search_by(|n| n.as_bytes().cmp(&wal_name))
                        .is_ok(),
                };
                if let Some((content, sqlite)) = self.save_file(&child, found, &meta)? {
                    if sqlite {
                        captured.insert(nb.to_vec());
                    }
                    tree.nodes.push(node(nb, &meta, content));
                }
                continue;
            }
            let dir = if meta.file_type() == FileType::Directory {
                // Not held open while the walk is below it, if it is not held.
                here.close();
                None
            } else {
                Some(dir)
            };
            if let Some(n) = self.save_path(&child, nb, meta, dir, anchor)? {
                tree.nodes.push(n);
            }
        }
        Ok(tree)
    }

    /// Returns the file's content and whether it was captured as a consistent SQLite copy.
    fn save_file(
        &mut self,
        path: &Path,
        found: Found,
        meta: &Stat,
    ) -> Result<Option<(Content, bool)>> {
        let key = path.as_os_str().as_bytes().to_vec();
        let fp = meta.file;
        // A WAL database's changes may be only in its `-wal`.
        let wal = if !found.may_have_wal {
            None
        } else {
            let mut wal_name = found.name.to_owned();
            wal_name.push("-wal");
            let mut wal_path = path.as_os_str().to_owned();
            wal_path.push("-wal");
            lstat_at(found.dir, &wal_name, Path::new(&wal_path))
                .ok()
                .map(|m| m.file)
        };
        if let Some(e) = self.old_cache.get(&key)
            && e.file == fp
            && e.wal == wal
            && self.all_known(e.chunks.refs())?
        {
            self.summary.files += 1;
            self.summary.bytes += e.size;
            self.counters.add(1, e.size);
            let content = e.chunks.content(e.size);
            let sqlite = e.sqlite;
            self.new_cache.insert(&key, &e);
            return Ok(Some((content, sqlite)));
        }

        let mut file = match open_at(found.dir, found.name, path) {
            Ok(f) => f,
            Err(e) => {
                self.warn(not_read(path, &e));
                return Ok(None);
            }
        };
        let mut head = [0u8; 100];
        let n = match read_full(&mut file, &mut head) {
            Ok(n) => n,
            Err(e) => {
                self.warn(format!("cannot read {}: {e}; skipped", path.display()));
                return Ok(None);
            }
        };
        let mut sqlite = false;
        let read = if let Some(page) = sqlite_page_size(&head[..n]) {
            let chunk = sqlite_chunk_len(page);
            let quiet = if is_wal(&head[..n]) {
                self.read_quiet_wal(path, &mut file, &fp, chunk)
            } else {
                None
            };
            match quiet.or_else(|| self.capture_sqlite(path, &mut file, chunk)) {
                Some(r) => {
                    sqlite = true;
                    r
                }
                None => file
                    .seek(SeekFrom::Start(0))
                    .and_then(|_| self.read_fixed(&mut file, chunk)),
            }
        } else {
            self.media = is_compressed_format(&head[..n]);
            let read = file
                .seek(SeekFrom::Start(0))
                .and_then(|_| self.read_cdc(&mut file, fp.size));
            self.media = false;
            read
        };
        let (size, chunks) = match read {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::Other && self.shared.failed() => {
                return Err(stopped());
            }
            Err(e) => {
                self.warn(format!("error reading {}: {e}; skipped", path.display()));
                return Ok(None);
            }
        };
        let mut cacheable = meta.file.mtime < self.started - 1;
        if !sqlite {
            let changed = match file.metadata() {
                Ok(after) => {
                    let a = Stat::from(&after).file;
                    a.size != fp.size
                        || a.mtime != fp.mtime
                        || a.mtime_nsec != fp.mtime_nsec
                        || size != fp.size
                }
                Err(_) => true,
            };
            if changed {
                cacheable = false;
                self.warn(format!(
                    "{} changed while it was being read; the backup holds the {size} bytes that were read",
                    path.display()
                ));
            }
        }
        self.summary.files += 1;
        self.summary.bytes += size;
        self.counters.add(1, 0);
        if cacheable {
            let entry = filecache::Entry {
                file: fp,
                wal: if sqlite { wal } else { None },
                sqlite,
                size,
                chunks,
            };
            self.new_cache.insert(&key, &entry);
            return Ok(Some((entry.chunks.content(size), sqlite)));
        }
        Ok(Some((chunks.content(size), sqlite)))
    }

    /// Reads a WAL database that no program has open (no `-wal` or `-shm` beside it, before and
    /// after the read, and the file unchanged by the read's end): its file alone is then its
    /// committed state. Opening it with SQLite instead, even read-only, would leave a `-shm` and
    /// an empty `-wal` in the user's folder. `None` when the database is in use: the caller
    /// then copies it with SQLite's backup API (the chunks read here are dropped; at worst they
    /// stay in the repository unreferenced).
    fn read_quiet_wal(
        &mut self,
        path: &Path,
        file: &mut File,
        before: &Fingerprint,
        chunk: usize,
    ) -> Option<std::io::Result<(u64, FileChunks)>> {
        let no_sidecars = || {
            ["-wal", "-shm"].iter().all(|s| {
                let mut p = path.as_os_str().to_owned();
                p.push(s);
                matches!(std::fs::symlink_metadata(&p), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
            })
        };
        if !no_sidecars() {
            return None;
        }
        let read = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.read_fixed(file, chunk));
        let unchanged = file
            .metadata()
            .is_ok_and(|after| Stat::from(&after).file == *before);
        match read {
            Ok((size, chunks)) if unchanged && size == before.size && no_sidecars() => {
                Some(Ok((size, chunks)))
            }
            Err(e) if self.shared.failed() => Some(Err(e)),
            _ => {
                tracing::debug!(
                    "{} was opened or changed while it was read; copying it with SQLite",
                    path.display()
                );
                None
            }
        }
    }

    /// Reads a SQLite database as one committed state (see `sqlite.rs`); `None` if that is not
    /// possible, after a warning, in which case the caller reads the file as it is on disk.
    fn capture_sqlite(
        &mut self,
        path: &Path,
        file: &mut File,
        chunk: usize,
    ) -> Option<std::io::Result<(u64, FileChunks)>> {
        match read_lock(path) {
            Ok(Some(lock)) => {
                // `file` was opened before the lock, and stays open until after it is dropped.
                let r = file
                    .seek(SeekFrom::Start(0))
                    .and_then(|_| self.read_fixed(file, chunk));
                drop(lock);
                return Some(r);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!("no read lock on {}: {e}; trying a copy", path.display());
            }
        }
        self.copies += 1;
        let copy = self.tmp_dir.join(format!("sqlite-copy-{}.db", self.copies));
        let result = match consistent_copy(path, &copy) {
            Ok(()) => Some(File::open(&copy).and_then(|mut c| self.read_fixed(&mut c, chunk))),
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK =>
            {
                self.warn(format!(
                    "the SQLite database {p} has a hot journal (a writer stopped in the middle of a transaction) that a read-only backup cannot roll back; it is backed up as it is on disk, with {p}-journal when its folder is backed up, and SQLite rolls the unfinished transaction back when the restored database is first opened",
                    p = path.display()
                ));
                None
            }
            Err(e) => {
                self.warn(format!(
                    "could not take a consistent copy of the SQLite database {} ({e}); it is backed up as it is on disk",
                    path.display()
                ));
                None
            }
        };
        let _ = std::fs::remove_file(&copy);
        result
    }

    fn pipeline_error() -> std::io::Error {
        std::io::Error::other("backup stopped")
    }

    /// Cuts with the keyed content-defined chunker, reading the file straight into the buffer its
    /// chunk is sealed in, a piece at a time ([`ChunkReads`]), looking for the cut in each piece as
    /// it arrives ([`Cdc::cut_more`]). What was read past a cut, less than one step, is copied to
    /// the next chunk's buffer. A chunk already stored keeps its buffer for the next. `size` (the
    /// file's length when it was looked at) sizes the buffers; the file is read to its end,
    /// whatever its length now.
    fn read_cdc(&mut self, file: &mut File, size: u64) -> std::io::Result<(u64, FileChunks)> {
        let repo = self.repo;
        let cdc = repo.cdc();
        let reads = ChunkReads::new(cdc.avg_size());
        let mut chunks = ChunksBuilder::default();
        let mut read = 0u64;
        let mut total = 0u64;
        let mut eof = false;
        let mut state = CutState::default();
        let mut cur = self.chunk_buf(&[], size, reads.room);
        loop {
            let held = &cur[SEAL_ROOM..];
            let n = match cdc.cut_more(held, &mut state) {
                Some(n) => n,
                None if eof => held.len(),
                None => {
                    if cur.capacity() - cur.len() < TAG_LEN + 1 {
                        cur.reserve_exact(TAG_LEN + reads.grow);
                    }
                    let step = reads.step.min(cur.capacity() - cur.len() - TAG_LEN);
                    let k = read_onto(file, &mut cur, step)?;
                    eof = k == 0;
                    read += k as u64;
                    continue;
                }
            };
            if n > 0 {
                // The file's last chunk: no buffer is made for a next one.
                let last = eof && SEAL_ROOM + n == cur.len();
                let chunk = &cur[SEAL_ROOM..SEAL_ROOM + n];
                let id = Id(repo.keys().blob_id(chunk));
                let stored = self.take_new(&id, n).and_then(|new| {
                    if !new {
                        cur.copy_within(SEAL_ROOM + n.., SEAL_ROOM);
                        cur.truncate(cur.len() - n);
                        return Ok(());
                    }
                    let next = if last {
                        Vec::new()
                    } else {
                        let left = size.saturating_sub(read);
                        self.chunk_buf(&cur[SEAL_ROOM + n..], left, reads.room)
                    };
                    cur.truncate(SEAL_ROOM + n);
                    self.send(id, BlobKind::Data, std::mem::replace(&mut cur, next))
                });
                if stored
                    .and_then(|()| chunks.push(id, |list| self.emit(list, BlobKind::Tree)))
                    .is_err()
                {
                    return Err(Self::pipeline_error());
                }
                state = CutState::default();
                total += n as u64;
                self.counters.add(0, n as u64);
                if !last {
                    continue;
                }
            }
            if cur.capacity() > 0 {
                self.pool.put(cur);
            }
            return self
                .finish_chunks(chunks)
                .map(|chunks| (total, chunks))
                .map_err(|_| Self::pipeline_error());
        }
    }

    /// A buffer for the next chunk of a file: [`SEAL_ROOM`] bytes, then `carry` (what was read
    /// past the previous cut), with room for the `left` bytes of the file not read yet and the
    /// end-of-file read, up to `room`, and for the tag.
    fn chunk_buf(&self, carry: &[u8], left: u64, room: usize) -> Vec<u8> {
        let want = (carry.len() as u64 + left + 1).min(room as u64) as usize;
        let mut buf = self.pool.get(SEAL_ROOM + want.max(carry.len()) + TAG_LEN);
        buf.resize(SEAL_ROOM, 0);
        buf.extend_from_slice(carry);
        buf
    }

    /// Cuts at fixed `chunk` bytes (SQLite pages).
    fn read_fixed(&mut self, file: &mut File, chunk: usize) -> std::io::Result<(u64, FileChunks)> {
        let batch = (1 << 20) / chunk * chunk;
        let mut buf = vec![0u8; batch.max(chunk)];
        let mut chunks = ChunksBuilder::default();
        let mut total = 0u64;
        loop {
            let n = read_full(file, &mut buf)?;
            if n == 0 {
                break;
            }
            for piece in buf[..n].chunks(chunk) {
                self.push_chunk(&mut chunks, piece)
                    .map_err(|_| Self::pipeline_error())?;
            }
            total += n as u64;
            self.counters.add(0, n as u64);
            if n < buf.len() {
                break;
            }
        }
        let chunks = self
            .finish_chunks(chunks)
            .map_err(|_| Self::pipeline_error())?;
        Ok((total, chunks))
    }

    /// Stores one chunk of a file and records it, storing a chunk list when one is full.
    fn push_chunk(&mut self, chunks: &mut ChunksBuilder, piece: &[u8]) -> Result<()> {
        let id = self.emit(piece, BlobKind::Data)?;
        chunks.push(id, |list| self.emit(list, BlobKind::Tree))
    }

    fn finish_chunks(&mut self, chunks: ChunksBuilder) -> Result<FileChunks> {
        chunks.finish(|list| self.emit(list, BlobKind::Tree))
    }
}

/// Whether a SQLite header says the database is in WAL mode (write and read format versions
/// 2, bytes 18 and 19).
fn is_wal(head: &[u8]) -> bool {
    head.len() >= 20 && head[18] == 2 && head[19] == 2
}

/// Counts files and bytes under `paths`, for a progress display's totals.
pub fn scan_totals(paths: &[PathBuf], counters: &Counters) {
    /// Counts `m` if it is a file, or what is under `p` if it is a directory. A directory's
    /// entries are looked at by name in it (`DirEntry::metadata`), as the backup's own walk
    /// does (`stat.rs`), not by their whole path.
    fn count(m: &std::fs::Metadata, p: &Path, totals: &mut (u64, u64)) {
        if m.is_file() {
            totals.0 += 1;
            totals.1 += m.len();
        } else if m.is_dir()
            && let Ok(rd) = std::fs::read_dir(p)
        {
            for e in rd.flatten() {
                if let Ok(m) = e.metadata() {
                    // The path is made only for a directory, the one that needs it.
                    let sub = if m.is_dir() { e.path() } else { PathBuf::new() };
                    count(&m, &sub, totals);
                }
            }
        }
    }
    let mut totals = (0, 0);
    for p in paths {
        if let Ok(m) = std::fs::symlink_metadata(p) {
            count(&m, p, &mut totals);
        }
    }
    counters.set_totals(totals.0, totals.1);
}

/// What the walker reports when the pipeline behind it has failed (that failure's own error,
/// recorded in `Shared`, is the one the backup returns).
fn stopped() -> EngineError {
    EngineError::Invalid("backup stopped".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_replaced_by_a_symlink_is_named_as_such() {
        let e = std::io::Error::from_raw_os_error(libc::ELOOP);
        let m = not_read(Path::new("/data/a.jpg"), &e);
        assert!(
            m.contains("/data/a.jpg") && m.contains("replaced by a symlink"),
            "{m}"
        );
    }
    use arca_crypto::BackupKey;
    use arca_storage::Storage;

    fn pack(n: u32, blobs: u32) -> IndexPack {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&n.to_le_bytes());
        IndexPack {
            id: Id(id),
            size: 1 << 20,
            blobs: (0..blobs)
                .map(|i| {
                    let mut b = [1u8; 32];
                    b[..4].copy_from_slice(&n.to_le_bytes());
                    b[4..8].copy_from_slice(&i.to_le_bytes());
                    BlobEntry {
                        id: Id(b),
                        kind: BlobKind::Data,
                        offset: i * 4096,
                        length: 4096,
                        raw_length: 4096,
                    }
                })
                .collect(),
        }
    }

    /// Three packs of SQLite pages fill an index file by blobs, sixteen small packs by packs,
    /// and what is left at the end gets a file of its own; no pack is lost or listed twice.
    #[test]
    fn index_files_end_at_sixteen_packs_or_8_ki_blobs() {
        let storage = Storage::open("memory://").unwrap();
        let repo = Repository::init(storage, &BackupKey::generate()).unwrap();
        let (tx, rx) = unbounded();
        for n in 0..3 {
            tx.send(pack(n, 4000)).unwrap();
        }
        for n in 3..23 {
            tx.send(pack(n, 1)).unwrap();
        }
        drop(tx);
        indexer(&repo, rx, &Shared::default()).unwrap();
        let mut sizes = Vec::new();
        let mut packs = Vec::new();
        for (id, _) in repo.list_ids(crate::repo::INDEX).unwrap() {
            let file = repo.load_index_file(&id).unwrap();
            let blobs: usize = file.packs.iter().map(|p| p.blobs.len()).sum();
            sizes.push((file.packs.len(), blobs));
            packs.extend(file.packs.iter().map(|p| p.id));
        }
        sizes.sort();
        assert_eq!(sizes, [(3, 12_000), (4, 4), (16, 16)]);
        packs.sort();
        packs.dedup();
        assert_eq!(packs.len(), 23);
    }

    /// The walker reads a file a piece at a time into the buffer of the chunk being cut, looking
    /// for the cut piece by piece ([`ChunkReads`]); it must cut exactly where the cutter cuts the
    /// whole file in memory, or new backups would stop sharing chunks with old ones. The file mixes
    /// random bytes (cuts of every length) with long runs of one byte (no boundary: cuts at the
    /// largest size, in buffers grown past their first room). Its copy "zz" is all chunks already
    /// stored, whose buffers are kept for the next chunk.
    #[test]
    fn the_read_buffer_cuts_where_the_whole_file_is_cut() {
        let storage = Storage::open("memory://").unwrap();
        let repo = Repository::init(storage, &BackupKey::generate()).unwrap();
        let max = repo.cdc().max_size();
        let mut data = Vec::new();
        let mut x = 0x1234_5678_9abc_def0u64;
        for (random, same) in [(7 << 20, 9 << 20), (3 << 20, max + 17), (5 << 20, 0)] {
            data.extend((0..random).map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }));
            data.extend(std::iter::repeat_n((x & 0xff) as u8, same));
        }
        let dir = tempfile::tempdir().unwrap();
        // Small files first ("a".."h" sort before "z"), around a read step, a chunk buffer's
        // first length and the largest chunk.
        let mut files = vec![
            ("z".to_string(), data.clone()),
            ("zz".to_string(), data.clone()),
        ];
        let reads = ChunkReads::new(repo.cdc().avg_size());
        for (i, len) in [
            reads.step - 1,
            reads.step,
            reads.step + 1,
            reads.room - 1,
            reads.room,
            reads.room + 1,
            max,
            max + 1,
        ]
        .into_iter()
        .enumerate()
        {
            files.push((
                format!("{}", (b'a' + i as u8) as char),
                data[len..2 * len].to_vec(),
            ));
        }
        let mut want = std::collections::BTreeSet::new();
        for (name, data) in &files {
            std::fs::write(dir.path().join(name), data).unwrap();
            let mut at = 0;
            while at < data.len() {
                let n = repo.cdc().cut(&data[at..]);
                want.insert(Id(repo.keys().blob_id(&data[at..at + n])));
                at += n;
            }
        }
        assert!(want.len() > 12, "{} chunks", want.len());

        let opts = BackupOptions::new(vec![dir.path().to_path_buf()]);
        backup(&repo, &opts, &Counters::default()).unwrap();
        let mut got = std::collections::BTreeSet::new();
        for (id, _) in repo.list_ids(crate::repo::INDEX).unwrap() {
            for p in repo.load_index_file(&id).unwrap().packs {
                got.extend(
                    p.blobs
                        .iter()
                        .filter(|b| b.kind == BlobKind::Data)
                        .map(|b| b.id),
                );
            }
        }
        assert_eq!(got, want);
    }
}
