//! Bad local conditions (issue 7): a full filesystem under the cache, a read-only config dir, a
//! source folder changed by another process while backups run, and a clock that jumps backwards.
//! (A full restore target is `bad_input.rs`'s `restore_into_a_full_target`.)
//!
//! The tests that mount filesystems need root and are skipped with a message otherwise; the
//! clock test needs libfaketime (`apt-get install faketime`) and is skipped without it.
//! `campaigns/run.sh local` runs them with more rounds (`ARCA_CAMPAIGN_LOCAL_ROUNDS`, default
//! 3: backups while the source is changing).

mod common;
mod servers;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use common::{
    Env, Scale, assert_same_tree, count, is_root, make_source, restore_and_compare, seed, show,
};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// A tmpfs mounted at a folder, unmounted when dropped (even when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` (after a message) when this process cannot mount.
    fn mount(at: &Path, options: &str, test: &str) -> Option<Tmpfs> {
        if !is_root() {
            eprintln!("SKIPPED {test}: mounting a tmpfs needs root");
            return None;
        }
        fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "arca-test-tmpfs"])
            .arg(at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(at.to_path_buf())),
            Ok(o) => {
                eprintln!(
                    "SKIPPED {test}: cannot mount a tmpfs ({})",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED {test}: cannot run mount ({e})");
                None
            }
        }
    }

    fn remount(&self, options: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success(), "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills a filesystem: files until no block or inode is left.
fn fill(dir: &Path) {
    let chunk = vec![0x5au8; 4096];
    for i in 0.. {
        let Ok(mut f) = fs::File::create(dir.join(format!("filler-{i}"))) else {
            return; // no inode left
        };
        loop {
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
        if f.sync_all().is_err() || fs::metadata(dir.join(format!("filler-{i}"))).is_err() {
            return;
        }
        if i > 10_000 {
            panic!("{} does not fill up", dir.display());
        }
    }
}

fn small_source(root: &Path) -> PathBuf {
    let mut rng = StdRng::seed_from_u64(11);
    let src = root.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    for i in 0..20 {
        let mut v = vec![0u8; rng.gen_range(1000..300_000)];
        rng.fill_bytes(&mut v);
        fs::write(src.join("sub").join(format!("f{i}")), v).unwrap();
    }
    fs::write(src.join("notes.txt"), "cache full\n".repeat(1000)).unwrap();
    src
}

/// Exit code 0, or 3 (completed with warnings): the warnings.
fn completed(out: &std::process::Output, what: &str) -> Vec<String> {
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "{what}\n{}",
        show(out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: {e}\n{}", show(out)));
    v["warnings"]
        .as_array()
        .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The cache folder is on a filesystem with no space and no inodes left: the cache is optional,
/// so backups complete (with a warning that the file cache could not be saved), the repository
/// checks, and restores are exact.
#[test]
fn cache_on_a_full_filesystem() {
    let env = Env::local("arca-local-cache-");
    let Some(_mnt) = Tmpfs::mount(
        &env.cache(),
        "size=64k,nr_inodes=8",
        "cache_on_a_full_filesystem",
    ) else {
        return;
    };
    fill(&env.cache());
    let src = small_source(&env.root);
    env.ok(&["enable", "--key"]);
    for round in 0..2 {
        let out = env.run(&["--json", "backup", src.to_str().unwrap()]);
        let warnings = completed(&out, &format!("backup {round} with a full cache"));
        assert!(
            warnings.iter().any(|w| w.contains("file cache")),
            "the backup says the cache could not be saved: {warnings:?}"
        );
        fs::write(src.join(format!("new-{round}")), format!("round {round}")).unwrap();
    }
    fs::remove_file(src.join("new-1")).unwrap();
    env.ok(&["check", "--read-data"]);
    restore_and_compare(&env, &src);
}

/// The config dir is read-only. `enable` fails with exit code 1 and an error that names the
/// folder, and creates nothing at the repository location (a repository whose new key could
/// not be kept would be locked for good). Set up beforehand, the device still backs up (the
/// cache is optional) and restores; nothing in the repository is damaged.
#[test]
fn read_only_config_dir() {
    let env = Env::local("arca-local-rocfg-");
    let Some(mnt) = Tmpfs::mount(&env.config, "size=4m", "read_only_config_dir") else {
        return;
    };
    mnt.remount("ro");
    let out = env.run(&["enable", "--key"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(env.config.to_str().unwrap()),
        "the error names the config dir\n{}",
        show(&out)
    );
    assert!(
        !Path::new(&env.repo).join("config").exists(),
        "enable created a repository whose key it could not keep\n{}",
        show(&out)
    );

    // Set up while writable, then read-only.
    mnt.remount("rw");
    env.ok(&["enable", "--key"]);
    let src = small_source(&env.root);
    env.ok(&["backup", src.to_str().unwrap()]);
    fs::write(
        src.join("later.txt"),
        "after the config dir became read-only",
    )
    .unwrap();
    mnt.remount("ro");
    let out = env.run(&["--json", "backup", src.to_str().unwrap()]);
    let warnings = completed(&out, "backup with a read-only config dir");
    eprintln!("warnings: {warnings:?}");
    env.ok(&["check", "--read-data"]);
    restore_and_compare(&env, &src);
    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 2, "{snaps}");
}

// ---------------------------------------------------------------------------------------------
// A source changed by another process during backups.

/// File contents that tell whether they are one version that existed: records of
/// `RECO uid gen idx len payload`, all of one file (`uid`) and one generation (`gen`),
/// numbered from 0, with payloads derived from (uid, gen, idx). An in-place rewrite changes
/// the generation of every record; an append adds a record of the same generation.
fn record(uid: u32, generation: u32, idx: u32, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(20 + len);
    v.extend_from_slice(b"RECO");
    for x in [uid, generation, idx, len as u32] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    let mut payload = vec![0u8; len];
    StdRng::seed_from_u64(((uid as u64) << 40) ^ ((generation as u64) << 20) ^ idx as u64)
        .fill_bytes(&mut payload);
    v.extend(payload);
    v
}

/// Whether `bytes` is one version of a file that existed.
fn is_a_version(bytes: &[u8]) -> bool {
    let mut at = 0;
    let mut first: Option<(u32, u32)> = None;
    let mut idx = 0u32;
    while at < bytes.len() {
        if bytes.len() < at + 20 || &bytes[at..at + 4] != b"RECO" {
            return false;
        }
        let word = |i: usize| u32::from_le_bytes(bytes[at + i..at + i + 4].try_into().unwrap());
        let (uid, generation, i, len) = (word(4), word(8), word(12), word(16) as usize);
        if *first.get_or_insert((uid, generation)) != (uid, generation) || i != idx {
            return false;
        }
        if bytes.len() < at + 20 + len
            || bytes[at..at + 20 + len] != record(uid, generation, i, len)
        {
            return false;
        }
        at += 20 + len;
        idx += 1;
    }
    true
}

struct Writer {
    live: PathBuf,
    scratch: PathBuf,
    rng: StdRng,
    next_uid: u32,
    /// name -> (uid, generation, record lengths)
    files: Vec<(String, u32, u32, Vec<usize>)>,
    ops: usize,
}

impl Writer {
    fn content(uid: u32, generation: u32, lens: &[usize]) -> Vec<u8> {
        let mut v = Vec::new();
        for (i, &n) in lens.iter().enumerate() {
            v.extend(record(uid, generation, i as u32, n));
        }
        v
    }

    /// A new file, written aside and renamed into place.
    fn create(&mut self, name: String) {
        let uid = self.next_uid;
        self.next_uid += 1;
        let lens: Vec<usize> = (0..self.rng.gen_range(1..6))
            .map(|_| self.rng.gen_range(1 << 10..256 << 10))
            .collect();
        let tmp = self.scratch.join("tmp");
        fs::write(&tmp, Self::content(uid, 0, &lens)).unwrap();
        fs::rename(&tmp, self.live.join(&name)).unwrap();
        self.files.retain(|f| f.0 != name);
        self.files.push((name, uid, 0, lens));
    }

    fn step(&mut self) {
        self.ops += 1;
        let name = format!("n{:05}", self.ops);
        if self.files.len() < 5 {
            return self.create(name);
        }
        let i = self.rng.gen_range(0..self.files.len());
        let path = self.live.join(&self.files[i].0);
        match self.rng.gen_range(0..100) {
            // Rewrite in place, same size, a new generation: one write per record.
            0..=34 => {
                let f = &mut self.files[i];
                f.2 += 1;
                let file = OpenOptions::new().write(true).open(&path).unwrap();
                let mut at = 0u64;
                for (idx, &n) in f.3.iter().enumerate() {
                    let r = record(f.1, f.2, idx as u32, n);
                    file.write_all_at(&r, at).unwrap();
                    at += r.len() as u64;
                }
            }
            // Append a record.
            35..=59 => {
                let n = self.rng.gen_range(1 << 10..128 << 10);
                let f = &mut self.files[i];
                let r = record(f.1, f.2, f.3.len() as u32, n);
                OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap()
                    .write_all(&r)
                    .unwrap();
                f.3.push(n);
            }
            // Replace with a new file (renamed over it).
            60..=74 => {
                let old = self.files[i].0.clone();
                self.create(old);
            }
            // Rename.
            75..=84 => {
                fs::rename(&path, self.live.join(&name)).unwrap();
                self.files[i].0 = name;
            }
            // Delete.
            85..=92 => {
                fs::remove_file(&path).unwrap();
                self.files.remove(i);
            }
            _ => self.create(name),
        }
    }
}

/// Another process creates, appends to, rewrites in place, replaces, renames and deletes files
/// in a loop while backups run: every backup completes (exit 0 or 3, with warnings), `check
/// --read-data` passes, and every restored file is one version of that file that existed,
/// except files the backup warned had changed while it read them.
#[test]
fn source_changed_by_another_process_during_backup() {
    let rounds = count("ARCA_CAMPAIGN_LOCAL_ROUNDS", 3);
    let env = Env::local("arca-local-live-");
    let src = env.root.join("src");
    let live = src.join("live");
    let scratch = env.root.join("scratch");
    fs::create_dir_all(&live).unwrap();
    fs::create_dir_all(&scratch).unwrap();
    let mut rng = StdRng::seed_from_u64(seed("ARCA_LOCAL_SEED", 0x11fe));
    // Some quiet data beside the busy folder.
    make_source(&mut rng, &src.join("quiet"), Scale(1));
    let mut w = Writer {
        live: live.clone(),
        scratch,
        rng: StdRng::seed_from_u64(rng.r#gen()),
        next_uid: 1,
        files: Vec::new(),
        ops: 0,
    };
    for _ in 0..40 {
        let name = format!("first-{}", w.next_uid);
        w.create(name);
    }
    env.ok(&["enable", "--key"]);

    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, ops) = (stop.clone(), ops.clone());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                w.step();
                ops.fetch_add(1, Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let src_arg = src.to_str().unwrap().to_string();
    let (mut torn_warned, mut files_checked, mut all_warnings) = (0, 0, 0);
    for round in 0..rounds {
        if round % 2 == 0 {
            let _ = fs::remove_dir_all(env.cache());
        }
        let before = ops.load(Relaxed);
        let out = env.run(&["--json", "backup", &src_arg]);
        let warnings = completed(&out, &format!("backup {round} of a changing source"));
        all_warnings += warnings.len();
        let during = ops.load(Relaxed) - before;
        let target = env.root.join("target");
        let _ = fs::remove_dir_all(&target);
        env.ok(&["restore", "--target", target.to_str().unwrap()]);
        let restored_live = target.join(live.strip_prefix("/").unwrap());
        for e in fs::read_dir(&restored_live).unwrap() {
            let p = e.unwrap().path();
            let bytes = fs::read(&p).unwrap();
            files_checked += 1;
            if is_a_version(&bytes) {
                continue;
            }
            let original = live.join(p.file_name().unwrap());
            let warned = warnings.iter().any(|w| {
                w.contains(original.to_str().unwrap())
                    && w.contains("changed while it was being read")
            });
            assert!(
                warned,
                "round {round}: {} is not a version that existed ({} bytes), and the backup did not warn about it: {warnings:?}",
                original.display(),
                bytes.len()
            );
            torn_warned += 1;
        }
        eprintln!(
            "round {round}: {during} changes during the backup; {} warnings; {files_checked} files checked so far, {torn_warned} torn and warned",
            warnings.len()
        );
    }
    stop.store(true, Relaxed);
    writer.join().unwrap();
    env.ok(&["check", "--read-data"]);
    // The quiet part of the source is exact.
    let target = env.root.join("target");
    let _ = fs::remove_dir_all(&target);
    env.ok(&["backup", &src_arg]);
    env.ok(&["restore", "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    eprintln!(
        "{rounds} backups of a changing source; {} changes in all; {all_warnings} warnings; {files_checked} restored files checked; {torn_warned} torn files, all warned about",
        ops.load(Relaxed)
    );
}

// ---------------------------------------------------------------------------------------------
// A clock that jumps backwards.

fn libfaketime() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Runs arca with libfaketime reading the clock offset from `offset_file` at every call.
fn faked(env: &Env, lib: &Path, offset_file: &Path, args: &[&str]) -> std::process::Command {
    let mut c = env.cmd(args);
    c.env("LD_PRELOAD", lib)
        .env("FAKETIME_TIMESTAMP_FILE", offset_file)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    c
}

fn snapshot_times(env: &Env) -> Vec<(u64, i64)> {
    env.json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["seq"].as_u64().unwrap(),
                s["time"].as_i64().unwrap_or_else(|| panic!("{s}")),
            )
        })
        .collect()
}

/// The wall clock jumps backwards: by ten years between backups and by a day in the middle of
/// one. Snapshots keep their order (by sequence number, not time) and `latest` is the newest;
/// a file whose content changed while its mtime went backwards (same size) is read again, not
/// taken from the file cache; restores of every snapshot are exact.
#[test]
fn clock_jumps_backwards() {
    // Skipped only where the test's tools may be missing; CI installs libfaketime and sets
    // ARCA_REQUIRE_SERVERS=1, which turns a missing one into a failure.
    let Some(lib) = servers::require("libfaketime", libfaketime(), "apt-get install faketime")
    else {
        return;
    };
    let env = Env::local("arca-local-clock-");
    let offset = env.root.join("faketime");
    fs::write(&offset, "+0\n").unwrap();
    let src = small_source(&env.root);
    let src_arg = src.to_str().unwrap().to_string();
    let probe = faked(&env, &lib, &offset, &["--version"]).output().unwrap();
    assert!(probe.status.success(), "{}", show(&probe));
    env.ok(&["enable", "--key"]);

    // 1: the real time.
    let out = faked(&env, &lib, &offset, &["backup", &src_arg])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    // 2: ten years earlier; a file changed with the same size and its old mtime.
    let victim = src.join("sub/f3");
    let old = fs::metadata(&victim).unwrap();
    let mut bytes = fs::read(&victim).unwrap();
    bytes[0] ^= 0xff;
    fs::write(&victim, &bytes).unwrap();
    filetime::set_file_mtime(
        &victim,
        filetime::FileTime::from_last_modification_time(&old),
    )
    .unwrap();
    fs::write(&offset, "-3650d\n").unwrap();
    let out = faked(&env, &lib, &offset, &["backup", &src_arg])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let second_src = env.root.join("second");
    copy_tree(&src, &second_src);
    let times = snapshot_times(&env);
    assert_eq!(times.len(), 2, "{times:?}");
    assert!(
        times[1].1 < times[0].1 - 3000 * 86400,
        "the clock was faked: {times:?}"
    );
    // The newest (by sequence) is `latest`, and it has the changed file.
    let target = env.root.join("t2");
    env.ok(&["restore", "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));

    // 3: the clock jumps back a day in the middle of a backup.
    fs::write(&offset, "+0\n").unwrap();
    for i in 0..30 {
        let mut v = vec![0u8; 400_000];
        StdRng::seed_from_u64(1000 + i).fill_bytes(&mut v);
        fs::write(src.join("sub").join(format!("big{i}")), v).unwrap();
    }
    let child = faked(&env, &lib, &offset, &["backup", &src_arg])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    fs::write(&offset, "-1d\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    // 4: back to the real time.
    fs::write(&offset, "+0\n").unwrap();
    fs::write(src.join("notes.txt"), "after the clock came back\n").unwrap();
    let out = faked(&env, &lib, &offset, &["backup", &src_arg])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));

    let times = snapshot_times(&env);
    let seqs: Vec<u64> = times.iter().map(|t| t.0).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4], "{times:?}");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((times[3].1 - now).abs() < 600, "{times:?}");
    env.ok(&["check", "--read-data"]);
    restore_and_compare(&env, &src);
    // The ten-years-back snapshot restores to what the source was then.
    let ids = env.json(&["snapshots"]);
    let id2 = ids[1]["id"].as_str().unwrap().to_string();
    let t = env.root.join("t-second");
    env.ok(&["restore", &id2, "--target", t.to_str().unwrap()]);
    assert_same_tree(&second_src, &t.join(src.strip_prefix("/").unwrap()));
}

fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}
