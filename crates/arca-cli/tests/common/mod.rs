//! Helpers shared by the crash test and the campaigns: a device and repository driven through
//! the real `arca` binary, seeded sources that change from round to round, byte-for-byte tree
//! comparison, and the kill-at-a-random-moment loops.
//!
//! `ARCA_BIN` points the tests at another build of `arca` (the campaigns use a release build);
//! by default they run the binary cargo built for them.

#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore};

/// The `arca` binary under test.
pub fn arca_bin() -> PathBuf {
    match std::env::var_os("ARCA_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_arca")),
    }
}

/// A count from the environment (`name`), or `default`: campaigns set large counts, the
/// regular test suite runs the defaults.
pub fn count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
        Err(_) => default,
    }
}

pub fn seed(name: &str, default: u64) -> u64 {
    let s = std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("seed {s} (set {name} to change)");
    s
}

/// Whether this process may mount filesystems (tmpfs); tests that need it skip otherwise.
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A device (config dir) and a repository, local or remote.
pub struct Env {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub config: PathBuf,
    /// The repository URL or folder.
    pub repo: String,
    /// The repository's folder, when it is local.
    pub repo_dir: Option<PathBuf>,
    /// More environment for every run (S3 endpoint and credentials, tuning).
    pub env: Vec<(String, String)>,
}

impl Env {
    /// A device and a repository in a local folder.
    pub fn local(prefix: &str) -> Env {
        let mut e = Env::remote(prefix, String::new(), Vec::new());
        let repo = e.root.join("repo");
        e.repo = repo.to_str().unwrap().to_string();
        e.repo_dir = Some(repo);
        e
    }

    /// A device and a repository at `repo` (a URL), with `env` for every run.
    pub fn remote(prefix: &str, repo: String, env: Vec<(String, String)>) -> Env {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        let root = dir.path().to_path_buf();
        Env {
            config: root.join("device"),
            repo,
            repo_dir: None,
            env,
            root,
            _dir: dir,
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(arca_bin());
        c.env("ARCA_CONFIG_DIR", &self.config)
            .env("ARCA_REPO", &self.repo)
            .env_remove("ARCA_KEY")
            .env_remove("ARCA_KEY_FILE")
            .env_remove("ARCA_LOG")
            .env_remove("ARCA_TEST_FAULTS")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and insists on exit 0.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "arca {args:?} failed\n{}",
            show(&out)
        );
        out
    }

    /// `arca --json ARGS`, which must succeed; its JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("arca {args:?}: {e}\n{}", show(&out)))
    }

    pub fn cache(&self) -> PathBuf {
        self.config.join("cache")
    }
}

pub fn show(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn random_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    v
}

/// Compressible text made of random words.
pub fn text_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
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

/// The size of a source: `Scale(4)` is about 60 MB (large incompressible files of 16, 12 and
/// 8 MiB, five 3 MiB logs, a 4 MiB half-empty image and 150 small files); `Scale(1)` a quarter
/// of the large files, logs and image (about 20 MB).
#[derive(Clone, Copy, Debug)]
pub struct Scale(pub usize);

