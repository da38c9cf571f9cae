//! A set of 128-bit keys on this device's disk: the ids a large backup has sent (`sent.rs`),
//! once there are more of them than memory is given for.
//!
//! Keys arrive in sorted batches; each batch becomes a run in its own unnamed scratch file,
//! 16 bytes per key, in order. Memory holds, per run, the first key of each 4 KiB page (one per
//! 256 keys) and a Bloom filter (10 bits per key, 7 probes: about one false "maybe" in 120), so
//! a key is looked for on disk only when a filter says it may be there, with one `pread` of one
//! page. Runs are merged two by two as a binary counter does (a run is merged into the one before
//! it once that one is no larger), so there are at most about log2(keys / batch) runs and each
//! key is rewritten about as many times.
//!
//! Keys are the first 128 bits of keyed BLAKE3 ids, so they are uniform: the filter's probes are
//! taken from the key itself, with no further hashing. The files hold what the index files hold
//! (blob ids), never file names or contents; their layout is private to one run of arca, so it
//! has no version byte.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::Result;
use crate::spill::{scratch_error, scratch_file};

const KEY: usize = 16;
const PAGE: usize = 4096;
const PER_PAGE: usize = PAGE / KEY;
const BLOOM_BITS_PER_KEY: usize = 10;
const PROBES: u64 = 7;
/// Bytes read ahead from each run while merging.
const READ_AHEAD: usize = 1 << 16;

/// Sorted runs of keys on disk; see the module's documentation.
pub(crate) struct KeyRuns {
    dir: PathBuf,
    /// Oldest first; each no smaller than the next.
    runs: Vec<Run>,
}

impl std::fmt::Debug for KeyRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeyRuns({} keys in {} runs)",
            self.len(),
            self.runs.len()
        )
    }
}

impl KeyRuns {
    /// An empty set whose scratch files will go to `dir` (or the system's temporary folder if
    /// `dir` cannot be made).
    pub fn new(dir: PathBuf) -> Self {
        KeyRuns {
            dir,
            runs: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.runs.iter().map(|r| r.len).sum()
    }

    pub fn contains(&self, k: u128) -> Result<bool> {
        for r in &self.runs {
            if r.bloom.may_contain(k) && r.contains(k)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Adds `sorted`, which must be sorted, hold each key once and hold none already here.
    pub fn push(&mut self, sorted: &[u128]) -> Result<()> {
        if sorted.is_empty() {
            return Ok(());
        }
        let mut w = RunWriter::new(&self.dir, sorted.len())?;
        for &k in sorted {
            w.push(k)?;
        }
        self.runs.push(w.finish()?);
        while let [.., before, last] = &self.runs[..]
            && before.len <= last.len
        {
            let last = self.runs.pop().expect("two runs");
            let before = self.runs.pop().expect("two runs");
            self.runs.push(merge(&self.dir, before, last)?);
        }
        Ok(())
    }
}

/// One run: its keys in a scratch file, and in memory each page's first key and the filter.
struct Run {
    file: File,
    dir: PathBuf,
    len: usize,
    fences: Vec<u128>,
    bloom: Bloom,
}

impl Run {
    fn contains(&self, k: u128) -> Result<bool> {
        let p = self.fences.partition_point(|f| *f <= k);
        if p == 0 {
            return Ok(false);
        }
        let page = p - 1;
        let n = PER_PAGE.min(self.len - page * PER_PAGE);
        let mut buf = [0u8; PAGE];
        let bytes = &mut buf[..n * KEY];
        self.file
            .read_exact_at(bytes, (page * PAGE) as u64)
            .map_err(|e| scratch_error(&self.dir, e))?;
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match decode(&bytes[mid * KEY..]).cmp(&k) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(true),
            }
        }
        Ok(false)
    }
}

fn decode(b: &[u8]) -> u128 {
    u128::from_le_bytes(b[..KEY].try_into().expect("16 bytes"))
}

struct RunWriter {
    out: BufWriter<File>,
    dir: PathBuf,
    len: usize,
    fences: Vec<u128>,
    bloom: Bloom,
}

impl RunWriter {
    /// A run of at most `capacity` keys (the filter is sized for that many).
    fn new(dir: &Path, capacity: usize) -> Result<Self> {
        let (file, dir) = scratch_file(dir)?;
        Ok(RunWriter {
            out: BufWriter::with_capacity(READ_AHEAD, file),
            dir,
            len: 0,
            fences: Vec::with_capacity(capacity.div_ceil(PER_PAGE)),
            bloom: Bloom::new(capacity),
        })
    }

    fn push(&mut self, k: u128) -> Result<()> {
        if self.len % PER_PAGE == 0 {
            self.fences.push(k);
        }
        self.bloom.insert(k);
        self.out
            .write_all(&k.to_le_bytes())
            .map_err(|e| scratch_error(&self.dir, e))?;
        self.len += 1;
        Ok(())
    }

    fn finish(self) -> Result<Run> {
        let dir = self.dir;
        let file = self
            .out
            .into_inner()
            .map_err(|e| scratch_error(&dir, e.into_error()))?;
        Ok(Run {
            file,
            dir,
            len: self.len,
            fences: self.fences,
            bloom: self.bloom,
        })
    }
}

/// Reads one run in order, a buffer at a time.
struct RunReader<'a> {
    run: &'a Run,
    /// Index of the next key to read from the file.
    next: usize,
    buf: Vec<u8>,
    pos: usize,
}

impl<'a> RunReader<'a> {
    fn new(run: &'a Run) -> Self {
        RunReader {
            run,
            next: 0,
            buf: Vec::new(),
            pos: 0,
        }
    }

