//! The `arca` command as a new user runs it: enable, back up, list, browse, restore on a new
//! device, keys given in every accepted form, and the errors for bad keys.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        let src = env.src();
        std::fs::create_dir_all(src.join("docs/empty")).unwrap();
        std::fs::create_dir_all(src.join("photos")).unwrap();
        std::fs::write(src.join("docs/note.txt"), "meet at noon\n".repeat(100)).unwrap();
        let mut random = vec![0u8; 2_500_000];
        rand::RngCore::fill_bytes(
            &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7),
            &mut random,
        );
        std::fs::write(src.join("photos/a.jpg"), &random).unwrap();
        std::os::unix::fs::symlink("../docs/note.txt", src.join("photos/link")).unwrap();
        env
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn src(&self) -> PathBuf {
        self.path("src")
    }
    fn repo(&self) -> PathBuf {
        self.path("repo")
    }
    /// `arca` as device `device` (its own config dir) on this env's repository.
    fn arca(&self, device: &str) -> Command {
        let mut c = Command::cargo_bin("arca").unwrap();
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("ARCA_CONFIG_DIR", self.path(device))
            .env("ARCA_REPO", self.repo());
        c
    }
    fn json(&self, device: &str, args: &[&str]) -> Value {
        self.json_with(device, &[], args)
    }
    /// [`Env::json`] with more environment variables.
    fn json_with(&self, device: &str, vars: &[(&str, &str)], args: &[&str]) -> Value {
        let out = self
            .arca(device)
            .envs(vars.iter().copied())
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
    fn enable(&self) -> String {
        let v = self.json("devA", &["enable", "--key"]);
        v["key"].as_str().unwrap().to_string()
    }
}

fn same_tree(a: &Path, b: &Path) {
    let list = |root: &Path| {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let m = std::fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                if m.is_dir() {
                    stack.push(p.clone());
                    out.push((rel, None, m.permissions().mode()));
                } else if m.file_type().is_symlink() {
                    out.push((
                        rel,
                        Some(
                            std::fs::read_link(&p)
                                .unwrap()
                                .into_os_string()
                                .into_encoded_bytes(),
                        ),
                        0,
                    ));
                } else {
                    out.push((
                        rel,
                        Some(std::fs::read(&p).unwrap()),
                        m.permissions().mode(),
                    ));
                }
            }
        }
        out.sort();
        out
    };
    assert_eq!(list(a), list(b));
}

fn restored(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").unwrap())
}

