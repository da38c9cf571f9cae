//! Tampering with every kind of stored object (packs, index files, snapshots, the config): a
//! flipped byte, a truncation, a deletion, and a swap with another object of the same kind.
//!
//! Each attack is made on a fresh copy of a known-good repository. For each one:
//! - `arca check --read-data` fails with the right exit code and names the object, in its JSON
//!   and in its messages for people;
//! - `arca restore` either fails naming the object or, where the attack does not touch what it
//!   restores, succeeds; in every case each file it leaves is byte-identical to the backed-up
//!   file, and no temporary `.NAME.arca-restore` file is left behind;
//! - once the object is put back, `check --read-data` passes again.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rand::{RngCore, SeedableRng};
use serde_json::Value;

const OK: i32 = 0;
const WRONG_KEY: i32 = 4;
const DAMAGED: i32 = 5;
const NOT_SET_UP: i32 = 6;

/// Path inside the source folder -> content, for every regular file.
type Files = BTreeMap<PathBuf, Vec<u8>>;

/// What one backup added.
struct Backup {
    snapshot: String,
    files: Files,
    /// Repository paths of the packs and index files this backup wrote.
    packs: Vec<String>,
    indexes: Vec<String>,
}

/// A known-good repository of two backups, built once per test.
struct Fixture {
    dir: tempfile::TempDir,
    key: String,
    src: PathBuf,
    /// Oldest first.
    backups: Vec<Backup>,
    attacks: std::cell::Cell<usize>,
}

/// How a restore of the attacked repository may end.
enum Restore {
    /// It must fail with this exit code and a message naming one of these.
    Fails(i32, Vec<String>),
    /// It may succeed (the damage is somewhere it does not read); if it fails, it fails as
    /// damaged, naming one of these.
    MayFail(Vec<String>),
    /// It must succeed, restoring this snapshot (an index into `backups`).
    Succeeds(usize),
}

struct Checked {
    code: i32,
    json: String,
    stderr: String,
}

struct Expect {
    check_code: i32,
    /// Every one of these must appear in check's output.
    check_names: Vec<String>,
    restore: Restore,
}