    fn next(&mut self) -> Result<Option<u128>> {
        if self.pos == self.buf.len() {
            let n = (self.run.len - self.next).min(READ_AHEAD / KEY);
            if n == 0 {
                return Ok(None);
            }
            self.buf.resize(n * KEY, 0);
            self.run
                .file
                .read_exact_at(&mut self.buf, (self.next * KEY) as u64)
                .map_err(|e| scratch_error(&self.run.dir, e))?;
            self.next += n;
            self.pos = 0;
        }
        let k = decode(&self.buf[self.pos..]);
        self.pos += KEY;
        Ok(Some(k))
    }
}

/// One run holding the keys of both, each once; their files are closed (and, having no names,
/// gone) once it is written.
fn merge(dir: &Path, a: Run, b: Run) -> Result<Run> {
    let mut w = RunWriter::new(dir, a.len + b.len)?;
    let (mut ra, mut rb) = (RunReader::new(&a), RunReader::new(&b));
    let (mut x, mut y) = (ra.next()?, rb.next()?);
    loop {
        // The smaller head goes first; a key in both goes once.
        let k = match (x, y) {
            (Some(p), Some(q)) if q < p => {
                y = rb.next()?;
                q
            }
            (Some(p), q) => {
                x = ra.next()?;
                if q == Some(p) {
                    y = rb.next()?;
                }
                p
            }
            (None, Some(q)) => {
                y = rb.next()?;
                q
            }
            (None, None) => break,
        };
        w.push(k)?;
    }
    w.finish()
}

/// A Bloom filter over uniform 128-bit keys.
struct Bloom {
    words: Vec<u64>,
}

impl Bloom {
    fn new(keys: usize) -> Self {
        let bits = (keys.max(1) * BLOOM_BITS_PER_KEY).next_multiple_of(64);
        Bloom {
            words: vec![0; bits / 64],
        }
    }

    /// The bit positions of `k`: double hashing with the key's two halves.
    fn probes(&self, k: u128) -> impl Iterator<Item = usize> + use<> {
        let bits = (self.words.len() * 64) as u64;
        let (h1, h2) = (k as u64, ((k >> 64) as u64) | 1);
        (0..PROBES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % bits) as usize)
    }

    fn insert(&mut self, k: u128) {
        for b in self.probes(k) {
            self.words[b / 64] |= 1 << (b % 64);
        }
    }

    fn may_contain(&self, k: u128) -> bool {
        self.probes(k)
            .all(|b| self.words[b / 64] & (1 << (b % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> u128 {
        let h = blake3::hash(&n.to_le_bytes());
        u128::from_le_bytes(h.as_bytes()[..16].try_into().unwrap())
    }

    fn sorted(range: std::ops::Range<u64>) -> Vec<u128> {
        let mut v: Vec<u128> = range.map(key).collect();
        v.sort_unstable();
        v
    }

    /// Batches of different sizes (some crossing page edges) merge as a binary counter: few
    /// runs, every key found, in order, once; keys never pushed are absent.
    #[test]
    fn batches_merge_into_few_runs_that_find_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = KeyRuns::new(dir.path().to_path_buf());
        let mut start = 0;
        for (i, size) in [1000u64, 1000, 256, 257, 1, 3000, 999, 4096, 512, 700, 2048]
            .into_iter()
            .enumerate()
        {
            r.push(&sorted(start..start + size)).unwrap();
            start += size;
            assert!(
                r.runs.len() <= 5,
                "{} runs after {} batches",
                r.runs.len(),
                i + 1
            );
            assert!(r.runs.windows(2).all(|w| w[0].len > w[1].len));
        }
        assert_eq!(r.len(), start as usize);
        for run in &r.runs {
            let mut rd = RunReader::new(run);
            let mut prev = None;
            while let Some(k) = rd.next().unwrap() {
                assert!(prev < Some(k), "sorted, each key once");
                prev = Some(k);
            }
        }
        for n in 0..start {
            assert!(r.contains(key(n)).unwrap(), "{n}");
        }
        let absent = (start..start + 20_000)
            .filter(|&n| r.contains(key(n)).unwrap())
            .count();
        assert_eq!(absent, 0);
        // Page edges: the first and last key of each page of the largest run.
        let big = &r.runs[0];
        let mut rd = RunReader::new(big);
        let mut all = Vec::new();
        while let Some(k) = rd.next().unwrap() {
            all.push(k);
        }
        for p in 0..all.len().div_ceil(PER_PAGE) {
            assert!(big.contains(all[p * PER_PAGE]).unwrap());
            let last = (p * PER_PAGE + PER_PAGE - 1).min(all.len() - 1);
            assert!(big.contains(all[last]).unwrap());
            assert!(!big.contains(all[last].wrapping_add(1)).unwrap());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// A folder that cannot be made (a file is in the way) sends the runs to the system's
    /// temporary folder instead of failing the backup.
    #[test]
    fn an_unusable_folder_falls_back_to_the_temporary_folder() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, b"x").unwrap();
        let mut r = KeyRuns::new(blocked.join("cache"));
        r.push(&sorted(0..300)).unwrap();
        assert!(r.contains(key(299)).unwrap());
        assert!(!r.contains(key(300)).unwrap());
        assert_eq!(r.runs[0].dir, std::env::temp_dir());
    }

    /// The filter never misses a key it holds, and says "maybe" for about one in a hundred
    /// keys it does not (10 bits and 7 probes per key: 0.8% in theory).
    #[test]
    fn the_filter_has_no_false_negatives_and_few_false_positives() {
        let mut b = Bloom::new(50_000);
        for n in 0..50_000 {
            b.insert(key(n));
        }
        assert!((0..50_000).all(|n| b.may_contain(key(n))));
        let fp = (50_000..150_000).filter(|&n| b.may_contain(key(n))).count();
        assert!(fp < 1_500, "{fp} false positives in 100 000");
    }
}