#[test]
fn enable_prints_a_64_digit_key_and_keeps_it_private() {
    let env = Env::new();
    let out = env
        .arca("devA")
        .args(["enable", "--key"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.trim().split(' ').count() == 16)
        .expect("a line of 16 groups");
    assert!(
        line.trim()
            .split(' ')
            .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_hexdigit()))
    );
    let shown = env.arca("devA").args(["key", "show"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), line.trim());
    let mode = std::fs::metadata(env.path("devA/key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // enabling twice is refused and keeps the key
    env.arca("devA")
        .args(["enable", "--key"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already enabled"));
    let again = env.arca("devA").args(["key", "show"]).output().unwrap();
    assert_eq!(again.stdout, shown.stdout);
}

#[test]
fn backup_is_incremental_and_restores_on_a_new_device() {
    let env = Env::new();
    let key = env.enable();
    let first = env.json("devA", &["backup", env.src().to_str().unwrap()]);
    assert_eq!(
        first["files"], 2,
        "regular files; the symlink is not counted"
    );
    assert!(first["uploaded_bytes"].as_u64().unwrap() > 2_000_000);
    // the paths are remembered; nothing changed, so no file data is uploaded (only, at most,
    // the tree of a shared ancestor such as /tmp whose time another process changed)
    let second = env.json("devA", &["backup"]);
    assert!(second["new_bytes"].as_u64().unwrap() < 4096, "{second}");
    assert!(
        second["uploaded_bytes"].as_u64().unwrap() < 8192,
        "{second}"
    );
    std::fs::write(env.src().join("docs/new.txt"), "a new file").unwrap();
    let third = env.json("devA", &["backup"]);
    assert!(third["new_bytes"].as_u64().unwrap() < 10_000, "{third}");

    let snaps = env.json("devA", &["snapshots"]);
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 3);
    assert_eq!(
        snaps
            .iter()
            .map(|s| s["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(snaps[2]["files"], 3);

    // a new device with an empty config dir restores with the key alone, typed any way
    let variants = [
        key.clone(),
        key.to_uppercase(),
        key.replace(' ', "-"),
        key.replace(' ', ""),
        format!("  {}\n", key.replace(' ', "  ")),
    ];
    for (i, k) in variants.iter().enumerate() {
        let target = env.path(&format!("restore{i}"));
        env.arca(&format!("devB{i}"))
            .env("ARCA_KEY", k)
            .args(["restore", "--target", target.to_str().unwrap()])
            .assert()
            .success();
        same_tree(&env.src(), &restored(&target, &env.src()));
    }
    // ARCA_KEY_FILE works too
    std::fs::write(env.path("keyfile"), format!("{key}\n")).unwrap();
    let target = env.path("restore-file");
    env.arca("devC")
        .env("ARCA_KEY_FILE", env.path("keyfile"))
        .args(["restore", "--target", target.to_str().unwrap()])
        .assert()
        .success();
    same_tree(&env.src(), &restored(&target, &env.src()));

    // an older snapshot restores its own content
    let target = env.path("restore-old");
    let first_id = snaps[0]["id"].as_str().unwrap()[..8].to_string();
    env.arca("devA")
        .args(["restore", &first_id, "--target", target.to_str().unwrap()])
        .assert()
        .success();
    assert!(!restored(&target, &env.src()).join("docs/new.txt").exists());
}

#[test]
fn wrong_and_malformed_keys_get_clear_errors() {
    let env = Env::new();
    let key = env.enable();
    env.arca("devA")
        .args(["backup", env.src().to_str().unwrap()])
        .assert()
        .success();
    let target = env.path("t");
    let t = target.to_str().unwrap();

    // well-formed but wrong: "wrong key", never "damaged" or "corrupt"
    let mut wrong: Vec<char> = key.chars().collect();
    wrong[0] = if wrong[0] == '0' { '1' } else { '0' };
    let wrong: String = wrong.into_iter().collect();
    let out = env
        .arca("devB")
        .env("ARCA_KEY", &wrong)
        .args(["restore", "--target", t])
        .assert()
        .code(4);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_lowercase();
    assert!(err.contains("this key does not open this backup"), "{err}");
    assert!(
        !err.contains("damaged") && !err.contains("corrupt"),
        "{err}"
    );
    assert!(!target.exists() || std::fs::read_dir(&target).unwrap().next().is_none());

    // wrong length
    env.arca("devB")
        .env("ARCA_KEY", &key[..key.len() - 5])
        .args(["restore", "--target", t])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("must have 64"));
    // a non-hex digit
    let bad = key.replacen(|c: char| c.is_ascii_hexdigit(), "g", 1);
    env.arca("devB")
        .env("ARCA_KEY", &bad)
        .args(["restore", "--target", t])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("'g'"));
    // no key at all and no terminal to ask on
    env.arca("devB")
        .args(["restore", "--target", t])
        .assert()
        .code(6)
        .stderr(predicate::str::contains("ARCA_KEY"));
}

#[test]
fn missing_repository_and_missing_paths_are_explained() {
    let env = Env::new();
    env.arca("devA")
        .args(["snapshots"])
        .assert()
        .code(6)
        .stderr(
            predicate::str::contains("no arca repository")
                .and(predicate::str::contains("arca enable --key")),
        );
    env.enable();
    env.arca("devA")
        .args(["backup"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("name the files or folders"));
    env.arca("devA")
        .args(["backup", env.path("does-not-exist").to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("does-not-exist"));
    // the repository is still fine
    env.arca("devA").args(["check"]).assert().success();
}

#[test]
fn a_second_device_joins_an_existing_repository_only_with_its_key() {
    let env = Env::new();
    let key = env.enable();
    env.arca("devB")
        .args(["enable", "--key"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists"));
    env.arca("devB")
        .env("ARCA_KEY", &key)
        .args(["enable", "--key"])
        .assert()
        .success();
    env.arca("devB")
        .args(["backup", env.src().to_str().unwrap()])
        .assert()
        .success();
    let snaps = env.json("devA", &["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 1);
}

#[test]
fn ls_browses_and_include_restores_a_part() {
    let env = Env::new();
    env.enable();
    env.arca("devA")
        .args(["backup", env.src().to_str().unwrap()])
        .assert()
        .success();
    let src = env.src();
    let src_s = src.to_str().unwrap();
    let listing = env.json("devA", &["ls"]);
    let paths: Vec<String> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    for p in [
        "docs",
        "docs/note.txt",
        "docs/empty",
        "photos/a.jpg",
        "photos/link",
    ] {
        assert!(
            paths.contains(&format!("{src_s}/{p}")),
            "{p} not in {paths:?}"
        );
    }
    let link = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"].as_str().unwrap().ends_with("photos/link"))
        .unwrap();
    assert_eq!(link["type"], "symlink");
    assert_eq!(link["target"], "../docs/note.txt");
    let sub = env.json("devA", &["ls", "latest", &format!("{src_s}/docs")]);
    assert!(sub.as_array().unwrap().iter().all(|e| {
        e["path"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{src_s}/docs"))
    }));
    env.arca("devA")
        .args(["ls", &format!("{src_s}/nope")])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not in this backup"));

    let target = env.path("part");
    env.arca("devA")
        .args([
            "restore",
            "--target",
            target.to_str().unwrap(),
            "--include",
            &format!("{src_s}/docs"),
        ])
        .assert()
        .success();
    let r = restored(&target, &src);
    assert_eq!(
        std::fs::read(r.join("docs/note.txt")).unwrap(),
        std::fs::read(src.join("docs/note.txt")).unwrap()
    );
    assert!(r.join("docs/empty").is_dir());
    assert!(!r.join("photos").exists());
}

#[test]
fn status_check_and_quiet_output_without_a_terminal() {
    let env = Env::new();
    env.enable();
    let out = env
        .arca("devA")
        .args(["backup", env.src().to_str().unwrap()])
        .output()
        .unwrap();
    // not a terminal: no progress bar escape codes or carriage returns
    assert!(
        !out.stdout.contains(&b'\r') && !out.stdout.contains(&0x1b),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let st = env.json("devA", &["status"]);
    assert_eq!(st["enabled"], true);
    assert_eq!(st["repository_exists"], true);
    assert_eq!(st["key_opens_repository"], true);
    assert_eq!(st["snapshots"], 1);
    assert!(st["repository_bytes"].as_u64().unwrap() > 2_000_000);
    let chk = env.json("devA", &["check", "--read-data"]);
    assert_eq!(chk["ok"], true);
    assert!(chk["bytes_read"].as_u64().unwrap() > 2_000_000);
    env.arca("devA")
        .args(["-q", "check"])
        .assert()
        .success()
        .stdout(predicate::str::is_empty());
}

#[test]
fn progress_bars_appear_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let env = Env::new();
    env.enable();
    let mut big = vec![0u8; 40_000_000];
    rand::RngCore::fill_bytes(
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(9),
        &mut big,
    );
    std::fs::write(env.src().join("big.bin"), &big).unwrap();
    let arca = assert_cmd::cargo::cargo_bin("arca");
    let run = |args: &str| {
        let cmd = format!("{} {args}", arca.display());
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("ARCA_CONFIG_DIR", env.path("devA"))
            .env("ARCA_REPO", env.repo())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let shown = run(&format!("backup {}", env.src().display()));
    // The bar shows bytes and a rate ("0 B/s" if the backup ends before its second drawing,
    // as it can on an idle machine).
    assert!(
        shown.contains("backup") && shown.contains("B/s"),
        "no progress bar: {shown:?}"
    );
    assert!(
        shown.contains('\r') || shown.contains("\u{1b}["),
        "{shown:?}"
    );
    let target = env.path("t");
    let shown = run(&format!("restore --target {}", target.display()));
    // A restore this small may finish before the bar learns its totals; it is drawn all the same.
    assert!(
        shown.contains("restore ") && shown.contains("\u{1b}[2K"),
        "no progress bar: {shown:?}"
    );
    // --json keeps a terminal's output machine-readable
    let shown = run("--json check --read-data");
    assert!(!shown.contains("B/s"), "{shown:?}");
}

/// `ARCA_INDEX_IN_MEMORY` moves even a small repository's index to this device's disk: every
/// command answers as with the index in memory, the scratch files leave nothing behind, and a
/// bad value is refused with its name.
#[test]
fn the_index_on_disk_serves_every_command() {
    let env = Env::new();
    let key = env.enable();
    let with = |device: &str, args: &[&str]| -> Value {
        env.json_with(device, &[("ARCA_INDEX_IN_MEMORY", "2")], args)
    };
    with("devA", &["backup", env.src().to_str().unwrap()]);
    // Found on disk: an unchanged source stores nothing, a new file only itself.
    let second = with("devA", &["backup"]);
    assert!(second["new_bytes"].as_u64().unwrap() < 4096, "{second}");
    std::fs::write(env.src().join("docs/new.txt"), "a new file").unwrap();
    let third = with("devA", &["backup"]);
    assert!(third["new_bytes"].as_u64().unwrap() < 10_000, "{third}");
    let check = with("devA", &["check", "--read-data"]);
    assert_eq!(check["ok"], true, "{check}");
    assert!(check["blobs"].as_u64().unwrap() > 4, "{check}");
    let ls = with("devA", &["ls"]);
    assert!(ls.to_string().contains("new.txt"), "{ls}");
    // It did go to disk (and without the variable, it stays in memory).
    for (limit, on_disk) in [("2", true), ("1000000", false)] {
        let out = env
            .arca("devA")
            .env("ARCA_INDEX_IN_MEMORY", limit)
            .env("ARCA_LOG", "arca_engine=debug")
            .args(["ls"])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(log.contains("it is on disk"), on_disk, "{limit}: {log}");
    }
    // The scratch files are unnamed: the cache folder holds only the file cache.
    let caches: Vec<PathBuf> = std::fs::read_dir(env.path("devA/cache"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(caches.len(), 1);
    let mut left: Vec<String> = std::fs::read_dir(&caches[0])
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["files", "tmp"], "{}", caches[0].display());
    let tmp = std::fs::read_dir(caches[0].join("tmp")).unwrap().count();
    assert_eq!(tmp, 0, "backup's own scratch folder is left empty");

    let target = env.path("restore");
    env.arca("devB")
        .env("ARCA_INDEX_IN_MEMORY", "3")
        .env("ARCA_KEY", &key)
        .args(["restore", "--target", target.to_str().unwrap()])
        .assert()
        .success();
    same_tree(&env.src(), &restored(&target, &env.src()));

    for bad in ["lots", "0", "-1"] {
        env.arca("devA")
            .env("ARCA_INDEX_IN_MEMORY", bad)
            .args(["backup"])
            .assert()
            .failure()
            .stderr(predicate::str::contains(
                "ARCA_INDEX_IN_MEMORY must be a number",
            ));
    }
}

/// Every way of writing large files (`ARCA_WRITES`: the packs of a local repository and the
/// restored files of 64 KiB or more) gives back the same files. A 17 MB file spans more than
/// two of the streamed mode's 8 MiB windows, in its pack and in its restore.
#[test]
fn every_write_mode_backs_up_and_restores_the_same_files() {
    for mode in ["streamed", "direct", "cached"] {
        let env = Env::new();
        let mut big = vec![0u8; 17_000_000];
        rand::RngCore::fill_bytes(
            &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(11),
            &mut big,
        );
        std::fs::write(env.src().join("photos/video.mp4"), &big).unwrap();
        let vars = [("ARCA_WRITES", mode)];
        env.json_with("devA", &vars, &["enable", "--key"]);
        env.json_with("devA", &vars, &["backup", env.src().to_str().unwrap()]);
        let target = env.path("restore");
        env.json_with(
            "devA",
            &vars,
            &["restore", "--target", target.to_str().unwrap()],
        );
        same_tree(&env.src(), &restored(&target, &env.src()));
        env.json_with("devA", &vars, &["check", "--read-data"]);
    }
    // A value that is not a mode is refused before anything is done.
    let env = Env::new();
    env.arca("devA")
        .env("ARCA_WRITES", "fast")
        .args(["enable", "--key"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "ARCA_WRITES: \"fast\" is not one of direct, cached or streamed",
        ));
    assert!(!env.repo().exists());
}
