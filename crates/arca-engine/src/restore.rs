//! Restore: rebuild a snapshot's files under a target folder.
//!
//! Directories, symlinks and special files are made while walking the trees; regular files are
//! handed, as the walk meets them, to several threads that write them (a bounded queue, so
//! memory does not grow with the number of files). Each file is written to a temporary name
//! beside its final one, every chunk is authenticated and checked against its id before it is
//! written, and only a complete file is renamed into place: an interrupted restore never leaves
//! a half file under the real name. Reads of chunks that sit next to each other in a pack are
//! merged. Nothing is written through a symlink found in the target (see `make_dir` and the
//! temporary file's `O_EXCL`); docs/SECURITY.md says what a concurrent writer can still do.
//!
//! A restore run again into the same target (after an interruption) skips the files that are
//! already there whole: a file with the right size and modification time is read back chunk by
//! chunk, each chunk's keyed hash compared with the id the tree records, and left as it is only
//! if every one matches. Nothing is downloaded for it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use arca_format::blob::{BlobKind, open_blob_in_place};
use arca_format::id::Id;
use arca_format::tree::{Content, Node};
use arca_storage::{AlignedBuf, DirectWriter, RangeBuf, WriteMode};

use crate::browse::components;
use crate::chunks::FileChunks;
use crate::index::{Location, MasterIndex};
use crate::progress::Counters;
use crate::repo::{Repository, pack_path, reread_on_damage};
use crate::{EngineError, Result};

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    pub target: PathBuf,
    /// Paths inside the snapshot to restore (with or without a leading `/`); empty: everything.
    pub includes: Vec<Vec<u8>>,
    pub threads: usize,
}

#[derive(Clone, Debug, Default)]
pub struct RestoreReport {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// Files that an earlier, interrupted restore had already written whole (verified, kept).
    pub skipped_files: u64,
    pub skipped_bytes: u64,
    pub warnings: Vec<String>,
}

struct FileJob {
    path: PathBuf,
    /// The file's node, for its times, mode and owner; its content is in `size` and `chunks`.
    node: Node,
    size: u64,
    chunks: FileChunks,
}

/// Largest merged read.
const MAX_RUN: u64 = 8 << 20;

enum Want {
    All,
    Descend,
    No,
}

