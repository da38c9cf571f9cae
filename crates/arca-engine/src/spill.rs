//! The master index's blobs on the device's own disk, for repositories with more blobs than
//! [`Spill::max_entries`].
//!
//! Held in memory, the index costs 52 bytes per blob, and a SQLite database stored page by page
//! makes many blobs: memory would grow with the repository. Past the limit, the entries are
//! sorted in batches of at most `max_entries` ("runs"), written to an unnamed temporary file,
//! and merged into a second one laid out in 4 KiB pages. Memory then holds the first id of each
//! page (32 bytes per 83 blobs) and a lookup reads one page with `pread`; the kernel's page
//! cache, which gives its memory back under pressure, keeps the pages a run uses often.
//!
//! Both files are created with `O_TMPFILE` where the system has it (unnamed, gone when arca
//! exits, however it exits) in the repository's cache folder on this device. They hold what the
//! index files hold (blob ids, which are keyed hashes, and pack positions and lengths), never
//! file names or contents. The layout is private to one run of arca, so it has no version byte.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use arca_format::blob::BlobKind;
use arca_format::id::Id;

use crate::index::Location;
use crate::{EngineError, Result};

/// Where and past how many blobs the master index moves to disk.
#[derive(Clone, Debug)]
pub struct Spill {
    /// A folder on this device's disk (not a tmpfs, which is memory).
    pub dir: PathBuf,
    /// Blobs held in memory (52 bytes each) before the index moves to disk.
    pub max_entries: usize,
}

/// The default limit: 16 Ki blobs, 0.8 MiB. A SQLite database of 64 MB in 4 KiB pages alone
/// passes it. Measured: a restore of 2.1 GiB (40 k blobs) took the same CPU time with the index
/// on disk as in memory, and a no-change backup of 8.3 GiB peaked at 21–22 MiB against
/// 26–27 MiB with 64 Ki blobs in memory.
pub const DEFAULT_MAX_ENTRIES: usize = 1 << 14;

