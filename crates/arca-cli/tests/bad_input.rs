//! Hostile and unusual sources and targets: files that vanish or grow while they are read,
//! special files, symlink loops, unreadable entries, very long paths, non-UTF-8 names, empty
//! folders, and a restore target that fills up. Every `arca` run is bounded by a timeout, so a
//! hang fails the test instead of stalling it.

use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// No command in these tests may take longer than this.
const TIMEOUT: Duration = Duration::from_secs(120);
/// The unprivileged user (nobody) that runs `arca` where permissions matter.
const NOBODY: u32 = 65534;

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn show(&self) -> String {
        format!(
            "exit code: {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    repo: PathBuf,
    /// Run `arca` as this user instead of the test's own.
    user: Option<u32>,
}

impl Env {
    fn new() -> Env {
        Env::with_user(None)
    }

    fn with_user(user: Option<u32>) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("arca-bad-")
            .tempdir()
            .unwrap();
        let env = Env {
            config: dir.path().join("device"),
            repo: dir.path().join("repo"),
            user,
            dir,
        };
        if let Some(uid) = user {
            // The user must reach the temporary folder and own arca's own folders.
            fs::set_permissions(env.root(), fs::Permissions::from_mode(0o755)).unwrap();
            for d in [&env.config, &env.repo] {
                fs::create_dir(d).unwrap();
                std::os::unix::fs::chown(d, Some(uid), Some(uid)).unwrap();
            }
        }
        env.ok(["enable", "--key"]);
        env
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(env!("CARGO_BIN_EXE_arca"));
        c.env("ARCA_CONFIG_DIR", &self.config)
            .env("ARCA_REPO", &self.repo)
            .env_remove("ARCA_KEY")
            .env_remove("ARCA_KEY_FILE")
            .env_remove("ARCA_LOG")
            .stdin(Stdio::null())
            .args(args);
        if let Some(uid) = self.user {
            as_user(&mut c, uid);
        }
        c
    }

    /// Starts `arca`, its output going to files (read by `finish`).
    fn spawn<I, S>(&self, args: I) -> Running
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (out, err) = (
            self.root().join(format!("out-{n}")),
            self.root().join(format!("err-{n}")),
        );
        let mut cmd = self.command(args);
        let args: Vec<OsString> = cmd.get_args().map(|a| a.to_owned()).collect();
        let child = cmd
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Running {
            child,
            args,
            out,
            err,
            started: Instant::now(),
        }
    }

    fn run<I, S>(&self, args: I) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spawn(args).finish()
    }

    fn ok<I, S>(&self, args: I) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.run(&args);
        assert_eq!(out.code, Some(0), "arca {args:?} failed\n{}", out.show());
        out
    }

    fn backup(&self, src: &Path) -> Out {
        self.run([OsStr::new("backup"), src.as_os_str()])
    }

    /// Restores the latest snapshot into a fresh folder; returns the run and where `src` landed.
    fn restore(&self, name: &str, src: &Path) -> (Out, PathBuf) {
        let target = self.root().join(name);
        if let Some(uid) = self.user {
            fs::create_dir(&target).unwrap();
            std::os::unix::fs::chown(&target, Some(uid), Some(uid)).unwrap();
        }
        let out = self.run([
            OsStr::new("restore"),
            OsStr::new("--target"),
            target.as_os_str(),
        ]);
        let at = target.join(src.strip_prefix("/").unwrap());
        (out, at)
    }

    fn restore_ok(&self, name: &str, src: &Path) -> PathBuf {
        let (out, at) = self.restore(name, src);
        assert_eq!(out.code, Some(0), "restore failed\n{}", out.show());
        at
    }

    fn check(&self) {
        self.ok(["check", "--read-data"]);
    }
}