fn wanted(includes: &[Vec<Vec<u8>>], path: &[Vec<u8>]) -> Want {
    if includes.is_empty() {
        return Want::All;
    }
    let mut descend = false;
    for inc in includes {
        if path.len() >= inc.len() && path[..inc.len()] == inc[..] {
            return Want::All;
        }
        if inc.len() > path.len() && inc[..path.len()] == path[..] {
            descend = true;
        }
    }
    if descend { Want::Descend } else { Want::No }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Files queued between the walk of the trees and the threads that write them.
const QUEUE: usize = 64;

pub fn restore(
    repo: &Repository,
    index: &MasterIndex,
    root: &Id,
    opts: &RestoreOptions,
    counters: &Counters,
) -> Result<RestoreReport> {
    std::fs::create_dir_all(&opts.target).map_err(|e| EngineError::io(&opts.target, e))?;
    let includes: Vec<Vec<Vec<u8>>> = opts
        .includes
        .iter()
        .map(|i| components(i).into_iter().map(|c| c.to_vec()).collect())
        .collect();
    let failed = AtomicBool::new(false);
    let root_user = is_root();
    let mut plan = Plan {
        repo,
        index,
        includes,
        sink: None,
        failed: &failed,
        stopped: false,
        found: (0, 0),
        matched: false,
        dirs: Vec::new(),
        report: RestoreReport::default(),
        root_user,
    };
    // A first walk only counts, for the progress totals and to refuse an --include that
    // matches nothing before anything is written. The second makes directories, links and
    // special files, and hands the files to the writing threads as it meets them: the files
    // are never all held in memory at once (a snapshot of 28 k files made the peak grow by
    // about 9 MiB from 2 to 17 GiB).
    plan.walk(root, &opts.target, &mut Vec::new())?;
    if !opts.includes.is_empty() && !plan.matched {
        return Err(EngineError::NotFound(
            "nothing in this backup matches the --include paths; `arca ls` shows what it holds"
                .into(),
        ));
    }
    counters.set_totals(plan.found.0, plan.found.1);
    plan.found = (0, 0);

    let error: Mutex<Option<EngineError>> = Mutex::new(None);
    let done_files = AtomicU64::new(0);
    let skipped_bytes = AtomicU64::new(0);
    let kept_files = AtomicU64::new(0);
    let kept_bytes = AtomicU64::new(0);
    let warnings: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let (tx, rx) = crossbeam_channel::bounded::<FileJob>(QUEUE);
    let walked = std::thread::scope(|s| {
        for _ in 0..opts.threads.max(1) {
            let rx = rx.clone();
            let (failed, error, warnings) = (&failed, &error, &warnings);
            let (done_files, skipped_bytes) = (&done_files, &skipped_bytes);
            let (kept_files, kept_bytes) = (&kept_files, &kept_bytes);
            s.spawn(move || {
                // One read and one write buffer per thread, reused for every file it writes.
                let mut bufs = Buffers::default();
                while let Ok(job) = rx.recv() {
                    if failed.load(Relaxed) {
                        break;
                    }
                    match restore_file(repo, index, &job, counters, root_user, &mut bufs) {
                        Ok((w, kept)) => {
                            done_files.fetch_add(1, Relaxed);
                            if kept {
                                kept_files.fetch_add(1, Relaxed);
                                kept_bytes.fetch_add(job.size, Relaxed);
                            }
                            counters.add(1, 0);
                            if let Some(w) = w {
                                warnings.lock().unwrap_or_else(|p| p.into_inner()).push(w);
                            }
                        }
                        Err(EngineError::Io { source, .. })
                            if source.raw_os_error() == Some(libc::ENAMETOOLONG) =>
                        {
                            skipped_bytes.fetch_add(job.size, Relaxed);
                            warnings
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(too_long(&job.path, &source));
                        }
                        Err(e) => {
                            let e = match e {
                                EngineError::Io { source, .. }
                                    if source.raw_os_error() == Some(libc::ENOSPC)
                                        || source.raw_os_error() == Some(libc::EDQUOT) =>
                                {
                                    // `restored` is counted once every thread has stopped.
                                    EngineError::TargetFull {
                                        path: job.path.clone(),
                                        restored: 0,
                                    }
                                }
                                other => other,
                            };
                            let mut g = error.lock().unwrap_or_else(|p| p.into_inner());
                            if g.is_none() {
                                *g = Some(e);
                            }
                            failed.store(true, Relaxed);
                        }
                    }
                }
            });
        }
        drop(rx);
        plan.sink = Some(tx);
        let walked = plan.walk(root, &opts.target, &mut Vec::new());
        // Closing the queue lets the threads finish what is in it and stop.
        plan.sink = None;
        if walked.is_err() {
            failed.store(true, Relaxed);
        }
        walked
    });
    if let Some(mut e) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        if let EngineError::TargetFull { restored, .. } = &mut e {
            *restored = done_files.load(Relaxed);
        }
        return Err(e);
    }
    walked?;
    plan.report.files += done_files.load(Relaxed);
    plan.report.skipped_files = kept_files.load(Relaxed);
    plan.report.skipped_bytes = kept_bytes.load(Relaxed);
    plan.report.bytes += plan.found.1 - skipped_bytes.load(Relaxed);
    plan.report
        .warnings
        .extend(warnings.into_inner().unwrap_or_else(|p| p.into_inner()));
    // Directory times and modes last, deepest first, since writing inside changes them.
    for (path, node) in plan.dirs.iter().rev() {
        let of = MetaOf::Path {
            path,
            symlink: false,
        };
        set_meta(of, node, plan.root_user, &mut plan.report.warnings);
    }
    Ok(plan.report)
}