impl Default for Spill {
    fn default() -> Self {
        Spill {
            dir: std::env::temp_dir(),
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// One entry: id, pack position, offset, length, raw length, kind.
const ENTRY: usize = 32 + 4 * 4 + 1;
const PAGE: usize = 4096;
const PER_PAGE: usize = PAGE / ENTRY;
/// Bytes read ahead from each run while merging.
const RUN_BUF: usize = 64 * ENTRY * 8;

fn encode(id: &Id, l: &Location, out: &mut [u8]) {
    out[..32].copy_from_slice(&id.0);
    out[32..36].copy_from_slice(&l.pack.to_le_bytes());
    out[36..40].copy_from_slice(&l.offset.to_le_bytes());
    out[40..44].copy_from_slice(&l.length.to_le_bytes());
    out[44..48].copy_from_slice(&l.raw_length.to_le_bytes());
    out[48] = l.kind as u8;
}

fn decode(b: &[u8]) -> (Id, Location) {
    let u = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    let id = Id(b[..32].try_into().expect("32 bytes"));
    let kind = if b[48] == BlobKind::Tree as u8 {
        BlobKind::Tree
    } else {
        BlobKind::Data
    };
    let loc = Location {
        pack: u(32),
        offset: u(36),
        length: u(40),
        raw_length: u(44),
        kind,
    };
    (id, loc)
}

/// The error of a failed read or write of a scratch file in `dir`.
pub(crate) fn scratch_error(dir: &Path, e: std::io::Error) -> EngineError {
    EngineError::Invalid(format!(
        "arca's scratch file in {} failed: {e}. While arca runs, it holds the index of a \
         large repository, or the ids of what a large backup has stored so far; free some \
         space there and try again, or raise ARCA_INDEX_IN_MEMORY (blobs) to keep them in \
         memory",
        dir.display()
    ))
}

/// An unnamed temporary file in `dir`, or in the system's temporary folder if `dir` cannot be
/// made.
pub(crate) fn scratch_file(dir: &Path) -> Result<(File, PathBuf)> {
    if std::fs::create_dir_all(dir).is_ok()
        && let Ok(f) = tempfile::tempfile_in(dir)
    {
        return Ok((f, dir.to_path_buf()));
    }
    let tmp = std::env::temp_dir();
    let f = tempfile::tempfile_in(&tmp).map_err(|e| scratch_error(&tmp, e))?;
    tracing::warn!(
        "cannot make a scratch file in {}; scratch files go to {}",
        dir.display(),
        tmp.display()
    );
    Ok((f, tmp))
}

/// Sorted runs of entries, written one after another to one scratch file.
pub(crate) struct Runs {
    file: BufWriter<File>,
    dir: PathBuf,
    /// Each run's first entry and length, in entries.
    runs: Vec<(u64, u64)>,
    written: u64,
}

impl Runs {
    pub fn new(dir: &Path) -> Result<Self> {
        let (file, dir) = scratch_file(dir)?;
        Ok(Runs {
            file: BufWriter::with_capacity(1 << 16, file),
            dir,
            runs: Vec::new(),
            written: 0,
        })
    }

    /// Writes one run: `sorted` must be sorted by id and hold each id once.
    pub fn push(&mut self, sorted: &[(Id, Location)]) -> Result<()> {
        let mut e = [0u8; ENTRY];
        for (id, l) in sorted {
            encode(id, l, &mut e);
            self.file
                .write_all(&e)
                .map_err(|err| scratch_error(&self.dir, err))?;
        }
        self.runs.push((self.written, sorted.len() as u64));
        self.written += sorted.len() as u64;
        Ok(())
    }

    /// Merges the runs into a paged index. Of an id in several runs, the entry with the lowest
    /// pack position is kept (the pack loaded first, as in memory).
    pub fn merge(self) -> Result<DiskIndex> {
        let dir = self.dir;
        let file = self
            .file
            .into_inner()
            .map_err(|e| scratch_error(&dir, e.into_error()))?;
        let mut readers: Vec<RunReader> = self
            .runs
            .iter()
            .map(|&(start, len)| RunReader {
                next: start * ENTRY as u64,
                end: (start + len) * ENTRY as u64,
                buf: Vec::new(),
                pos: 0,
            })
            .collect();
        // The heap orders each run's next entry by id, then pack, then run; `heads` holds
        // where that entry's blob is.
        let mut heap = BinaryHeap::new();
        let mut heads = Vec::with_capacity(readers.len());
        for (i, r) in readers.iter_mut().enumerate() {
            let head = r.next(&file, &dir)?;
            if let Some((id, l)) = head {
                heap.push(Reverse((id, l.pack, i)));
            }
            heads.push(head.map(|(_, l)| l));
        }
        let (out, _) = scratch_file(&dir)?;
        let mut pages = PageWriter {
            out: BufWriter::with_capacity(1 << 16, out),
            page: [0u8; PAGE],
            in_page: 0,
            fences: Vec::new(),
            len: 0,
        };
        let mut last: Option<Id> = None;
        while let Some(Reverse((id, _, i))) = heap.pop() {
            let l = heads[i].expect("a run in the heap has a head");
            if last != Some(id) {
                pages.push(&id, &l).map_err(|e| scratch_error(&dir, e))?;
                last = Some(id);
            }
            let next = readers[i].next(&file, &dir)?;
            if let Some((id, l)) = next {
                heap.push(Reverse((id, l.pack, i)));
            }
            heads[i] = next.map(|(_, l)| l);
        }
        pages.finish(dir)
    }
}

/// Reads one run ahead, a buffer at a time.
struct RunReader {
    next: u64,
    end: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl RunReader {
    fn next(&mut self, file: &File, dir: &Path) -> Result<Option<(Id, Location)>> {
        if self.pos == self.buf.len() {
            let n = (self.end - self.next).min(RUN_BUF as u64) as usize;
            if n == 0 {
                return Ok(None);
            }
            self.buf.resize(n, 0);
            file.read_exact_at(&mut self.buf, self.next)
                .map_err(|e| scratch_error(dir, e))?;
            self.next += n as u64;
            self.pos = 0;
        }
        let e = decode(&self.buf[self.pos..self.pos + ENTRY]);
        self.pos += ENTRY;
        Ok(Some(e))
    }
}

struct PageWriter {
    out: BufWriter<File>,
    page: [u8; PAGE],
    in_page: usize,
    fences: Vec<Id>,
    len: usize,
}

impl PageWriter {
    fn push(&mut self, id: &Id, l: &Location) -> std::io::Result<()> {
        if self.in_page == 0 {
            self.fences.push(*id);
        }
        encode(id, l, &mut self.page[self.in_page * ENTRY..][..ENTRY]);
        self.in_page += 1;
        self.len += 1;
        if self.in_page == PER_PAGE {
            self.out.write_all(&self.page)?;
            self.in_page = 0;
        }
        Ok(())
    }

    fn finish(mut self, dir: PathBuf) -> Result<DiskIndex> {
        if self.in_page > 0 {
            self.out
                .write_all(&self.page[..self.in_page * ENTRY])
                .map_err(|e| scratch_error(&dir, e))?;
        }
        let file = self
            .out
            .into_inner()
            .map_err(|e| scratch_error(&dir, e.into_error()))?;
        self.fences.shrink_to_fit();
        Ok(DiskIndex {
            file,
            dir,
            fences: self.fences,
            len: self.len,
        })
    }
}

/// A sorted index in 4 KiB pages on disk, with each page's first id in memory.
pub(crate) struct DiskIndex {
    file: File,
    dir: PathBuf,
    fences: Vec<Id>,
    len: usize,
}

impl std::fmt::Debug for DiskIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DiskIndex({} blobs in {})", self.len, self.dir.display())
    }
}

impl DiskIndex {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Reads page `p` into `buf`; returns its entries' bytes.
    fn page<'b>(&self, p: usize, buf: &'b mut [u8; PAGE]) -> Result<&'b [u8]> {
        let n = PER_PAGE.min(self.len - p * PER_PAGE);
        let bytes = &mut buf[..n * ENTRY];
        self.file
            .read_exact_at(bytes, (p * PAGE) as u64)
            .map_err(|e| scratch_error(&self.dir, e))?;
        Ok(bytes)
    }

