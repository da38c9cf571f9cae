//! Crash safety: `arca backup` is killed with SIGKILL at random moments, and every time the next
//! backup completes, `check` passes, and a restore gives back the source byte for byte.
//!
//! The kills are spread over the whole run of a backup: the delays are drawn up to 90% of the
//! measured length of the last complete backup of the same kind, more often late than early,
//! so they land while files are read and sealed, while packs are written, between the packs and
//! the index, and (rarely: it is a short moment) around the snapshot and the file cache. Each
//! round replaces two of the three large files (20-28 MB of new data, more than a 16 MiB pack)
//! and changes a few small ones; every other round the file cache is dropped so that the whole
//! source (about 60 MB) is read again. After each kill `check` must pass at once; then the next
//! backup must succeed and `check --read-data` pass; every other round (and at the end) the
//! latest snapshot is restored and compared with the source byte for byte.
//!
//! Set `ARCA_CRASH_SEED` to replay a run with another seed.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

const ROUNDS: usize = 20;
/// A full restore and byte comparison every this many rounds (and at the end); `check
/// --read-data` runs every round.
const RESTORE_EVERY: usize = 2;

struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    repo: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("arca-crash-")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        Env {
            config: root.join("device"),
            repo: root.join("repo"),
            root,
            _dir: dir,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        arca(&self.config, &self.repo, args)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and insists on exit 0.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "arca {args:?} failed\n{}",
            show(&out)
        );
        out
    }

    fn cache(&self) -> PathBuf {
        self.config.join("cache")
    }
}

fn arca(config: &Path, repo: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_arca"));
    c.env("ARCA_CONFIG_DIR", config)
        .env("ARCA_REPO", repo)
        .env_remove("ARCA_KEY")
        .env_remove("ARCA_KEY_FILE")
        .env_remove("ARCA_LOG")
        .stdin(Stdio::null())
        .args(args);
    c
}

fn show(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn random_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    v
}

/// Compressible text made of random words.
fn text_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "backup", "restore", "chunk", "pack", "index", "snapshot", "tree", "blob", "key", "vault",
        "cloud", "device", "encrypt", "seal", "dedup", "crash", "sqlite", "page", "journal",
    ];
    let mut v = Vec::with_capacity(n + 64);
    let mut line = 0u64;
    while v.len() < n {
        line += 1;
        write!(v, "{line:08} ").unwrap();
        for _ in 0..rng.gen_range(3..12) {
            v.extend_from_slice(WORDS[rng.gen_range(0..WORDS.len())].as_bytes());
            v.push(b' ');
        }
        v.push(b'\n');
    }
    v.truncate(n);
    v
}

/// About 60 MB: large incompressible files, compressible logs, a half-empty file and many small
/// files in nested folders.
fn make_source(rng: &mut StdRng, src: &Path) {
    let big = src.join("big");
    fs::create_dir_all(&big).unwrap();
    for (name, mib) in [("r1.bin", 16), ("r2.bin", 12), ("r3.bin", 8)] {
        fs::write(big.join(name), random_bytes(rng, mib << 20)).unwrap();
    }
    let logs = src.join("logs");
    fs::create_dir_all(&logs).unwrap();
    for i in 0..5 {
        fs::write(logs.join(format!("log{i}.txt")), text_bytes(rng, 3 << 20)).unwrap();
    }
    let mut mixed = vec![0u8; 2 << 20];
    mixed.extend(random_bytes(rng, 2 << 20));
    fs::write(src.join("mixed.img"), mixed).unwrap();
    for d in 0..10 {
        let dir = src.join("small").join(format!("d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..15 {
            let n = rng.gen_range(1..64) << 10;
            let data = if rng.gen_bool(0.5) {
                random_bytes(rng, n)
            } else {
                text_bytes(rng, n)
            };
            fs::write(dir.join(format!("f{f:03}")), data).unwrap();
        }
    }
    fs::create_dir_all(src.join("small").join("empty-dir")).unwrap();
    std::os::unix::fs::symlink("big/r1.bin", src.join("link-to-r1")).unwrap();
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            files_under(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    out.sort();
}

/// Changes the source so the next backup has new data to store (several MB).
fn mutate(rng: &mut StdRng, src: &Path, round: usize) {
    // Overwrite a window of a large file in place.
    let big = ["r1.bin", "r2.bin", "r3.bin"][rng.gen_range(0..3)];
    let path = src.join("big").join(big);
    let len = fs::metadata(&path).unwrap().len();
    let n = rng.gen_range(1u64 << 20..8 << 20).min(len);
    let at = rng.gen_range(0..=len - n);
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&random_bytes(rng, n as usize)).unwrap();
    drop(f);
    // Replace two of the three large files, so that more than a pack of new data flows and packs
    // are uploaded in the middle of the backup, not only at its end; always about as much, so
    // that one round's backup takes about as long as the last.
    let keep = rng.gen_range(0..3);
    for (i, big) in ["r1.bin", "r2.bin", "r3.bin"].into_iter().enumerate() {
        if i != keep {
            let path = src.join("big").join(big);
            let len = fs::metadata(&path).unwrap().len();
            fs::write(&path, random_bytes(rng, len as usize)).unwrap();
        }
    }
    // Append to a log.
    let log = src
        .join("logs")
        .join(format!("log{}.txt", rng.gen_range(0..5)));
    let n = rng.gen_range(64 << 10..512 << 10);
    let extra = text_bytes(rng, n);
    OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&extra)
        .unwrap();
    // A new file.
    let dir = src
        .join("small")
        .join(format!("d{:02}", rng.gen_range(0..10)));
    let n = rng.gen_range(16 << 10..256 << 10);
    fs::write(dir.join(format!("new-{round:02}")), random_bytes(rng, n)).unwrap();
    // Sometimes delete or truncate a small file.
    let mut small = Vec::new();
    files_under(&src.join("small"), &mut small);
    if rng.gen_bool(0.4) && small.len() > 20 {
        fs::remove_file(&small[rng.gen_range(0..small.len())]).unwrap();
    } else if rng.gen_bool(0.3) {
        let victim = &small[rng.gen_range(0..small.len())];
        let len = fs::metadata(victim).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(victim)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
    }
}