struct Plan<'a> {
    repo: &'a Repository,
    index: &'a MasterIndex,
    includes: Vec<Vec<Vec<u8>>>,
    /// Where files go to be written; `None` on the walk that only counts.
    sink: Option<crossbeam_channel::Sender<FileJob>>,
    /// Set when a writing thread failed: the walk stops.
    failed: &'a AtomicBool,
    stopped: bool,
    /// Files met (and handed on, when there is a sink), and their bytes.
    found: (u64, u64),
    /// Whether the includes select any entry, of any kind; found on the walk that only counts.
    matched: bool,
    dirs: Vec<(PathBuf, Node)>,
    report: RestoreReport,
    root_user: bool,
}

impl Plan<'_> {
    fn walk(&mut self, tree: &Id, dir: &Path, inner: &mut Vec<Vec<u8>>) -> Result<()> {
        let tree = self.repo.read_tree(self.index, tree)?;
        let counting = self.sink.is_none();
        for node in tree.nodes {
            if self.stopped {
                break;
            }
            inner.push(node.name.clone());
            let want = wanted(&self.includes, inner);
            self.matched |= counting && matches!(want, Want::All);
            let path = dir.join(OsStr::from_bytes(&node.name));
            match (&node.content, want) {
                (_, Want::No) => {}
                (Content::Dir { tree }, w) => {
                    if !counting {
                        match make_dir(&path) {
                            Ok(()) => {}
                            Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => {
                                self.report.warnings.push(too_long(&path, &e));
                                inner.pop();
                                continue;
                            }
                            Err(e) => return Err(EngineError::io(&path, e)),
                        }
                        self.report.dirs += 1;
                    }
                    let tree = *tree;
                    self.walk(&tree, &path, inner)?;
                    if !counting && matches!(w, Want::All) {
                        self.dirs.push((path, node));
                    }
                }
                (_, Want::Descend) => {}
                (Content::File { .. } | Content::LongFile { .. }, Want::All) => {
                    let mut node = node;
                    let content = std::mem::replace(&mut node.content, Content::Fifo);
                    let (size, chunks) =
                        FileChunks::from_content(content).expect("matched as a file");
                    self.found.0 += 1;
                    self.found.1 += size;
                    if let Some(tx) = &self.sink {
                        let job = FileJob {
                            path,
                            node,
                            size,
                            chunks,
                        };
                        if self.failed.load(Relaxed) || tx.send(job).is_err() {
                            self.stopped = true;
                        }
                    }
                }
                (_, Want::All) if counting => {}
                (Content::Symlink { target }, Want::All) => {
                    let _ = std::fs::remove_file(&path);
                    match std::os::unix::fs::symlink(OsStr::from_bytes(target), &path) {
                        Ok(()) => set_meta(
                            MetaOf::Path {
                                path: &path,
                                symlink: true,
                            },
                            &node,
                            self.root_user,
                            &mut self.report.warnings,
                        ),
                        Err(e) => self
                            .report
                            .warnings
                            .push(format!("could not create symlink {}: {e}", path.display())),
                    }
                    self.report.files += 1;
                }
                (special, Want::All) => {
                    let kind = match special {
                        Content::Fifo => libc::S_IFIFO,
                        Content::Socket => libc::S_IFSOCK,
                        Content::CharDevice { .. } => libc::S_IFCHR,
                        _ => libc::S_IFBLK,
                    };
                    let rdev = match special {
                        Content::CharDevice { rdev } | Content::BlockDevice { rdev } => *rdev,
                        _ => 0,
                    };
                    let _ = std::fs::remove_file(&path);
                    match mknod(&path, kind | (node.mode & 0o7777), rdev) {
                        Ok(()) => set_meta(
                            MetaOf::Path {
                                path: &path,
                                symlink: false,
                            },
                            &node,
                            self.root_user,
                            &mut self.report.warnings,
                        ),
                        Err(e) => self.report.warnings.push(format!(
                            "could not create special file {}: {e}",
                            path.display()
                        )),
                    }
                    self.report.files += 1;
                }
            }
            inner.pop();
        }
        Ok(())
    }
}