impl Scale {
    fn big(self) -> [(&'static str, usize); 3] {
        [
            ("r1.bin", (4 << 20) * self.0),
            ("r2.bin", (3 << 20) * self.0),
            ("r3.bin", (2 << 20) * self.0),
        ]
    }
}

/// Large incompressible files, compressible logs, a half-empty file and many small files in
/// nested folders, an empty folder and a symlink.
pub fn make_source(rng: &mut StdRng, src: &Path, scale: Scale) {
    let big = src.join("big");
    fs::create_dir_all(&big).unwrap();
    for (name, n) in scale.big() {
        fs::write(big.join(name), random_bytes(rng, n)).unwrap();
    }
    let logs = src.join("logs");
    fs::create_dir_all(&logs).unwrap();
    for i in 0..5 {
        let n = (3 << 20) * scale.0 / 4;
        fs::write(logs.join(format!("log{i}.txt")), text_bytes(rng, n)).unwrap();
    }
    let half = (2 << 20) * scale.0 / 4;
    let mut mixed = vec![0u8; half];
    mixed.extend(random_bytes(rng, half));
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

pub fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
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

/// Changes the source so the next backup has new data to store: two of the three large files
/// replaced (more than a pack), a window of the third overwritten, a log appended to, a new
/// small file, sometimes a small file deleted or truncated.
pub fn mutate(rng: &mut StdRng, src: &Path, round: usize) {
    // Overwrite a window of a large file in place.
    let big = ["r1.bin", "r2.bin", "r3.bin"][rng.gen_range(0..3)];
    let path = src.join("big").join(big);
    let len = fs::metadata(&path).unwrap().len();
    let n = rng.gen_range(len / 16..len / 2).min(len);
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
    fs::write(dir.join(format!("new-{round:03}")), random_bytes(rng, n)).unwrap();
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
/// symlink targets, file times and bytes.
pub fn assert_same_tree(src: &Path, restored: &Path) {
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

pub fn assert_same_bytes(p: &Path, q: &Path) {
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

/// Files in a local repository's pack, index and snapshot folders, and its folder of
/// unfinished writes.
pub fn repo_counts(repo: &Path) -> [usize; 4] {
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
pub fn phase(before: [usize; 4], after: [usize; 4]) -> usize {
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
pub const PHASES: [&str; 5] = [
    "before any write",
    "while writing the first pack",
    "after packs, before the index",
    "after an index, before the snapshot",
    "after the snapshot",
];

/// Restores the latest snapshot and compares it with the source.
pub fn restore_and_compare(env: &Env, src: &Path) {
    let target = env.root.join("restored");
    let _ = fs::remove_dir_all(&target);
    env.ok(&["restore", "--target", target.to_str().unwrap()]);
    assert_same_tree(src, &target.join(src.strip_prefix("/").unwrap()));
    leftovers(&target);
    fs::remove_dir_all(&target).unwrap();
}

/// No temporary restore files may be left.
pub fn leftovers(dir: &Path) {
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

/// Starts `cmd` and SIGKILLs it after `delay` unless it finished first; whether it was killed.
/// A run that finishes must succeed (exit 0); returns whether it was killed and how long it ran.
pub fn kill_after(mut cmd: Command, delay: Duration, what: &str) -> (bool, Duration) {
    let spawned = Instant::now();
    let mut child: Child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{what}: the run failed: {status}");
            return (false, spawned.elapsed());
        }
        let left = delay.saturating_sub(spawned.elapsed());
        if left.is_zero() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return (true, spawned.elapsed());
        }
        std::thread::sleep(left.min(Duration::from_millis(2)));
    }
}

/// What a backup crash loop is asked to do.
pub struct CrashLoop {
    /// Rounds go on until this many backups were killed before they finished...
    pub kills: usize,
    /// ... in at most this many rounds (a round whose backup beat the kill still counts).
    pub max_rounds: usize,
    pub seed: u64,
    pub scale: Scale,
    /// A full restore and byte comparison every this many rounds (and at the end).
    pub restore_every: usize,
    /// Counts the repository's files: packs, indexes, snapshots, unfinished writes.
    pub counts: Box<dyn Fn() -> [usize; 4]>,
}

/// What came of it.
#[derive(Debug, Default)]
pub struct CrashReport {
    pub rounds: usize,
    pub killed: usize,
    pub phases: [usize; PHASES.len()],
    pub restores: usize,
    pub read_data_checks: usize,
}

/// `arca backup` SIGKILLed at random moments, `kills` times: after each kill `check` passes at
/// once, the next backup completes, `check --read-data` passes; every `restore_every` rounds
/// (and at the end) the latest snapshot restores byte for byte.
///
/// The kills are spread over the whole run of a backup: the delays are drawn up to 90% of the
/// measured length of the last complete backup of the same kind, more often late than early,
/// so they land while files are read and sealed, while packs are written, between the packs and
/// the index, and (rarely: it is a short moment) around the snapshot and the file cache. Each
/// round replaces two of the three large files and changes a few small ones; every other round
/// the file cache is dropped so that the whole source is read again.
pub fn backup_crash_loop(env: &Env, cfg: &CrashLoop) -> CrashReport {
    let started = Instant::now();
    let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(cfg.seed);
    let src = env.root.join("src");
    make_source(&mut rng, &src, cfg.scale);
    let src_arg = src.to_str().unwrap().to_string();
    env.ok(&["enable", "--key"]);

    let t = Instant::now();
    env.ok(&["backup", &src_arg]);
    let first_backup = t.elapsed();
    // How long does a round's backup take, with and without the file cache? One of each,
    // un-killed, after the same kind of change as every round.
    let mut length = [first_backup; 2];
    for (i, uncached) in [(1000, true), (1001, false)] {
        mutate(&mut rng, &src, i);
        if uncached {
            let _ = fs::remove_dir_all(env.cache());
        }
        let t = Instant::now();
        env.ok(&["backup", &src_arg]);
        length[uncached as usize] = t.elapsed();
    }
    eprintln!(
        "a first backup of the source takes {:.2}s, a round's {:.2}s with the file cache and {:.2}s without (setup {:.2}s)",
        first_backup.as_secs_f64(),
        length[0].as_secs_f64(),
        length[1].as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // The length of the last complete backup of each kind: [cached, uncached].
    let mut report = CrashReport::default();
    for round in 0.. {
        if report.killed >= cfg.kills {
            break;
        }
        assert!(
            round < cfg.max_rounds,
            "only {} of {round} kills hit a running backup",
            report.killed
        );
        report.rounds += 1;
        mutate(&mut rng, &src, round);
        // Every other round, forget which files are unchanged so the whole source is read.
        let uncached = round % 2 == 0;
        if uncached {
            let _ = fs::remove_dir_all(env.cache());
        }
        let max = length[uncached as usize].mul_f64(0.9);
        // Anywhere in the run, but more often late (density 2x on [0, 1]), where packs, the
        // index, the snapshot and the file cache are written; early on it is mostly reading.
        let delay = max.mul_f64(rng.gen_range(0.0f64..1.0).sqrt());

        let before = (cfg.counts)();
        let (killed, ran) = kill_after(
            env.cmd(&["backup", &src_arg]),
            delay,
            &format!("round {round}: backup"),
        );
        if !killed {
            // It beat the kill: its own length is the best estimate for the next round.
            length[uncached as usize] = ran;
        }
        let landed = phase(before, (cfg.counts)());
        if killed {
            report.killed += 1;
            report.phases[landed] += 1;
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
        report.read_data_checks += 1;
        let full = (round + 1) % cfg.restore_every == 0 || report.killed == cfg.kills;
        if full {
            restore_and_compare(env, &src);
            report.restores += 1;
        }
        eprintln!(
            "round {round:3}: {} at {:5.2}s of {:5.2}s ({}); next backup {:5.2}s{}; elapsed {:6.1}s",
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
        "{} of {} backups were killed before they finished; {} restores compared; total {:.1}s",
        report.killed,
        report.rounds,
        report.restores,
        started.elapsed().as_secs_f64()
    );
    for (name, n) in PHASES.iter().zip(report.phases) {
        eprintln!("  killed {name}: {n}");
    }
    let snapshots = env.json(&["snapshots"]);
    assert!(snapshots.as_array().unwrap().len() > report.rounds);
    report
}