    pub fn get(&self, id: &Id) -> Result<Option<Location>> {
        let p = self.fences.partition_point(|f| f <= id);
        if p == 0 {
            return Ok(None);
        }
        let mut buf = [0u8; PAGE];
        let bytes = self.page(p - 1, &mut buf)?;
        let entries = bytes.len() / ENTRY;
        let (mut lo, mut hi) = (0, entries);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let e = &bytes[mid * ENTRY..][..ENTRY];
            match e[..32].cmp(&id.0[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(decode(e).1)),
            }
        }
        Ok(None)
    }

    /// Calls `f` with every entry, in id order.
    pub fn for_each(&self, mut f: impl FnMut(&Id, &Location)) -> Result<()> {
        let mut buf = [0u8; PAGE];
        for p in 0..self.fences.len() {
            let bytes = self.page(p, &mut buf)?;
            for e in bytes.chunks_exact(ENTRY) {
                let (id, l) = decode(e);
                f(&id, &l);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32) -> (Id, Location) {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&n.to_be_bytes());
        let loc = Location {
            pack: n % 7,
            offset: n,
            length: n + 1,
            raw_length: n + 2,
            kind: if n % 2 == 0 {
                BlobKind::Data
            } else {
                BlobKind::Tree
            },
        };
        (Id(id), loc)
    }

    /// Runs whose lengths cross page boundaries merge into pages that hold every entry once,
    /// in order; the first and last entries of a page and ids between pages are found right.
    #[test]
    fn runs_merge_into_pages_that_answer_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Runs::new(dir.path()).unwrap();
        // Even numbers in one run, multiples of 3 in another (some ids in both), the rest of
        // 0..1000 in a third.
        let even: Vec<_> = (0..1000).filter(|n| n % 2 == 0).map(entry).collect();
        let three: Vec<_> = (0..1000).filter(|n| n % 3 == 0).map(entry).collect();
        let rest: Vec<_> = (0..1000)
            .filter(|n| n % 2 != 0 && n % 3 != 0)
            .map(entry)
            .collect();
        for r in [&even, &three, &rest] {
            runs.push(r).unwrap();
        }
        let disk = runs.merge().unwrap();
        assert_eq!(disk.len(), 1000);
        let mut all = Vec::new();
        disk.for_each(|id, l| all.push((*id, *l))).unwrap();
        assert_eq!(all, (0..1000).map(entry).collect::<Vec<_>>());
        for n in [0, 1, 82, 83, 84, 165, 166, 998, 999] {
            let (id, l) = entry(n);
            assert_eq!(disk.get(&id).unwrap(), Some(l), "entry {n}");
            let mut after = id;
            after.0[31] = 1;
            assert_eq!(disk.get(&after).unwrap(), None, "after entry {n}");
        }
        assert_eq!(disk.get(&entry(1000).0).unwrap(), None);
        // Nothing is left in the folder: the scratch files have no names.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// A folder that cannot be made (a file is in the way) sends the scratch file to the
    /// system's temporary folder instead of failing the run.
    #[test]
    fn an_unusable_folder_falls_back_to_the_temporary_folder() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, b"x").unwrap();
        let mut runs = Runs::new(&blocked.join("cache")).unwrap();
        runs.push(&[entry(1), entry(2)]).unwrap();
        let disk = runs.merge().unwrap();
        assert_eq!(disk.get(&entry(2).0).unwrap(), Some(entry(2).1));
        assert_eq!(disk.dir, std::env::temp_dir());
    }
}