/// Makes the folder `path`, or keeps the folder already there. Anything else under that name
/// (a symlink above all, even one to a folder, or a file) is removed first, as a file, a
/// symlink or a special file of the backup replaces what is at its name: a restore never
/// writes through a symlink it finds in the target.
fn make_dir(path: &Path) -> std::io::Result<()> {
    match std::fs::create_dir(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if std::fs::symlink_metadata(path)?.is_dir() {
                return Ok(());
            }
            std::fs::remove_file(path)?;
            std::fs::create_dir(path)
        }
        other => other,
    }
}

fn mknod(path: &Path, mode: u32, rdev: u64) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path contains NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let r = unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, rdev as libc::dev_t) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What `set_meta` sets the owner, mode and times of.
#[derive(Clone, Copy)]
enum MetaOf<'a> {
    /// A name, looked up for each (a symlink's own times; a symlink has no mode of its own).
    Path { path: &'a Path, symlink: bool },
    /// A file still open: no lookup at all. `path` is the name the warnings give.
    File { file: &'a File, path: &'a Path },
}

fn set_meta(of: MetaOf<'_>, node: &Node, root_user: bool, warnings: &mut Vec<String>) {
    let (path, symlink) = match of {
        MetaOf::Path { path, symlink } => (path, symlink),
        MetaOf::File { path, .. } => (path, false),
    };
    // The owner first: a change of owner clears the set-user-ID and set-group-ID bits.
    if root_user {
        let (uid, gid) = (Some(node.uid), Some(node.gid));
        let set = match of {
            MetaOf::Path { path, .. } => std::os::unix::fs::lchown(path, uid, gid),
            MetaOf::File { file, .. } => std::os::unix::fs::fchown(file, uid, gid),
        };
        if let Err(e) = set {
            warnings.push(format!(
                "could not set the owner of {}: {e}",
                path.display()
            ));
        }
    }
    if !symlink {
        let mode = std::fs::Permissions::from_mode(node.mode & 0o7777);
        let set = match of {
            MetaOf::Path { path, .. } => std::fs::set_permissions(path, mode),
            MetaOf::File { file, .. } => file.set_permissions(mode),
        };
        if let Err(e) = set {
            warnings.push(format!("could not set the mode of {}: {e}", path.display()));
        }
    }
    let t = filetime::FileTime::from_unix_time(node.mtime, node.mtime_nsec);
    let set = match of {
        MetaOf::Path { path, .. } => filetime::set_symlink_file_times(path, t, t),
        MetaOf::File { file, .. } => filetime::set_file_handle_times(file, Some(t), Some(t)),
    };
    if let Err(e) = set {
        warnings.push(format!("could not set the time of {}: {e}", path.display()));
    }
}

/// The warning for an entry whose path the system cannot take.
fn too_long(path: &Path, e: &std::io::Error) -> String {
    format!(
        "{} is not restored: its path is {} bytes, too long for this system ({e}); restore into a shorter --target",
        path.display(),
        path.as_os_str().len()
    )
}

/// `.NAME.arca-restore` beside `path`; a name too long for that (names may have 255 bytes) is
/// cut short and made unique again with a hash of the whole name.
fn temp_name(path: &Path) -> PathBuf {
    const NAME_MAX: usize = 255;
    const SUFFIX: &[u8] = b".arca-restore";
    let name = path.file_name().unwrap_or_default().as_bytes();
    let mut temp = b".".to_vec();
    if 1 + name.len() + SUFFIX.len() <= NAME_MAX {
        temp.extend_from_slice(name);
    } else {
        let hash = blake3::hash(name).to_hex();
        let keep = NAME_MAX - 1 - SUFFIX.len() - 17;
        temp.extend_from_slice(&name[..keep]);
        temp.push(b'~');
        temp.extend_from_slice(&hash.as_bytes()[..16]);
    }
    temp.extend_from_slice(SUFFIX);
    path.with_file_name(OsStr::from_bytes(&temp))
}

