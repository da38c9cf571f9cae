//! Password mode as a user runs it, driving the real `arca` binary against an embedded key
//! vault (`ARCA_VAULT` = a database path): enable with a password, restore on a new device with
//! the password alone, the guess count-down and destruction, password change and verify,
//! disable, the head register's rollback check, and that no password or key leaks into the
//! vault's files or the command's output.
//!
//! `ARCA_INSECURE_TEST_KSF=1` makes Argon2id cheap (64 KiB, 1 pass) for these tests only.

use std::cell::RefCell;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

const PW: &str = "correct horse battery staple orbit";
const PW2: &str = "violet submarine juggles quietly at dawn";
const PW3: &str = "seventeen paper lanterns over the fjord";
const WRONG: &str = "not the password at all, sorry";

struct Env {
    dir: tempfile::TempDir,
    /// Everything every command printed, except commands run to show the key on purpose.
    output: RefCell<Vec<u8>>,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

impl Env {
    fn new() -> Self {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            output: RefCell::new(Vec::new()),
        };
        let src = env.src();
        std::fs::create_dir_all(src.join("docs/empty")).unwrap();
        std::fs::write(src.join("docs/note.txt"), "meet at noon\n".repeat(100)).unwrap();
        let mut random = vec![0u8; 300_000];
        rand::RngCore::fill_bytes(
            &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(11),
            &mut random,
        );
        std::fs::write(src.join("photo.jpg"), &random).unwrap();
        std::os::unix::fs::symlink("docs/note.txt", src.join("link")).unwrap();
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
    fn vault_db(&self) -> PathBuf {
        self.path("vault/vault.db")
    }
    /// `arca` as device `device` (its own config dir), with this env's repository and vault.
    fn cmd(&self, device: &str, envs: &[(&str, &str)]) -> Command {
        let mut c = Command::cargo_bin("arca").unwrap();
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("ARCA_CONFIG_DIR", self.path(device))
            .env("ARCA_REPO", self.repo())
            .env("ARCA_VAULT", self.vault_db())
            .env("ARCA_INSECURE_TEST_KSF", "1");
        for (k, v) in envs {
            c.env(k, v);
        }
        c
    }
    fn run_cmd(&self, mut c: Command, args: &[&str], log: bool) -> Out {
        let out = c.args(args).output().unwrap();
        if log {
            let mut o = self.output.borrow_mut();
            o.extend_from_slice(&out.stdout);
            o.extend_from_slice(&out.stderr);
        }
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
    fn run(&self, device: &str, envs: &[(&str, &str)], args: &[&str]) -> Out {
        self.run_cmd(self.cmd(device, envs), args, true)
    }
    /// The 64-digit key of `device` (not logged: showing it is the point).
    fn key_of(&self, device: &str) -> String {
        let out = self
            .run_cmd(self.cmd(device, &[]), &["key", "show"], false)
            .ok();
        out.stdout.trim().to_string()
    }
    /// Enables password-only backup on device A and backs up the source once.
    fn enable_and_back_up(&self) {
        let out = self
            .run("devA", &[("ARCA_PASSWORD", PW)], &["enable", "--password"])
            .ok();
        assert!(
            out.stdout.contains("restore on a new device"),
            "{}",
            out.stdout
        );
        let src = self.src();
        self.run("devA", &[], &["backup", src.to_str().unwrap()])
            .ok();
    }
    fn restore(&self, device: &str, envs: &[(&str, &str)], target: &str) -> Out {
        let t = self.path(target);
        self.run(device, envs, &["restore", "--target", t.to_str().unwrap()])
    }
    fn assert_restored(&self, target: &str) {
        same_tree(&self.src(), &restored(&self.path(target), &self.src()));
    }
}

fn restored(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").unwrap())
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
                    let t = std::fs::read_link(&p).unwrap();
                    out.push((rel, Some(t.into_os_string().into_encoded_bytes()), 0));
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

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The forms a 64-digit key could leak in: its bytes, and its hex digits in any layout.
fn key_forms(digits: &str) -> Vec<Vec<u8>> {
    let hex: String = digits.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(hex.len(), 64, "{digits}");
    vec![
        hex::decode(&hex).unwrap(),
        hex.to_lowercase().into_bytes(),
        hex.to_uppercase().into_bytes(),
        digits.as_bytes().to_vec(),
    ]
}

/// Every file under `dir` (the vault's database, its WAL, ...) with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn assert_no_secrets(env: &Env, digits: &str, passwords: &[&str]) {
    let mut secrets = key_forms(digits);
    secrets.extend(passwords.iter().map(|p| p.as_bytes().to_vec()));
    let files = files_under(env.vault_db().parent().unwrap());
    assert!(files.iter().any(|(p, _)| p.ends_with("vault.db")));
    for (path, bytes) in &files {
        for s in &secrets {
            assert!(
                !contains(bytes, s),
                "{} holds a secret ({} bytes)",
                path.display(),
                s.len()
            );
        }
    }
    let output = env.output.borrow();
    assert!(!output.is_empty());
    for s in &secrets {
        assert!(
            !contains(&output, s),
            "the output holds a secret:\n{}",
            String::from_utf8_lossy(&output)
        );
    }
}

#[test]
fn restore_on_a_new_device_with_the_password_alone() {
    let env = Env::new();
    env.enable_and_back_up();
    // Device B has nothing: no config, no key, only the password.
    env.restore("devB", &[("ARCA_PASSWORD", PW)], "r").ok();
    env.assert_restored("r");
    assert!(!env.path("devB/key").exists(), "a restore does not enable");
    // Listing works the same way.
    let v = env
        .run("devB", &[("ARCA_PASSWORD", PW)], &["--json", "snapshots"])
        .ok()
        .json();
    assert_eq!(v.as_array().unwrap().len(), 1);
    // Without the password and without a terminal, it says what to set.
    let out = env.restore("devB", &[], "r2");
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.stderr.contains("ARCA_PASSWORD"), "{}", out.stderr);