/// Asserts that `restored` holds exactly what `src` holds: the same names, kinds, modes,
/// symlink targets and file bytes.
fn assert_same_tree(src: &Path, restored: &Path) {
    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    }
    let (a, b) = (names(src), names(restored));
    assert_eq!(a, b, "entries of {} differ", restored.display());
    for name in a {
        let (p, q) = (src.join(&name), restored.join(&name));
        let (m, n) = (
            fs::symlink_metadata(&p).unwrap(),
            fs::symlink_metadata(&q).unwrap(),
        );
        let (t, u) = (m.file_type(), n.file_type());
        assert_eq!(
            (t.is_dir(), t.is_file(), t.is_symlink(), t.is_fifo()),
            (u.is_dir(), u.is_file(), u.is_symlink(), u.is_fifo()),
            "kind of {}",
            q.display()
        );
        assert_eq!(m.mode(), n.mode(), "mode of {}", q.display());
        if t.is_dir() {
            assert_same_tree(&p, &q);
        } else if t.is_symlink() {
            assert_eq!(fs::read_link(&p).unwrap(), fs::read_link(&q).unwrap());
        } else if t.is_file() {
            assert_eq!(m.len(), n.len(), "size of {}", q.display());
            assert_eq!(m.mtime(), n.mtime(), "mtime of {}", q.display());
            assert_same_bytes(&p, &q);
        }
    }
}