/// Consecutive chunks that lie back to back in one pack.
fn runs<'a>(index: &MasterIndex, chunks: &'a [Id]) -> Result<Vec<(&'a [Id], Vec<Location>)>> {
    let mut out: Vec<(&[Id], Vec<Location>)> = Vec::new();
    let mut start = 0;
    let mut locs: Vec<Location> = Vec::new();
    for (i, id) in chunks.iter().enumerate() {
        let loc = index.get(id)?.ok_or_else(|| {
            EngineError::damaged(
                format!("blob {}", id.short()),
                "it is not in any index (an index file is missing or damaged)",
            )
        })?;
        if let Some(prev) = locs.last() {
            let adjacent = prev.pack == loc.pack
                && prev.offset as u64 + prev.length as u64 == loc.offset as u64;
            if !adjacent || loc.offset as u64 + loc.length as u64 - locs[0].offset as u64 > MAX_RUN
            {
                out.push((&chunks[start..i], std::mem::take(&mut locs)));
                start = i;
            }
        }
        locs.push(loc);
    }
    if !locs.is_empty() {
        out.push((&chunks[start..], locs));
    }
    Ok(out)
}

/// Whether `job.path` already holds the file whole: right size and time, and every chunk's
/// keyed hash equal to the id the tree records.
fn already_restored(repo: &Repository, index: &MasterIndex, job: &FileJob) -> bool {
    let Ok(m) = std::fs::symlink_metadata(&job.path) else {
        return false;
    };
    if !m.is_file()
        || m.len() != job.size
        || m.mtime() != job.node.mtime
        || m.mtime_nsec() as u32 != job.node.mtime_nsec
    {
        return false;
    }
    let Ok(mut f) = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&job.path)
    else {
        return false;
    };
    let mut buf = Vec::new();
    let same = job.chunks.for_each_stretch(repo, index, |chunks| {
        for id in chunks {
            let Ok(Some(loc)) = index.get(id) else {
                return Err(differs());
            };
            buf.resize(loc.raw_length as usize, 0);
            if f.read_exact(&mut buf).is_err() || Id(repo.keys().blob_id(&buf)) != *id {
                return Err(differs());
            }
        }
        Ok(())
    });
    same.is_ok() && matches!(f.read(&mut [0u8; 1]), Ok(0))
}

/// Stops `already_restored`'s comparison at the first difference (or unreadable list, in which
/// case the file is restored and the restore reports the damage).
fn differs() -> EngineError {
    EngineError::Invalid("differs".into())
}

/// A restore thread's buffers, kept from file to file: one for the runs it reads, one that
/// gathers what it writes.
struct Buffers {
    read: RangeBuf,
    write: AlignedBuf,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            read: RangeBuf::new(),
            write: AlignedBuf::new(WRITE_BUF),
        }
    }
}

/// Size of the buffer that gathers a file's chunks into writes: SQLite pages of 4 KiB into
/// larger writes, and whole aligned blocks for `O_DIRECT`.
const WRITE_BUF: usize = 1 << 20;

/// Files at least this large are written as [`arca_storage::large_writes`] says (streamed, or
/// past the page cache: see [`arca_storage::DirectWriter`]), and are on the disk when they get
/// their name; smaller ones through the cache, so that a folder of small files does not wait
/// for the device at each one. With `O_DIRECT`, restores of the benchmark corpus were as fast
/// with 64 KiB as with every file direct, and slower with 256 KiB or 1 MiB. Streamed, 1 MiB
/// left about 0.6 GB more in the cache for `sync` to write, for a restore as long until on the
/// disk (BENCHMARKS.md, session 17).
const LARGE_FROM: u64 = 64 << 10;