/// Makes `cmd` run as `uid` (group `uid`, no supplementary groups).
fn as_user(cmd: &mut Command, uid: u32) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(uid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

struct Running {
    child: Child,
    args: Vec<OsString>,
    out: PathBuf,
    err: PathBuf,
    started: Instant,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits (killing it and failing after `TIMEOUT`) and collects the output.
    fn finish(mut self) -> Out {
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if self.started.elapsed() > TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "arca {:?} hung: killed after {TIMEOUT:?}\nstderr so far:\n{}",
                    self.args,
                    fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Out {
            code: status.code(),
            stdout: String::from_utf8_lossy(&fs::read(&self.out).unwrap()).into_owned(),
            stderr: String::from_utf8_lossy(&fs::read(&self.err).unwrap()).into_owned(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn mkfifo(p: &Path, mode: u32) {
    // SAFETY: a valid NUL-terminated path.
    let r = unsafe { libc::mkfifo(cstr(p).as_ptr(), mode as libc::mode_t) };
    assert_eq!(
        r,
        0,
        "mkfifo {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

fn mknod(p: &Path, kind: libc::mode_t, mode: u32, major: u32, minor: u32) -> std::io::Result<()> {
    // SAFETY: a valid NUL-terminated path.
    let r = unsafe {
        libc::mknod(
            cstr(p).as_ptr(),
            kind | mode as libc::mode_t,
            libc::makedev(major, minor),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether `pid` has `path` open.
fn has_open(pid: u32, path: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|t| t == path))
}

/// Waits until `arca` (still running) opens `path`; false if it exited first.
fn wait_until_open(run: &mut Running, path: &Path) -> bool {
    loop {
        if run.try_wait().is_some() {
            return false;
        }
        if has_open(run.pid(), path) {
            return true;
        }
        assert!(
            run.started.elapsed() < TIMEOUT,
            "arca never opened {}",
            path.display()
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Asserts that `b` holds what `a` holds: names (as bytes), kinds, modes, file bytes and times,
/// symlink targets, device numbers.
fn assert_same_tree(a: &Path, b: &Path) {
    fn names(dir: &Path) -> Vec<OsString> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    }
    let (na, nb) = (names(a), names(b));
    assert_eq!(na, nb, "the entries of {} differ", b.display());
    for name in na {
        let (p, q) = (a.join(&name), b.join(&name));
        let (m, n) = (
            fs::symlink_metadata(&p).unwrap(),
            fs::symlink_metadata(&q).unwrap(),
        );
        assert_eq!(
            m.mode(),
            n.mode(),
            "the mode (kind and permissions) of {}",
            q.display()
        );
        let t = m.file_type();
        if t.is_dir() {
            assert_same_tree(&p, &q);
        } else if t.is_symlink() {
            assert_eq!(fs::read_link(&p).unwrap(), fs::read_link(&q).unwrap());
        } else if t.is_file() {
            assert_eq!(m.mtime(), n.mtime(), "mtime of {}", q.display());
            assert!(
                fs::read(&p).unwrap() == fs::read(&q).unwrap(),
                "the bytes of {} differ",
                q.display()
            );
        } else if t.is_char_device() || t.is_block_device() {
            assert_eq!(m.rdev(), n.rdev(), "device number of {}", q.display());
        }
    }
}

fn find_leftovers(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().as_bytes().ends_with(b".arca-restore") {
            out.push(e.path());
        }
        if e.file_type().unwrap().is_dir() {
            find_leftovers(&e.path(), out);
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// Files and a folder deleted after their folder was listed, before they were read: a warning
/// names each, the run ends with exit code 3, and the snapshot holds everything else.
#[test]
fn entries_that_vanish_during_the_backup() {
    let env = Env::new();
    let src = env.root().join("src");
    fs::create_dir(&src).unwrap();
    // Read first (names sort), and big enough that the deletions happen while it is read.
    let big = src.join("a-big.bin");
    fs::write(&big, random_bytes(1, 96 << 20)).unwrap();
    fs::write(src.join("victim.txt"), "soon gone").unwrap();
    fs::create_dir_all(src.join("victim-dir/inner")).unwrap();
    fs::write(src.join("victim-dir/inner/file"), "soon gone too").unwrap();
    fs::write(src.join("zz-kept.txt"), "still here").unwrap();

    let mut run = env.spawn([OsStr::new("backup"), src.as_os_str()]);
    // arca lists a folder before it reads the files in it: once it reads a-big.bin, it has
    // seen the victims' names.
    assert!(
        wait_until_open(&mut run, &big),
        "the backup ended before it was seen reading {}; make the file bigger",
        big.display()
    );
    fs::remove_file(src.join("victim.txt")).unwrap();
    fs::remove_dir_all(src.join("victim-dir")).unwrap();
    let out = run.finish();

    assert_eq!(out.code, Some(3), "{}", out.show());
    for victim in ["victim.txt", "victim-dir"] {
        let p = src.join(victim);
        assert!(
            out.stderr.lines().any(|l| l.contains("warning")
                && l.contains(&*p.to_string_lossy())
                && l.contains("vanished")),
            "no warning that {} vanished\n{}",
            p.display(),
            out.show()
        );
    }
    env.check();
    let at = env.restore_ok("restored", &src);
    let mut names: Vec<_> = fs::read_dir(&at)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["a-big.bin", "zz-kept.txt"]);
    assert!(fs::read(at.join("a-big.bin")).unwrap() == fs::read(&big).unwrap());
    assert_eq!(fs::read(at.join("zz-kept.txt")).unwrap(), b"still here");
}

/// A path named on the command line that does not exist is an error, not a silent success.
#[test]
fn a_missing_source_path_is_an_error() {
    let env = Env::new();
    let missing = env.root().join("no-such-folder");
    let out = env.backup(&missing);
    assert_eq!(out.code, Some(1), "{}", out.show());
    assert!(
        out.stderr.contains(&*missing.to_string_lossy()),
        "{}",
        out.show()
    );
}

/// A file that grows while it is read: the backup completes (exit 0, or 3 with a warning that
/// names it), holds a prefix of the file at least as long as it was, and the next backup, with
/// the file at rest, stores all of it (the changed file was not cached as unchanged).
#[test]
fn a_file_that_grows_while_it_is_read() {
    let env = Env::new();
    let src = env.root().join("src");
    fs::create_dir(&src).unwrap();
    let log = src.join("growing.log");
    let initial = 64usize << 20;
    fs::write(&log, random_bytes(2, initial)).unwrap();
    fs::write(src.join("other.txt"), "other").unwrap();

    let mut run = env.spawn([OsStr::new("backup"), src.as_os_str()]);
    let seen = wait_until_open(&mut run, &log);
    let mut appended = 0usize;
    if seen {
        // Append while it is read, slower than arca reads, and at most 64 MiB.
        let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
        let block = random_bytes(3, 64 << 10);
        while run.try_wait().is_none() && appended < 64 << 20 {
            f.write_all(&block).unwrap();
            appended += block.len();
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let out = run.finish();
    eprintln!("appended {appended} bytes while the backup ran (saw it open: {seen})");
    match out.code {
        Some(0) => {}
        Some(3) => assert!(
            out.stderr.contains(&*log.to_string_lossy())
                && out.stderr.contains("changed while it was being read"),
            "exit 3 without a warning naming the changed file\n{}",
            out.show()
        ),
        _ => panic!("the backup of a growing file failed\n{}", out.show()),
    }
    env.check();
    let final_bytes = fs::read(&log).unwrap();
    let at = env.restore_ok("restored-1", &src);
    let got = fs::read(at.join("growing.log")).unwrap();
    assert!(
        got.len() >= initial && got.len() <= final_bytes.len(),
        "restored {} bytes; the file had {initial} when the backup started and {} after",
        got.len(),
        final_bytes.len()
    );
    assert!(
        final_bytes[..got.len()] == got[..],
        "the restored file is not a prefix of the file"
    );
    assert_eq!(fs::read(at.join("other.txt")).unwrap(), b"other");

    // At rest now: the next backup must store the whole file.
    let out = env.backup(&src);
    assert_eq!(out.code, Some(0), "{}", out.show());
    let at = env.restore_ok("restored-2", &src);
    assert!(
        fs::read(at.join("growing.log")).unwrap() == final_bytes,
        "after the file stopped changing, the next backup did not store all of it"
    );
}

/// A FIFO (nobody writes to it: reading it would hang), a Unix socket, and character and block
/// devices are recorded, not read, and restored as the same kind of file.
#[test]
fn special_files_are_recorded_not_read() {
    let env = Env::new();
    let src = env.root().join("src");
    fs::create_dir(&src).unwrap();
    mkfifo(&src.join("fifo"), 0o640);
    let _listener = std::os::unix::net::UnixListener::bind(src.join("socket")).unwrap();
    let devices = match (
        mknod(&src.join("null"), libc::S_IFCHR, 0o666, 1, 3),
        mknod(&src.join("loop200"), libc::S_IFBLK, 0o660, 7, 200),
    ) {
        (Ok(()), Ok(())) => true,
        (a, b) => {
            eprintln!("skipping device files: mknod failed ({a:?}, {b:?}); not root?");
            let _ = fs::remove_file(src.join("null"));
            let _ = fs::remove_file(src.join("loop200"));
            false
        }
    };
    fs::write(src.join("regular"), "plain").unwrap();

    let out = env.backup(&src);
    assert_eq!(out.code, Some(0), "{}", out.show());
    let listing: serde_json::Value = serde_json::from_str(
        &env.ok([
            OsStr::new("--json"),
            OsStr::new("ls"),
            OsStr::new("latest"),
            src.as_os_str(),
        ])
        .stdout,
    )
    .unwrap();
    let kinds: Vec<(String, String)> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let p = e["path"].as_str().unwrap();
            (
                p.rsplit('/').next().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut want = vec![("fifo", "fifo"), ("regular", "file"), ("socket", "socket")];
    if devices {
        want.extend([("loop200", "blockdev"), ("null", "chardev")]);
    }
    want.sort();
    let want: Vec<(String, String)> = want
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(kinds, want);

    let at = env.restore_ok("restored", &src);
    assert!(
        fs::symlink_metadata(at.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(
        fs::symlink_metadata(at.join("socket"))
            .unwrap()
            .file_type()
            .is_socket()
    );
    if devices {
        let m = fs::symlink_metadata(at.join("null")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), libc::makedev(1, 3));
        let m = fs::symlink_metadata(at.join("loop200")).unwrap();
        assert!(m.file_type().is_block_device());
        assert_eq!(m.rdev(), libc::makedev(7, 200));
    }
    assert_same_tree(&src, &at);
}

/// Symlinks that point at each other, at themselves, at their own parent or at the source
/// itself are stored as symlinks and never followed.
#[test]
fn symlink_loops_are_not_followed() {
    let env = Env::new();
    let src = env.root().join("src");
    fs::create_dir_all(src.join("dir")).unwrap();
    let link = |target: &str, at: &str| std::os::unix::fs::symlink(target, src.join(at)).unwrap();
    link("b", "a");
    link("a", "b");
    link("self", "self");
    link("..", "dir/up");
    link("../dir", "dir/loop");
    link(src.to_str().unwrap(), "dir/to-root");
    link("nowhere/at/all", "dangling");
    fs::write(src.join("dir/file"), "content").unwrap();

    let out = env.backup(&src);
    assert_eq!(out.code, Some(0), "{}", out.show());
    let at = env.restore_ok("restored", &src);
    assert_same_tree(&src, &at);
    for l in [
        "a",
        "b",
        "self",
        "dir/up",
        "dir/loop",
        "dir/to-root",
        "dangling",
    ] {
        assert!(
            fs::symlink_metadata(at.join(l))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{l} was not restored as a symlink"
        );
    }
}

/// Run as an unprivileged user (root reads everything), entries that user cannot read are
/// named in warnings, the run ends with exit code 3, and everything else is backed up.
#[test]
fn unreadable_entries_are_warned_about_and_skipped() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    // As root, run arca as nobody; otherwise the test's own user is unprivileged already.
    let env = Env::with_user(root.then_some(NOBODY));
    let src = env.root().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("public.txt"), "for everyone").unwrap();
    // A folder nobody may list.
    fs::create_dir(src.join("locked")).unwrap();
    fs::write(src.join("locked/secret"), "hidden").unwrap();
    fs::set_permissions(src.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    // A file nobody may read.
    fs::write(src.join("secret.txt"), "hidden").unwrap();
    fs::set_permissions(src.join("secret.txt"), fs::Permissions::from_mode(0o000)).unwrap();
    // A folder nobody may list but may not enter: its names are visible, its entries are not.
    fs::create_dir(src.join("listable")).unwrap();
    fs::write(src.join("listable/inside"), "hidden").unwrap();
    fs::set_permissions(src.join("listable"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::create_dir_all(src.join("open/sub")).unwrap();
    fs::write(src.join("open/sub/deep.txt"), "deep").unwrap();
    for p in ["", "public.txt", "open", "open/sub", "open/sub/deep.txt"] {
        let m = if p.is_empty() || p == "open" || p == "open/sub" {
            0o755
        } else {
            0o644
        };
        fs::set_permissions(src.join(p), fs::Permissions::from_mode(m)).unwrap();
    }

    let out = env.backup(&src);
    assert_eq!(out.code, Some(3), "{}", out.show());
    let warned = |p: &Path| {
        out.stderr.lines().any(|l| {
            l.contains("warning")
                && l.contains(&*p.to_string_lossy())
                && l.contains("ermission denied")
        })
    };
    for p in ["locked", "secret.txt", "listable/inside"] {
        assert!(
            warned(&src.join(p)),
            "no permission warning naming {p}\n{}",
            out.show()
        );
    }
    assert!(
        !out.stderr.contains("vanished"),
        "an unreadable entry is reported as vanished\n{}",
        out.show()
    );

    let at = env.restore_ok("restored", &src);
    assert_eq!(fs::read(at.join("public.txt")).unwrap(), b"for everyone");
    assert_eq!(fs::read(at.join("open/sub/deep.txt")).unwrap(), b"deep");
    assert!(!at.join("secret.txt").exists());
    assert!(!at.join("listable/inside").exists());
    // The locked folder is kept, empty, as a place holder.
    assert_eq!(fs::read_dir(at.join("locked")).unwrap().count(), 0);
    for p in ["locked", "listable", "secret.txt"] {
        for dir in [&src, &at] {
            let _ = fs::set_permissions(dir.join(p), fs::Permissions::from_mode(0o755));
        }
    }
}

/// Opens a path component by component (relative to the last), so paths longer than PATH_MAX
/// can be made.
struct DirFd(i32);

impl DirFd {
    fn open(p: &Path) -> DirFd {
        // SAFETY: a valid NUL-terminated path.
        let fd = unsafe { libc::open(cstr(p).as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
        assert!(fd >= 0, "open {}", p.display());
        DirFd(fd)
    }

    fn mkdir(&self, name: &[u8]) -> DirFd {
        let c = CString::new(name).unwrap();
        // SAFETY: a valid descriptor and NUL-terminated name.
        unsafe {
            assert_eq!(libc::mkdirat(self.0, c.as_ptr(), 0o755), 0, "mkdirat");
            let fd = libc::openat(self.0, c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            assert!(fd >= 0, "openat");
            DirFd(fd)
        }
    }

    fn write(&self, name: &[u8], data: &[u8]) {
        let c = CString::new(name).unwrap();
        // SAFETY: a valid descriptor and NUL-terminated name; the new fd is owned by the File.
        let mut f = unsafe {
            let fd = libc::openat(
                self.0,
                c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                0o644,
            );
            assert!(fd >= 0, "openat");
            <File as std::os::fd::FromRawFd>::from_raw_fd(fd)
        };
        f.write_all(data).unwrap();
    }
}

impl Drop for DirFd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// Names of 255 bytes (the most a name may have) and folders nested until the full path is
/// longer than PATH_MAX (4096 bytes). What fits is backed up and restored; what does not is
/// named in a warning that says why, and the run ends with exit code 3.
#[test]
fn very_long_names_and_paths() {
    let env = Env::new();
    let src = env.root().join("src");
    fs::create_dir(&src).unwrap();
    let name255 = |c: u8| vec![c; 255];
    // A flat file with the longest name, and a shallow tree of long names.
    fs::write(src.join(OsStr::from_bytes(&name255(b'f'))), "longest name").unwrap();
    let mut dir = DirFd::open(&src);
    let mut depth_path = src.clone();
    let mut too_long_at = None;
    for level in 0..20u8 {
        let mut name = format!("level{level:02}-").into_bytes();
        name.resize(255, b'd');
        dir = dir.mkdir(&name);
        depth_path.push(OsStr::from_bytes(&name));
        let mut file = format!("file{level:02}-").into_bytes();
        file.resize(255, b'x');
        dir.write(&file, format!("content at level {level}").as_bytes());
        let full = depth_path.join(OsStr::from_bytes(&file));
        if too_long_at.is_none() && full.as_os_str().len() >= libc::PATH_MAX as usize {
            too_long_at = Some(level);
        }
    }
    drop(dir);
    assert!(depth_path.as_os_str().len() > 4096);
    let too_long_at = too_long_at.unwrap();

    let out = env.backup(&src);
    assert_eq!(out.code, Some(3), "{}", out.show());
    assert!(
        out.stderr.contains("too long") && !out.stderr.contains("vanished"),
        "no clear warning about the path length\n{}",
        out.show()
    );
    env.check();

    // Restore under a short target, where all that was backed up fits again, and under a long
    // one, where the deepest entries do not: those are named in warnings (exit code 3), and
    // everything else is restored.
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = remove_deep(&self.0);
        }
    }
    let short = Path::new("/tmp").join(format!("al{}", std::process::id()));
    let long = env.root().join("t".repeat(200)).join("u".repeat(200));
    for target in [short, long] {
        let _ = remove_deep(&target);
        let _cleanup = Cleanup(target.clone());
        let out = env.run([
            OsStr::new("restore"),
            OsStr::new("--target"),
            target.as_os_str(),
        ]);
        let at = target.join(src.strip_prefix("/").unwrap());
        assert_eq!(
            fs::read(at.join(OsStr::from_bytes(&name255(b'f')))).unwrap(),
            b"longest name"
        );
        let fits = |p: &Path| p.as_os_str().len() < libc::PATH_MAX as usize;
        let (mut src_dir, mut dir) = (src.clone(), at.clone());
        let mut lost = 0;
        for level in 0..too_long_at {
            let mut name = format!("level{level:02}-").into_bytes();
            name.resize(255, b'd');
            src_dir.push(OsStr::from_bytes(&name));
            dir.push(OsStr::from_bytes(&name));
            let mut file = format!("file{level:02}-").into_bytes();
            file.resize(255, b'x');
            let f = dir.join(OsStr::from_bytes(&file));
            assert!(fits(&src_dir.join(OsStr::from_bytes(&file))));
            if !fits(&f) {
                lost += 1;
                continue;
            }
            assert_eq!(
                fs::read(&f).unwrap(),
                format!("content at level {level}").as_bytes(),
                "level {level} under {}",
                target.display()
            );
        }
        eprintln!(
            "restored under a target of {} bytes: {lost} of {too_long_at} levels too deep",
            target.as_os_str().len()
        );
        if lost == 0 {
            assert_eq!(out.code, Some(0), "{}", out.show());
        } else {
            assert_eq!(out.code, Some(3), "{}", out.show());
            assert!(
                out.stderr.contains("is not restored") && out.stderr.contains("too long"),
                "no clear warning about the path length\n{}",
                out.show()
            );
        }
    }
}

/// A tree 300 levels deep is backed up under a limit of 128 open files: the walk holds at most
/// 64 directories open; a deeper one is open only while the walk is not below it. Holding one
/// open per level, it ran out of descriptors for the files themselves.
#[test]
fn a_deep_tree_under_a_low_open_file_limit() {
    let env = Env::new();
    let src = env.root().join("src");
    let mut dir = src.clone();
    for level in 0..300 {
        dir.push("d");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("f{level}")), format!("level {level}")).unwrap();
    }
    let mut cmd = env.command([OsStr::new("backup"), src.as_os_str()]);
    // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 128,
                rlim_max: 128,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = env.restore_ok("restored", &src);
    let mut dir = at;
    for level in 0..300 {
        dir.push("d");
        assert_eq!(
            fs::read_to_string(dir.join(format!("f{level}"))).unwrap(),
            format!("level {level}")
        );
    }
}

/// Removes a tree that may be deeper than PATH_MAX.
fn remove_deep(p: &Path) -> std::io::Result<()> {
    Command::new("rm").arg("-rf").arg(p).status().map(|_| ())
}

/// Names that are not UTF-8 survive a backup and a restore byte for byte, also as the path
/// given to `arca backup`.
#[test]
fn non_utf8_names_round_trip() {
    let env = Env::new();
    let src = env.root().join("src");
    fs::create_dir(&src).unwrap();
    let names: Vec<Vec<u8>> = vec![
        vec![0xff, 0xfe, b'.', b't', b'x', b't'],
        vec![b'a', 0x80, b'b'],
        b"caf\xe9-latin1".to_vec(),
        "ünïcödé-✓".as_bytes().to_vec(),
        b"with\nnewline".to_vec(),
        b" leading and trailing space ".to_vec(),
    ];
    for (i, n) in names.iter().enumerate() {
        fs::write(src.join(OsStr::from_bytes(n)), format!("file {i}")).unwrap();
    }
    let dir = src.join(OsStr::from_bytes(&[0xc3, 0x28, b'-', b'd', b'i', b'r']));
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join(OsStr::from_bytes(&[0xfe])), "inside").unwrap();
    std::os::unix::fs::symlink(
        OsStr::from_bytes(&[0xff, 0xfe, b'.', b't', b'x', b't']),
        src.join("link\u{1}"),
    )
    .unwrap();

    let out = env.backup(&src);
    assert_eq!(out.code, Some(0), "{}", out.show());
    let at = env.restore_ok("restored", &src);
    assert_same_tree(&src, &at);

    // A source path that is itself not UTF-8.
    let out = env.backup(&dir);
    assert_eq!(out.code, Some(0), "{}", out.show());
    let at = env.restore_ok("restored-dir", &dir);
    assert_same_tree(&dir, &at);
    let snapshots = env.ok(["--json", "snapshots"]);
    serde_json::from_str::<serde_json::Value>(&snapshots.stdout).expect("snapshots --json");
}

/// Empty folders (nested, and with unusual modes) and empty files are restored.
#[test]
fn empty_directories_round_trip() {
    let env = Env::new();
    let src = env.root().join("src");
    fs::create_dir_all(src.join("a/b/c/d")).unwrap();
    fs::create_dir_all(src.join("empty")).unwrap();
    fs::create_dir_all(src.join("sticky")).unwrap();
    fs::set_permissions(src.join("sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::create_dir_all(src.join("private")).unwrap();
    fs::set_permissions(src.join("private"), fs::Permissions::from_mode(0o700)).unwrap();
    File::create(src.join("a/b/empty-file")).unwrap();

    let out = env.backup(&src);
    assert_eq!(out.code, Some(0), "{}", out.show());
    let at = env.restore_ok("restored", &src);
    assert_same_tree(&src, &at);
    // An empty source folder on its own.
    let out = env.backup(&src.join("empty"));
    assert_eq!(out.code, Some(0), "{}", out.show());
    let at = env.restore_ok("restored-empty", &src.join("empty"));
    assert!(at.is_dir());
    assert_eq!(fs::read_dir(&at).unwrap().count(), 0);
}

/// Unmounts when dropped, even when the test fails.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let c = cstr(&self.0);
        // SAFETY: a valid NUL-terminated path.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
            eprintln!(
                "could not unmount {}: {}",
                self.0.display(),
                std::io::Error::last_os_error()
            );
        }
    }
}

/// A restore target with too little space: the restore fails with exit code 1 and says the
/// target is full, and every file it left is complete and correct: no partial file under a
/// real name, no temporary file.
#[test]
fn restore_into_a_full_target() {
    let env = Env::new();
    let src = env.root().join("src");
    fs::create_dir_all(src.join("files")).unwrap();
    // 6 MB in files of different sizes, more than the 2 MB target holds.
    let mut expected = Vec::new();
    for i in 0..24u64 {
        let n = [4 << 10, 40 << 10, 200 << 10, 700 << 10][i as usize % 4];
        let p = src.join("files").join(format!("f{i:02}"));
        let data = random_bytes(100 + i, n);
        fs::write(&p, &data).unwrap();
        expected.push((format!("f{i:02}"), data));
    }
    fs::create_dir_all(src.join("empty-dir")).unwrap();
    let out = env.backup(&src);
    assert_eq!(out.code, Some(0), "{}", out.show());

    let mnt = env.root().join("small");
    fs::create_dir(&mnt).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "arca-test-tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::piped())
        .output();
    let _mount = match status {
        Ok(o) if o.status.success() => Mount(mnt.clone()),
        Ok(o) => {
            eprintln!(
                "SKIPPED restore_into_a_full_target: cannot mount a tmpfs ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED restore_into_a_full_target: cannot run mount ({e})");
            return;
        }
    };

    let target = mnt.join("restore");
    let out = env.run([
        OsStr::new("restore"),
        OsStr::new("--target"),
        target.as_os_str(),
    ]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    assert!(
        out.stderr.contains("full"),
        "the error does not say the target is full\n{}",
        out.show()
    );
    let files = target.join(src.strip_prefix("/").unwrap()).join("files");
    let mut present = 0;
    for (name, data) in &expected {
        let p = files.join(name);
        match fs::read(&p) {
            Ok(got) => {
                assert!(
                    got == *data,
                    "{} is present but wrong ({} bytes, expected {})",
                    p.display(),
                    got.len(),
                    data.len()
                );
                present += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{}: {e}", p.display()),
        }
    }
    let mut left = Vec::new();
    if target.exists() {
        find_leftovers(&target, &mut left);
    }
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
    eprintln!(
        "{present} of {} files restored completely before the target was full; message: {}",
        expected.len(),
        out.stderr.trim()
    );
    assert!(present < expected.len());
}