    // Only this user can read the vault's files.
    for f in ["vault/vault.db", "vault/vault.master.key"] {
        let mode = std::fs::metadata(env.path(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let status = env.run("devA", &[], &["--json", "status"]).ok().json();
    assert_eq!(status["protection"], "password");
    assert!(
        status["password_status"]
            .as_str()
            .unwrap()
            .contains("10 of 10"),
        "{status}"
    );
    let digits = env.key_of("devA");
    assert_no_secrets(&env, &digits, &[PW]);
}

#[test]
fn wrong_passwords_count_down_then_the_password_backup_is_gone() {
    let env = Env::new();
    env.enable_and_back_up();
    let wrong = [("ARCA_PASSWORD", WRONG)];
    // Two wrong guesses, then the right one refunds them.
    for left in [9, 8] {
        let out = env.restore("devB", &wrong, "r");
        assert_eq!(out.code, 4, "{}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("wrong password; {left} guesses left")),
            "{}",
            out.stderr
        );
    }
    env.restore("devB", &[("ARCA_PASSWORD", PW)], "r").ok();
    env.assert_restored("r");
    // Ten wrong guesses in a row: 9, 8, ... 1 left, and the tenth destroys the record.
    for left in (1..=9).rev() {
        let v = env.run("devB", &wrong, &["--json", "snapshots"]);
        assert_eq!(v.code, 4, "{}", v.stdout);
        assert_eq!(v.json()["guesses_left"], left, "{}", v.stdout);
    }
    let gone = "this password backup is gone; use the 64-digit key if you saved one";
    let out = env.restore("devB", &wrong, "r2");
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains(gone), "{}", out.stderr);
    // The right password cannot bring it back.
    let out = env.restore("devB", &[("ARCA_PASSWORD", PW)], "r2");
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains(gone), "{}", out.stderr);
    let out = env.run("devA", &[("ARCA_PASSWORD", PW)], &["password", "verify"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    // The 64-digit key still opens the backup.
    let digits = env.key_of("devA");
    env.restore("devC", &[("ARCA_KEY", &digits)], "r3").ok();
    env.assert_restored("r3");
    assert_no_secrets(&env, &digits, &[PW]);
}

#[test]
fn a_weak_password_is_refused_with_a_reason() {
    let env = Env::new();
    for weak in ["password123", "arca backup", "qwertyuiop", "aaaaaaaaaaaa"] {
        let out = env.run(
            "devA",
            &[("ARCA_PASSWORD", weak)],
            &["enable", "--password"],
        );
        assert_eq!(out.code, 2, "{weak}: {}", out.stderr);
        assert!(out.stderr.contains("too weak"), "{weak}: {}", out.stderr);
        // The reason names what is wrong or what to do.
        let reason = out.stderr.split("needed): ").nth(1).unwrap_or("");
        assert!(reason.trim().len() > 10, "{weak}: {}", out.stderr);
    }
    // Nothing was created.
    assert!(!env.repo().join("config").exists());
    assert!(!env.path("devA/key").exists());
    assert!(!env.vault_db().exists());
}

#[test]
fn password_change_with_the_old_password_and_with_the_key() {
    let env = Env::new();
    env.enable_and_back_up();
    // With the current password.
    env.run(
        "devA",
        &[("ARCA_PASSWORD", PW), ("ARCA_NEW_PASSWORD", PW2)],
        &["password", "change"],
    )
    .ok();
    assert_eq!(env.restore("devB", &[("ARCA_PASSWORD", PW)], "r").code, 4);
    env.restore("devB", &[("ARCA_PASSWORD", PW2)], "r").ok();
    env.assert_restored("r");
    // A wrong current password changes nothing and spends a guess.
    let out = env.run(
        "devA",
        &[("ARCA_PASSWORD", WRONG), ("ARCA_NEW_PASSWORD", PW3)],
        &["password", "change"],
    );
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("wrong password; 9 guesses left"),
        "{}",
        out.stderr
    );
    // A weak new password is refused before anything is spent.
    let out = env.run(
        "devA",
        &[("ARCA_PASSWORD", PW2), ("ARCA_NEW_PASSWORD", "123456")],
        &["password", "change"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("too weak"), "{}", out.stderr);

    // With this device's key instead of the forgotten password.
    env.run(
        "devA",
        &[("ARCA_NEW_PASSWORD", PW3)],
        &["password", "change", "--with-key"],
    )
    .ok();
    assert_eq!(env.restore("devB", &[("ARCA_PASSWORD", PW2)], "r2").code, 4);
    env.restore("devB", &[("ARCA_PASSWORD", PW3)], "r2").ok();
    env.assert_restored("r2");

    // With the 64-digit key on a device that has nothing else; a wrong key is refused.
    let digits = env.key_of("devA");
    let other = "0123 4567 89ab cdef 0123 4567 89ab cdef 0123 4567 89ab cdef 0123 4567 89ab cdef";
    let out = env.run(
        "devC",
        &[("ARCA_KEY", other), ("ARCA_NEW_PASSWORD", PW)],
        &["password", "change", "--with-key"],
    );
    assert_eq!(out.code, 4, "{}", out.stderr);
    env.run(
        "devC",
        &[("ARCA_KEY", &digits), ("ARCA_NEW_PASSWORD", PW)],
        &["password", "change", "--with-key"],
    )
    .ok();
    env.restore("devB", &[("ARCA_PASSWORD", PW)], "r3").ok();
    env.assert_restored("r3");
    assert_no_secrets(&env, &digits, &[PW, PW2, PW3]);
}

#[test]
fn verify_spends_a_guess_that_a_right_password_refunds() {
    let env = Env::new();
    env.enable_and_back_up();
    let verify = |pw: &str| env.run("devA", &[("ARCA_PASSWORD", pw)], &["password", "verify"]);
    let out = verify(PW).ok();
    assert!(out.stdout.contains("ok"), "{}", out.stdout);
    for left in [9, 8] {
        let out = verify(WRONG);
        assert_eq!(out.code, 4, "{}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("wrong password; {left} guesses left")),
            "{}",
            out.stderr
        );
    }
    let v = env
        .run(
            "devA",
            &[("ARCA_PASSWORD", PW)],
            &["--json", "password", "verify"],
        )
        .ok()
        .json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["guesses_left"], 10);
    let out = verify(WRONG);
    assert!(out.stderr.contains("9 guesses left"), "{}", out.stderr);
    // A device whose backup has no password says so.
    let other = Env::new();
    other.run("devA", &[], &["enable", "--key"]).ok();
    let out = other.run("devA", &[("ARCA_PASSWORD", PW)], &["password", "verify"]);
    assert_eq!(out.code, 6, "{}", out.stderr);
}

#[test]
fn disable_deletes_the_password_record_and_this_devices_key() {
    let env = Env::new();
    env.enable_and_back_up();
    let digits = env.key_of("devA");
    // Password only: the key was never shown, so disabling asks for confirmation.
    let out = env.run("devA", &[], &["disable"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    assert!(env.path("devA/key").exists());
    env.run("devA", &[], &["disable", "--yes"]).ok();
    assert!(!env.path("devA/key").exists());
    assert!(!env.path("devA/device.json").exists());
    // The password no longer opens anything; the backup is kept for the key.
    let out = env.restore("devB", &[("ARCA_PASSWORD", PW)], "r");
    assert_eq!(out.code, 6, "{}", out.stderr);
    env.restore("devB", &[("ARCA_KEY", &digits)], "r").ok();
    env.assert_restored("r");
    let out = env.run("devA", &[], &["disable"]);
    assert_eq!(out.code, 6, "{}", out.stderr);

    // --delete-backup also deletes the repository's files.
    let env = Env::new();
    env.enable_and_back_up();
    let out = env.run("devA", &[], &["disable", "--delete-backup"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(env.repo().join("config").exists());
    env.run("devA", &[], &["disable", "--delete-backup", "--yes"])
        .ok();
    assert!(
        !env.repo().exists(),
        "the emptied repository folder is removed"
    );
    assert!(!env.path("devA/key").exists());
    let out = env.restore("devB", &[("ARCA_PASSWORD", PW)], "r");
    assert_eq!(out.code, 6, "{}", out.stderr);
}

#[test]
fn a_rolled_back_repository_is_refused_unless_allowed() {
    let env = Env::new();
    env.enable_and_back_up();
    // Keep the repository as it was after backup 1; back up again (the head moves to 2).
    copy_dir(&env.repo(), &env.path("repo-at-1"));
    std::fs::write(env.src().join("docs/new.txt"), "written after backup 1").unwrap();
    env.run("devA", &[], &["backup"]).ok();
    let pw = [("ARCA_PASSWORD", PW)];
    env.restore("devB", &pw, "r").ok();
    // The storage serves the older state.
    std::fs::remove_dir_all(env.repo()).unwrap();
    std::fs::rename(env.path("repo-at-1"), env.repo()).unwrap();
    let out = env.restore("devB", &pw, "r2");
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(out.stderr.contains("older state"), "{}", out.stderr);
    assert!(
        out.stderr.contains("#1") && out.stderr.contains("#2"),
        "{}",
        out.stderr
    );
    assert!(!env.path("r2").exists());
    let out = env.run("devA", &[], &["snapshots"]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    // With --allow-rollback the old state is restored, with a warning.
    let t = env.path("r3");
    let out = env.run(
        "devB",
        &pw,
        &[
            "restore",
            "--allow-rollback",
            "--target",
            t.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("--allow-rollback"), "{}", out.stderr);
    assert!(restored(&t, &env.src()).join("docs/note.txt").exists());
    assert!(!restored(&t, &env.src()).join("docs/new.txt").exists());

    // A new backup into the rolled-back storage takes a sequence number past the head (#3, not
    // a second #2), so the head moves on and restores need no override again.
    let out = env.run("devA", &[], &["--json", "backup"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["seq"], 3, "{}", out.stdout);
    let t = env.path("r5");
    env.restore("devC", &pw, t.to_str().unwrap()).ok();
    assert!(restored(&t, &env.src()).join("docs/new.txt").exists());

    // A vault that cannot be reached costs the head register, never the backup: exit 3.
    let missing = env.path("nowhere/vault.db");
    let out = env.run(
        "devA",
        &[("ARCA_VAULT", missing.to_str().unwrap())],
        &["backup"],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("head register was not advanced"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("saved"), "{}", out.stdout);

    // A head whose MAC is not this backup's is an error, not a pass.
    let conn = rusqlite::Connection::open(env.vault_db()).unwrap();
    conn.execute("UPDATE heads SET seq = 1, mac = zeroblob(32)", [])
        .unwrap();
    drop(conn);
    let out = env.restore("devB", &pw, "r4");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("does not verify"), "{}", out.stderr);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn key_and_password_together_and_added_later() {
    // Both at once: the key is shown, and either opens the backup on a new device.
    let env = Env::new();
    let out = env
        .run(
            "devA",
            &[("ARCA_PASSWORD", PW)],
            &["--json", "enable", "--key", "--password"],
        )
        .ok()
        .json();
    let digits = out["key"].as_str().unwrap().to_string();
    assert_eq!(out["password"], true);
    assert_eq!(out["guess_limit"], 10);
    let src = env.src();
    env.run("devA", &[], &["backup", src.to_str().unwrap()])
        .ok();
    env.restore("devB", &[("ARCA_KEY", &digits)], "r1").ok();
    env.restore("devC", &[("ARCA_PASSWORD", PW)], "r2").ok();
    env.assert_restored("r1");
    env.assert_restored("r2");
    let status = env.run("devA", &[], &["--json", "status"]).ok().json();
    assert_eq!(status["protection"], "password and 64-digit key");

    // A password added to a device enabled with --key keeps its key.
    let env = Env::new();
    // (Not logged: printing the key is what `enable --key` is for.)
    let v = env
        .run_cmd(env.cmd("devA", &[]), &["--json", "enable", "--key"], false)
        .ok()
        .json();
    let digits = v["key"].as_str().unwrap().to_string();
    let src = env.src();
    env.run("devA", &[], &["backup", src.to_str().unwrap()])
        .ok();
    let db = env.vault_db();
    let out = env
        .run(
            "devA",
            &[("ARCA_PASSWORD", PW)],
            &[
                "enable",
                "--password",
                "--guess-limit",
                "5",
                "--vault",
                db.to_str().unwrap(),
            ],
        )
        .ok();
    assert!(out.stdout.contains("5 wrong guesses"), "{}", out.stdout);
    assert_eq!(env.key_of("devA"), digits);
    env.restore("devB", &[("ARCA_PASSWORD", PW)], "r").ok();
    env.assert_restored("r");
    let out = env.restore("devC", &[("ARCA_PASSWORD", WRONG)], "r");
    assert!(out.stderr.contains("4 guesses left"), "{}", out.stderr);
    // Enabling it twice is refused, pointing at `password change`.
    let out = env.run("devA", &[("ARCA_PASSWORD", PW2)], &["enable", "--password"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("password change"), "{}", out.stderr);
    assert_no_secrets(&env, &digits, &[PW, PW2]);
}

#[test]
fn a_second_device_joins_with_the_password_and_backs_up() {
    let env = Env::new();
    env.enable_and_back_up();
    let out = env
        .run("devB", &[("ARCA_PASSWORD", PW)], &["enable", "--password"])
        .ok();
    assert!(out.stdout.contains("joined"), "{}", out.stdout);
    assert_eq!(env.key_of("devB"), env.key_of("devA"));
    std::fs::write(env.src().join("docs/from-b.txt"), "device B was here").unwrap();
    let src = env.src();
    env.run("devB", &[], &["backup", src.to_str().unwrap()])
        .ok();
    // Device B's backup advanced the head; device A sees it and is not refused.
    let v = env.run("devA", &[], &["--json", "snapshots"]).ok().json();
    assert_eq!(v.as_array().unwrap().len(), 2);
    env.restore("devC", &[("ARCA_PASSWORD", PW)], "r").ok();
    env.assert_restored("r");
}

#[test]
fn the_default_embedded_vault_lives_beside_the_default_repository() {
    let env = Env::new();
    let cmd = |device: &str, pw: &str| {
        let mut c = Command::cargo_bin("arca").unwrap();
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", env.path("home"))
            .env("ARCA_CONFIG_DIR", env.path(device))
            .env("ARCA_INSECURE_TEST_KSF", "1")
            .env("ARCA_PASSWORD", pw);
        c
    };
    let src = env.src();
    env.run_cmd(cmd("devA", PW), &["enable", "--password"], true)
        .ok();
    env.run_cmd(cmd("devA", PW), &["backup", src.to_str().unwrap()], true)
        .ok();
    let data = env.path("home/.local/share/arca");
    assert!(data.join("repo/config").exists());
    assert!(data.join("vault.db").exists());
    let mode = std::fs::metadata(data.join("vault.master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let t = env.path("r");
    env.run_cmd(
        cmd("devB", PW),
        &["restore", "--target", t.to_str().unwrap()],
        true,
    )
    .ok();
    env.assert_restored("r");
}

/// A running `arca-vault serve` on 127.0.0.1:0, killed on drop.
struct VaultServer {
    child: std::process::Child,
    url: String,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Drop for VaultServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `arca-vault` binary beside `arca` in the target folder. A workspace build (what CI runs)
/// always has it; a `cargo test -p arca-cli` on a fresh tree may not.
fn vault_binary() -> Option<PathBuf> {
    let arca = assert_cmd::cargo::cargo_bin("arca");
    let p = arca.with_file_name("arca-vault");
    p.exists().then_some(p)
}

fn start_vault(bin: &Path, dir: &Path) -> VaultServer {
    use std::io::{BufRead, BufReader, Read};
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("vault.toml");
    std::fs::write(
        &cfg,
        r#"
master_key_file = "master.key"
create_master_key = true

[[issuer]]
name = "arca-test"
hs256_secret = "test secret: 0123456789abcdef0123456789abcdef"

[policy]
ksf_floor = { m_kib = 64, t = 1, p = 1 }
insecure_test_ksf = true

[rate_limit]
per_account_per_minute = 60000
per_account_burst = 10000
per_address_per_minute = 60000
per_address_burst = 10000
"#,
    )
    .unwrap();
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--database"])
        .arg(dir.join("vault.db"))
        .arg("--config")
        .arg(&cfg)
        .env("ARCA_VAULT_LOG", "debug")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn arca-vault");
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let mut pipe = child.stderr.take().unwrap();
        let buf = stderr.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
    }
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = out.read_to_end(&mut sink);
    });
    let url = match first.trim().strip_prefix("listening on ") {
        Some(u) => u.to_string(),
        None => {
            let _ = child.kill();
            std::thread::sleep(std::time::Duration::from_millis(100));
            panic!(
                "arca-vault did not start: {}",
                String::from_utf8_lossy(&stderr.lock().unwrap())
            );
        }
    };
    VaultServer { child, url, stderr }
}

#[test]
fn restore_with_the_password_through_an_arca_vault_server() {
    let Some(bin) = vault_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "arca-vault is not built; CI builds the workspace"
        );
        eprintln!("skipped: build arca-vault first (cargo build -p arca-vault)");
        return;
    };
    let env = Env::new();
    let vdir = env.path("server");
    let server = start_vault(&bin, &vdir);
    let token = std::process::Command::new(&bin)
        .args(["token", "issue", "--account", "alice", "--config"])
        .arg(vdir.join("vault.toml"))
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let url = server.url.as_str();
    let remote = [("ARCA_VAULT", url), ("ARCA_VAULT_TOKEN", token.as_str())];

    let mut a = remote.to_vec();
    a.push(("ARCA_PASSWORD", PW));
    let out = env.run("devA", &a, &["enable", "--password"]).ok();
    assert!(out.stdout.contains(url), "{}", out.stdout);
    // Later backups need neither variable: the device keeps the vault and its token.
    let src = env.src();
    env.run(
        "devA",
        &[("ARCA_VAULT", "")],
        &["backup", src.to_str().unwrap()],
    )
    .ok();

    let mut wrong = remote.to_vec();
    wrong.push(("ARCA_PASSWORD", WRONG));
    let out = env.restore("devB", &wrong, "r");
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("wrong password; 9 guesses left"),
        "{}",
        out.stderr
    );
    let out = env.restore("devB", &[("ARCA_VAULT", url), ("ARCA_PASSWORD", PW)], "r");
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.stderr.contains("ARCA_VAULT_TOKEN"), "{}", out.stderr);
    env.restore("devB", &a, "r").ok();
    env.assert_restored("r");

    // The head register went through the server: a rolled-back repository is refused.
    copy_dir(&env.repo(), &env.path("repo-at-1"));
    std::fs::write(env.src().join("docs/new.txt"), "after backup 1").unwrap();
    env.run("devA", &[("ARCA_VAULT", "")], &["backup"]).ok();
    std::fs::remove_dir_all(env.repo()).unwrap();
    std::fs::rename(env.path("repo-at-1"), env.repo()).unwrap();
    let out = env.restore("devB", &a, "r2");
    assert_eq!(out.code, 5, "{}", out.stderr);

    let digits = env.key_of("devA");
    let logs = server.stderr.lock().unwrap().clone();
    assert!(!logs.is_empty());
    let mut secrets = key_forms(&digits);
    secrets.push(PW.as_bytes().to_vec());
    for s in &secrets {
        assert!(!contains(&logs, s), "the vault's log holds a secret");
        for (p, bytes) in files_under(&vdir) {
            assert!(!contains(&bytes, s), "{} holds a secret", p.display());
        }
        assert!(
            !contains(&env.output.borrow(), s),
            "the output holds a secret"
        );
    }
}