fn damaged(names: &[&str], restore: Restore) -> Expect {
    Expect {
        check_code: DAMAGED,
        check_names: names.iter().map(|s| s.to_string()).collect(),
        restore,
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn arca(config_dir: &Path, repo: &Path) -> Command {
    let mut c = Command::cargo_bin("arca").unwrap();
    c.env_remove("ARCA_KEY")
        .env_remove("ARCA_KEY_FILE")
        .env_remove("ARCA_LOG")
        .env("ARCA_CONFIG_DIR", config_dir)
        .env("ARCA_REPO", repo);
    c
}

fn run_json(mut cmd: Command) -> Value {
    let out = cmd.arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every regular file under `root`, by path relative to it.
fn read_files(root: &Path) -> Files {
    let mut out = Files::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// Repository paths (like `data/ab/ab12...`) of every file under `dir` of the repository.
fn list(repo: &Path, dir: &str) -> Vec<String> {
    let root = repo.join(dir);
    if !root.exists() {
        return Vec::new();
    }
    let mut out: Vec<String> = read_files(&root)
        .into_keys()
        .map(|p| format!("{dir}/{}", p.display()))
        .collect();
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            fs::copy(e.path(), &t).unwrap();
        }
    }
}

// The attacks. Each returns the repository paths it touched, so that it can be undone.

fn flip(repo: &Path, obj: &str, at: impl FnOnce(usize) -> usize) -> Vec<String> {
    let p = repo.join(obj);
    let mut b = fs::read(&p).unwrap();
    let i = at(b.len());
    b[i] ^= 0x01;
    fs::write(&p, b).unwrap();
    vec![obj.to_string()]
}

fn flip_middle(repo: &Path, obj: &str) -> Vec<String> {
    flip(repo, obj, |n| n / 2)
}

fn truncate(repo: &Path, obj: &str) -> Vec<String> {
    let p = repo.join(obj);
    let n = fs::metadata(&p).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(n / 2)
        .unwrap();
    vec![obj.to_string()]
}

fn delete(repo: &Path, obj: &str) -> Vec<String> {
    fs::remove_file(repo.join(obj)).unwrap();
    vec![obj.to_string()]
}

fn swap(repo: &Path, a: &str, b: &str) -> Vec<String> {
    let (pa, pb) = (repo.join(a), repo.join(b));
    let tmp = repo.join("swap.tmp");
    fs::rename(&pa, &tmp).unwrap();
    fs::rename(&pb, &pa).unwrap();
    fs::rename(&tmp, &pb).unwrap();
    vec![a.to_string(), b.to_string()]
}

impl Fixture {
    /// Two backups of a few files (one of ~3 MB of random bytes, so several chunks) into a new
    /// repository: the second changes one small file and adds another, so it writes a small
    /// data pack and a tree pack of its own, an index file and a snapshot.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        let mut big = vec![0u8; 3_000_000];
        rand::rngs::StdRng::seed_from_u64(11).fill_bytes(&mut big);
        fs::write(src.join("big.bin"), &big).unwrap();
        fs::write(
            src.join("notes.txt"),
            "call the bank on monday\n".repeat(50),
        )
        .unwrap();
        fs::write(src.join("sub/list.txt"), "milk\neggs\nbread\n").unwrap();
        fs::write(src.join("sub/empty"), "").unwrap();

        let device = dir.path().join("device");
        let repo = dir.path().join("repo");
        let mut enable = arca(&device, &repo);
        enable.args(["enable", "--key"]);
        let key = run_json(enable)["key"].as_str().unwrap().to_string();

        let mut fx = Fixture {
            dir,
            key,
            src,
            backups: Vec::new(),
            attacks: std::cell::Cell::new(0),
        };
        fx.backup();
        fs::write(
            fx.src.join("notes.txt"),
            "call the bank on monday\n".repeat(50) + "and the plumber\n",
        )
        .unwrap();
        fs::write(fx.src.join("later.txt"), "written after the first backup\n").unwrap();
        fx.backup();

        let repo = fx.pristine();
        assert_eq!(list(&repo, "snapshots").len(), 2);
        assert_eq!(list(&repo, "index").len(), 2);
        assert_eq!(
            list(&repo, "data").len(),
            4,
            "a data and a tree pack per backup"
        );
        assert_eq!(fx.check(&repo).code, OK, "the fresh repository checks");
        fx
    }

    fn pristine(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn backup(&mut self) {
        let repo = self.pristine();
        let (packs, indexes) = (list(&repo, "data"), list(&repo, "index"));
        let mut cmd = arca(&self.dir.path().join("device"), &repo);
        cmd.arg("backup").arg(&self.src);
        let v = run_json(cmd);
        let new = |before: &[String], dir| {
            list(&repo, dir)
                .into_iter()
                .filter(|p| !before.contains(p))
                .collect::<Vec<_>>()
        };
        self.backups.push(Backup {
            snapshot: v["snapshot"].as_str().unwrap().to_string(),
            files: read_files(&self.src),
            packs: new(&packs, "data"),
            indexes: new(&indexes, "index"),
        });
    }

    fn snapshot_path(&self, i: usize) -> String {
        format!("snapshots/{}", self.backups[i].snapshot)
    }

    /// `arca` as a device that has never seen this repository, given the key in ARCA_KEY.
    fn arca(&self, repo: &Path) -> Command {
        let mut c = arca(&self.dir.path().join("restorer"), repo);
        c.env("ARCA_KEY", &self.key);
        c
    }

    /// `check --read-data`, with JSON and for people: the exit code (the same both ways), the
    /// JSON and the messages on stderr.
    fn check(&self, repo: &Path) -> Checked {
        let json = self
            .arca(repo)
            .args(["--json", "check", "--read-data"])
            .output()
            .unwrap();
        let human = self
            .arca(repo)
            .args(["check", "--read-data"])
            .output()
            .unwrap();
        let code = json.status.code().expect("check exited");
        assert_eq!(
            human.status.code(),
            Some(code),
            "the same exit code with and without --json"
        );
        let v: Value = serde_json::from_slice(&json.stdout).unwrap_or_else(|e| {
            panic!(
                "check --json printed no JSON ({e}): {}",
                String::from_utf8_lossy(&json.stdout)
            )
        });
        if code == OK {
            assert_eq!(v["ok"], true, "{v}");
        } else {
            assert!(v["ok"] == false || v["exit_code"] == code, "{v}");
        }
        Checked {
            code,
            json: String::from_utf8_lossy(&json.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&human.stderr).into_owned(),
        }
    }

    /// Makes `attack` on a fresh copy of the repository and checks what follows (see the top of
    /// this file).
    fn attack(&self, what: &str, attack: impl FnOnce(&Path) -> Vec<String>, expect: Expect) {
        let n = self.attacks.get();
        self.attacks.set(n + 1);
        let work = self.dir.path().join(format!("attack-{n}"));
        let repo = work.join("repo");
        copy_dir(&self.pristine(), &repo);
        let touched = attack(&repo);

        // 1. check finds it and says where.
        let c = self.check(&repo);
        let out = format!("JSON: {}\nstderr: {}", c.json, c.stderr);
        assert_eq!(c.code, expect.check_code, "{what}: check exit code\n{out}");
        // Its JSON and its messages for people must each name the object.
        for name in &expect.check_names {
            assert!(
                c.json.contains(name.as_str()),
                "{what}: check's JSON does not name {name}\n{out}"
            );
            if c.code != OK {
                assert!(
                    c.stderr.contains(name.as_str()),
                    "{what}: check's messages do not name {name}\n{out}"
                );
            }
        }

        // 2. restore, with JSON and for people, each into a fresh folder.
        for json in [true, false] {
            let target = work.join(if json { "out-json" } else { "out" });
            let mut cmd = self.arca(&repo);
            if json {
                cmd.arg("--json");
            }
            let out = cmd
                .arg("restore")
                .arg("--target")
                .arg(&target)
                .output()
                .unwrap();
            let code = out.status.code().expect("restore exited");
            let text = format!(
                "stdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let message = if json {
                String::from_utf8_lossy(&out.stdout).into_owned()
            } else {
                String::from_utf8_lossy(&out.stderr).into_owned()
            };
            let latest = self.backups.len() - 1;
            let restored = match (&expect.restore, code) {
                (Restore::Succeeds(i), OK) => Some(*i),
                (Restore::MayFail(_), OK) => Some(latest),
                (Restore::Fails(want, names), got) => {
                    assert_eq!(got, *want, "{what}: restore exit code\n{text}");
                    assert!(
                        names.iter().any(|n| message.contains(n.as_str())),
                        "{what}: restore's error names none of {names:?}\n{text}"
                    );
                    None
                }
                (Restore::MayFail(names), got) => {
                    assert_eq!(got, DAMAGED, "{what}: restore exit code\n{text}");
                    assert!(
                        names.iter().any(|n| message.contains(n.as_str())),
                        "{what}: restore's error names none of {names:?}\n{text}"
                    );
                    None
                }
                (Restore::Succeeds(_), got) => panic!("{what}: restore failed ({got})\n{text}"),
            };
            if json && let Some(i) = restored {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(
                    v["snapshot"], self.backups[i].snapshot,
                    "{what}: restored the wrong backup\n{text}"
                );
            }
            // A restore that stops early leaves only whole, correct files; one that succeeds
            // leaves all of them.
            let expected = &self.backups[restored.unwrap_or(latest)].files;
            let found = self.verify_restored(what, &target, expected, restored.is_some());
            eprintln!(
                "{what}: restore{} exited {code}, left {found} of {} files",
                if json { " --json" } else { "" },
                expected.len()
            );
        }

        // 3. Put the objects back: the repository is whole again.
        let pristine = self.pristine();
        for obj in &touched {
            let (from, to) = (pristine.join(obj), repo.join(obj));
            if from.exists() {
                fs::copy(from, to).unwrap();
            } else {
                let _ = fs::remove_file(to);
            }
        }
        let c = self.check(&repo);
        assert_eq!(
            c.code, OK,
            "{what}: check after undoing the attack\n{}",
            c.json
        );
        fs::remove_dir_all(&work).unwrap();
    }

    /// Checks every file under `target` against `expected`; returns how many there are.
    fn verify_restored(
        &self,
        what: &str,
        target: &Path,
        expected: &Files,
        complete: bool,
    ) -> usize {
        // The restore mirrors the absolute source path under the target.
        let inner = target.join(self.src.strip_prefix("/").unwrap());
        if !target.exists() {
            assert!(!complete, "{what}: nothing restored");
            return 0;
        }
        let mut found = 0;
        for (rel, bytes) in read_files(target) {
            let name = rel.file_name().unwrap().as_bytes();
            assert!(
                !(name.starts_with(b".") && name.ends_with(b".arca-restore")),
                "{what}: a temporary file was left behind: {}",
                rel.display()
            );
            let in_src = target
                .join(&rel)
                .strip_prefix(&inner)
                .unwrap_or_else(|_| {
                    panic!(
                        "{what}: restored outside the source folder: {}",
                        rel.display()
                    )
                })
                .to_path_buf();
            let want = expected.get(&in_src).unwrap_or_else(|| {
                panic!(
                    "{what}: restored a file the backup does not hold: {}",
                    rel.display()
                )
            });
            assert!(
                bytes == *want,
                "{what}: {} was restored with wrong bytes ({} bytes, expected {})",
                in_src.display(),
                bytes.len(),
                want.len()
            );
            found += 1;
        }
        if complete {
            assert_eq!(
                found,
                expected.len(),
                "{what}: a successful restore left files out"
            );
        }
        found
    }
}

#[test]
fn tampered_packs_are_found_and_never_restored() {
    let fx = Fixture::new();
    let packs = list(&fx.pristine(), "data");
    let size = |p: &String| fs::metadata(fx.pristine().join(p)).unwrap().len();
    let mut by_size = packs.clone();
    by_size.sort_by_key(size);
    let big = by_size.last().unwrap().clone();

    for p in &packs {
        let name = [p.as_str()];
        // Every pack holds something the latest backup needs: the big file's chunks, the
        // changed file, the unchanged `sub` tree, the new root trees.
        let middle = if *p == big {
            Restore::Fails(DAMAGED, strings(&name))
        } else {
            Restore::MayFail(strings(&name))
        };
        fx.attack(
            &format!("flip the middle of {p}"),
            |r| flip_middle(r, p),
            damaged(&name, middle),
        );
        // The last bytes: the header length, and inside the sealed header. A restore reads
        // blobs by the index and never the header, so it may succeed.
        fx.attack(
            &format!("flip the last byte of {p}"),
            |r| flip(r, p, |n| n - 1),
            damaged(&name, Restore::MayFail(strings(&name))),
        );
        fx.attack(
            &format!("flip a header byte of {p}"),
            |r| flip(r, p, |n| n - 20),
            damaged(&name, Restore::MayFail(strings(&name))),
        );
        fx.attack(
            &format!("flip the first byte of the first blob of {p}"),
            |r| flip(r, p, |_| 1),
            damaged(&name, Restore::MayFail(strings(&name))),
        );
        // Cut in half, the big pack loses chunks a restore needs; a small one may keep them all.
        let half = if *p == big {
            Restore::Fails(DAMAGED, strings(&name))
        } else {
            Restore::MayFail(strings(&name))
        };
        fx.attack(
            &format!("truncate {p}"),
            |r| truncate(r, p),
            damaged(&name, half),
        );
        fx.attack(
            &format!("truncate {p} to nothing"),
            |r| {
                fs::write(r.join(p), b"").unwrap();
                vec![p.clone()]
            },
            damaged(&name, Restore::Fails(DAMAGED, strings(&name))),
        );
        fx.attack(
            &format!("delete {p}"),
            |r| delete(r, p),
            damaged(&name, Restore::Fails(DAMAGED, strings(&name))),
        );
    }

    // Swap the biggest with the smallest, and the two others with each other.
    for (a, b) in [(&by_size[0], &by_size[3]), (&by_size[1], &by_size[2])] {
        let names = [a.as_str(), b.as_str()];
        fx.attack(
            &format!("swap {a} and {b}"),
            |r| swap(r, a, b),
            damaged(&names, Restore::Fails(DAMAGED, strings(&names))),
        );
    }
}

#[test]
fn tampered_index_files_are_found_and_never_restored() {
    let fx = Fixture::new();
    for b in &fx.backups {
        assert_eq!(b.indexes.len(), 1);
        let i = &b.indexes[0];
        let name = [i.as_str()];
        fx.attack(
            &format!("flip the middle of {i}"),
            |r| flip_middle(r, i),
            damaged(&name, Restore::Fails(DAMAGED, strings(&name))),
        );
        fx.attack(
            &format!("flip the last byte of {i}"),
            |r| flip(r, i, |n| n - 1),
            damaged(&name, Restore::Fails(DAMAGED, strings(&name))),
        );
        fx.attack(
            &format!("truncate {i}"),
            |r| truncate(r, i),
            damaged(&name, Restore::Fails(DAMAGED, strings(&name))),
        );
        // Nothing names an index file, so a lost one shows as blobs missing from every index,
        // in the packs it listed; the latest backup needs blobs from both backups' packs.
        let mut lost: Vec<&str> = vec!["not in any index"];
        lost.extend(b.packs.iter().map(|p| p.as_str()));
        fx.attack(
            &format!("delete {i}"),
            |r| delete(r, i),
            damaged(
                &lost,
                Restore::Fails(DAMAGED, strings(&["not in any index"])),
            ),
        );
    }
    let (a, b) = (&fx.backups[0].indexes[0], &fx.backups[1].indexes[0]);
    let names = [a.as_str(), b.as_str()];
    fx.attack(
        "swap the two index files",
        |r| swap(r, a, b),
        damaged(&names, Restore::Fails(DAMAGED, strings(&names))),
    );
}

#[test]
fn tampered_snapshots_are_found_and_never_restored() {
    let fx = Fixture::new();
    for i in 0..2 {
        let s = fx.snapshot_path(i);
        let name = [s.as_str()];
        // Restore lists every snapshot to find the latest, so any damaged one stops it.
        fx.attack(
            &format!("flip the middle of {s}"),
            |r| flip_middle(r, &s),
            damaged(&name, Restore::Fails(DAMAGED, strings(&name))),
        );
        fx.attack(
            &format!("flip the last byte of {s}"),
            |r| flip(r, &s, |n| n - 1),
            damaged(&name, Restore::Fails(DAMAGED, strings(&name))),
        );
        fx.attack(
            &format!("truncate {s}"),
            |r| truncate(r, &s),
            damaged(&name, Restore::Fails(DAMAGED, strings(&name))),
        );
    }
    let (a, b) = (fx.snapshot_path(0), fx.snapshot_path(1));
    let names = [a.as_str(), b.as_str()];
    fx.attack(
        "swap the two snapshots",
        |r| swap(r, &a, &b),
        damaged(&names, Restore::Fails(DAMAGED, strings(&names))),
    );

    // A deleted snapshot: nothing in the repository names a snapshot that must exist (a
    // snapshot's parent may be gone by design once old backups are forgotten), so the
    // repository alone cannot tell it from a snapshot never made, and check passes. The
    // restore takes the newest snapshot left, and says which, and writes exactly its bytes.
    // Telling a withheld latest snapshot is the job of the vault's backup head register.
    fx.attack(
        "delete the older snapshot",
        |r| delete(r, &a),
        Expect {
            check_code: OK,
            check_names: vec![],
            restore: Restore::Succeeds(1),
        },
    );
    fx.attack(
        "delete the latest snapshot",
        |r| delete(r, &b),
        Expect {
            check_code: OK,
            check_names: vec![],
            restore: Restore::Succeeds(0),
        },
    );
}

#[test]
fn tampered_config_is_found_and_never_restored() {
    let fx = Fixture::new();
    let name = ["config"];
    fx.attack(
        "flip the middle of config",
        |r| flip_middle(r, "config"),
        damaged(&name, Restore::Fails(DAMAGED, strings(&name))),
    );
    fx.attack(
        "flip the first byte of config",
        |r| flip(r, "config", |_| 0),
        damaged(&name, Restore::Fails(DAMAGED, strings(&name))),
    );
    fx.attack(
        "flip the last byte of config",
        |r| flip(r, "config", |n| n - 1),
        damaged(&name, Restore::Fails(DAMAGED, strings(&name))),
    );
    fx.attack(
        "truncate config",
        |r| truncate(r, "config"),
        damaged(&name, Restore::Fails(DAMAGED, strings(&name))),
    );
    fx.attack(
        "delete config",
        |r| delete(r, "config"),
        Expect {
            check_code: NOT_SET_UP,
            check_names: strings(&name),
            restore: Restore::Fails(NOT_SET_UP, strings(&name)),
        },
    );

    // Another repository's config, made with another key: intact, but its key check does not
    // open under this key, which is all a reader can know.
    let other = fx.dir.path().join("other");
    let mut enable = arca(&other.join("device"), &other.join("repo"));
    enable.args(["enable", "--key"]);
    let other_key = run_json(enable)["key"].as_str().unwrap().to_string();
    assert_ne!(other_key, fx.key);
    let other_config = fs::read(other.join("repo/config")).unwrap();
    fx.attack(
        "swap in another repository's config",
        |r| {
            fs::write(r.join("config"), &other_config).unwrap();
            vec!["config".to_string()]
        },
        Expect {
            check_code: WRONG_KEY,
            check_names: strings(&["key does not open"]),
            restore: Restore::Fails(WRONG_KEY, strings(&["key does not open"])),
        },
    );
}