/// Restores one file; returns a warning, if any, and whether the file was already there whole.
fn restore_file(
    repo: &Repository,
    index: &MasterIndex,
    job: &FileJob,
    counters: &Counters,
    root_user: bool,
    bufs: &mut Buffers,
) -> Result<(Option<String>, bool)> {
    if already_restored(repo, index, job) {
        counters.add(0, job.size);
        let mut warnings = Vec::new();
        let of = MetaOf::Path {
            path: &job.path,
            symlink: false,
        };
        set_meta(of, &job.node, root_user, &mut warnings);
        return Ok(((!warnings.is_empty()).then(|| warnings.join("; ")), true));
    }
    let tmp = temp_name(&job.path);
    let result = (|| -> Result<Vec<String>> {
        let buf = &mut bufs.read;
        // The temporary file must be new: `O_EXCL` fails on anything at that name, a symlink
        // planted there too, so no byte is written through one. Whatever is there (a file left
        // by an interrupted restore) is removed and the file made again; only then, so that a
        // restore does not pay a removal for every file.
        let mut options = File::options();
        options.write(true).create_new(true);
        let mode = match job.size >= LARGE_FROM {
            true => arca_storage::large_writes(),
            false => WriteMode::Cached,
        };
        let mut f = match DirectWriter::open(&options, &tmp, &mut bufs.write, mode) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::remove_file(&tmp)
                .and_then(|()| DirectWriter::open(&options, &tmp, &mut bufs.write, mode)),
            other => other,
        }
        .map_err(|e| EngineError::io(&tmp, e))?;
        let mut written = 0u64;
        job.chunks.for_each_stretch(repo, index, |chunks| {
            for (ids, locs) in runs(index, chunks)? {
                let (pack, _) = index.pack(&locs[0]);
                let ppath = pack_path(&pack);
                let first = locs[0].offset as u64;
                let last = locs.last().expect("run is not empty");
                let len = last.offset as u64 + last.length as u64 - first;
                // The whole run is authenticated before any of it is written, so that a run read
                // again after a corrupted answer is written once.
                // Blobs are opened where they lie in the run's buffer: a stored chunk is written
                // straight from there, with no copy.
                let plains = reread_on_damage(|| {
                    repo.read_pack_range_into(&pack, first, len, buf)?;
                    let bytes = &mut *buf;
                    let mut plains = Vec::with_capacity(ids.len());
                    for (id, loc) in ids.iter().zip(&locs) {
                        if loc.kind != BlobKind::Data {
                            return Err(EngineError::damaged(
                                format!("blob {}", id.short()),
                                "the index lists a tree where file data was expected",
                            ));
                        }
                        let at = (loc.offset as u64 - first) as usize;
                        let sealed = &mut bytes[at..at + loc.length as usize];
                        let plain = open_blob_in_place(
                            repo.keys(),
                            BlobKind::Data,
                            id,
                            sealed,
                            loc.raw_length as usize,
                        )
                        .map_err(|e| {
                            EngineError::damaged(format!("{ppath} (blob {})", id.short()), e)
                        })?;
                        plains.push((at, plain));
                    }
                    Ok(plains)
                })?;
                for (at, plain) in &plains {
                    let plain = plain.get(&buf[*at..]);
                    f.write_all(plain).map_err(|e| EngineError::io(&tmp, e))?;
                    written += plain.len() as u64;
                    counters.add(0, plain.len() as u64);
                }
            }
            Ok(())
        })?;
        if written != job.size {
            return Err(EngineError::damaged(
                format!("the tree entry for {}", job.path.display()),
                format!(
                    "its chunks hold {written} bytes but it records {}",
                    job.size
                ),
            ));
        }
        let file = f.finish().map_err(|e| EngineError::io(&tmp, e))?;
        let mut warnings = Vec::new();
        let of = MetaOf::File {
            file: &file,
            path: &job.path,
        };
        set_meta(of, &job.node, root_user, &mut warnings);
        Ok(warnings)
    })();
    let warnings = match result {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if let Err(e) = std::fs::rename(&tmp, &job.path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(EngineError::io(&job.path, e));
    }
    Ok(((!warnings.is_empty()).then(|| warnings.join("; ")), false))
}