fn assert_same_bytes(p: &Path, q: &Path) {
    let (mut f, mut g) = (File::open(p).unwrap(), File::open(q).unwrap());
    let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = 0u64;
    loop {
        let n = read_full(&mut f, &mut a);
        let m = read_full(&mut g, &mut b);
        assert!(
            n == m && a[..n] == b[..m],
            "{} differs from {} in the MiB at offset {at}",
            q.display(),
            p.display()
        );
        if n == 0 {
            return;
        }
        at += n as u64;
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// Files in the repository's pack, index and snapshot folders, and its folder of unfinished
/// writes.
fn repo_counts(repo: &Path) -> [usize; 4] {
    fn count(p: &Path) -> usize {
        match fs::read_dir(p) {
            Ok(rd) => rd
                .map(|e| {
                    let e = e.unwrap();
                    if e.file_type().unwrap().is_dir() {
                        count(&e.path())
                    } else {
                        1
                    }
                })
                .sum(),
            Err(_) => 0,
        }
    }
    ["data", "index", "snapshots", ".tmp"].map(|d| count(&repo.join(d)))
}

/// Where a kill landed, told by what the killed run left behind.
fn phase(before: [usize; 4], after: [usize; 4]) -> usize {
    if after[2] > before[2] {
        4 // the snapshot was written: killed while saving the file cache or exiting
    } else if after[1] > before[1] {
        3 // an index was written, not yet the snapshot
    } else if after[0] > before[0] {
        2 // packs were uploaded, not yet indexed
    } else if after[3] > before[3] {
        1 // killed in the middle of writing the first object
    } else {
        0 // nothing written yet: reading the index, walking, cutting, sealing
    }
}
const PHASES: [&str; 5] = [
    "before any write",
    "while writing the first pack",
    "after packs, before the index",
    "after an index, before the snapshot",
    "after the snapshot",
];

/// Restores the latest snapshot and compares it with the source.
fn restore_and_compare(env: &Env, src: &Path) {
    let target = env.root.join("restored");
    let _ = fs::remove_dir_all(&target);
    env.ok(&["restore", "--target", target.to_str().unwrap()]);
    assert_same_tree(src, &target.join(src.strip_prefix("/").unwrap()));
    leftovers(&target);
    fs::remove_dir_all(&target).unwrap();
}

/// No temporary restore files may be left.
fn leftovers(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        assert!(
            !name.to_string_lossy().ends_with(".arca-restore"),
            "leftover temporary file {}",
            e.path().display()
        );
        if e.file_type().unwrap().is_dir() {
            leftovers(&e.path());
        }
    }
}

#[test]
fn backup_survives_sigkill_at_random_moments() {
    let started = Instant::now();
    let seed: u64 = std::env::var("ARCA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00a7_ca5e_ed01);
    eprintln!("seed {seed} (set ARCA_CRASH_SEED to change)");
    let mut rng = StdRng::seed_from_u64(seed);

    let env = Env::new();
    let src = env.root.join("src");
    make_source(&mut rng, &src);
    let src_arg = src.to_str().unwrap().to_string();
    env.ok(&["enable", "--key"]);

    // How long does a complete first backup take? Measured on a scratch device and repository.
    let (scratch_cfg, scratch_repo) = (env.root.join("scratch-dev"), env.root.join("scratch-repo"));
    let out = arca(&scratch_cfg, &scratch_repo, &["enable", "--key"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let t = Instant::now();
    let out = arca(&scratch_cfg, &scratch_repo, &["backup", &src_arg])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let first_backup = t.elapsed();
    fs::remove_dir_all(&scratch_cfg).unwrap();
    fs::remove_dir_all(&scratch_repo).unwrap();
    eprintln!(
        "a first backup of the source takes {:.2}s (setup {:.2}s)",
        first_backup.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // The length of the last complete backup of each kind: [cached, uncached].
    let mut length = [first_backup, first_backup];
    let mut interrupted = 0;
    let mut phases = [0usize; PHASES.len()];
    for round in 0..ROUNDS {
        if round > 0 {
            mutate(&mut rng, &src, round);
        }
        // Every other round, forget which files are unchanged so the whole source is read.
        let uncached = round % 2 == 0;
        if uncached {
            let _ = fs::remove_dir_all(env.cache());
        }
        let max = length[uncached as usize].mul_f64(0.9);
        // Anywhere in the run, but more often late (density 2x on [0, 1]), where packs, the
        // index, the snapshot and the file cache are written; early on it is mostly reading.
        let delay = max.mul_f64(rng.gen_range(0.0f64..1.0).sqrt());

        let before = repo_counts(&env.repo);
        let spawned = Instant::now();
        let mut child = env
            .cmd(&["backup", &src_arg])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let killed = loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "round {round}: the backup failed: {status}"
                );
                // It beat the kill: its own length is the best estimate for the next round.
                length[uncached as usize] = spawned.elapsed();
                break false;
            }
            let left = delay.saturating_sub(spawned.elapsed());
            if left.is_zero() {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                interrupted += 1;
                break true;
            }
            std::thread::sleep(left.min(Duration::from_millis(5)));
        };
        let landed = phase(before, repo_counts(&env.repo));
        if killed {
            phases[landed] += 1;
        }

        // Right after the crash the repository is already consistent (maybe with orphan packs).
        let out = env.run(&["check"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: check after the kill at {delay:?}\n{}",
            show(&out)
        );

        // The next backup completes.
        let t = Instant::now();
        let out = env.run(&["backup", &src_arg]);
        let took = t.elapsed();
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: the backup after the kill at {delay:?} failed\n{}",
            show(&out)
        );
        // After a kill before the snapshot, the next backup redoes the same work.
        if killed && landed < 4 {
            length[uncached as usize] = took;
        }

        env.ok(&["check", "--read-data"]);
        let full = (round + 1) % RESTORE_EVERY == 0 || round + 1 == ROUNDS;
        if full {
            restore_and_compare(&env, &src);
        }
        eprintln!(
            "round {round:2}: {} at {:5.2}s of {:5.2}s ({}); next backup {:5.2}s{}; elapsed {:6.1}s",
            if killed { "killed" } else { "done  " },
            delay.as_secs_f64(),
            max.as_secs_f64(),
            if killed { PHASES[landed] } else { "finished" },
            took.as_secs_f64(),
            if full { "; restored and compared" } else { "" },
            started.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "{interrupted} of {ROUNDS} backups were killed before they finished; total {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for (name, n) in PHASES.iter().zip(phases) {
        eprintln!("  killed {name}: {n}");
    }
    assert!(
        interrupted >= ROUNDS / 2,
        "only {interrupted} of {ROUNDS} kills hit a running backup: the source is too small"
    );
    let out = env.ok(&["--json", "snapshots"]);
    let snapshots: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(snapshots.as_array().unwrap().len() >= ROUNDS);
}
