//! Live SQLite databases: an app keeps writing its database (in rollback-journal mode in one
//! test, in WAL mode in the other) while `arca backup` runs several times. Every snapshot must
//! restore to a database that passes `PRAGMA integrity_check`, keeps the app's invariants, holds
//! every transaction committed before that backup started (WAL content included), and stands
//! alone: no `-wal`, `-shm` or `-journal` file is stored or needed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use rusqlite::{Connection, OpenFlags, params};

const BACKUPS: usize = 5;
const ACCOUNTS: i64 = 50;

struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    repo: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("arca-sqlite-")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        let env = Env {
            config: root.join("device"),
            repo: root.join("repo"),
            root,
            _dir: dir,
        };
        env.ok(&["enable", "--key"]);
        env
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_arca"))
            .env("ARCA_CONFIG_DIR", &self.config)
            .env("ARCA_REPO", &self.repo)
            .env_remove("ARCA_KEY")
            .env_remove("ARCA_KEY_FILE")
            .env_remove("ARCA_LOG")
            .stdin(Stdio::null())
            .args(args)
            .output()
            .unwrap()
    }

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

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("arca {args:?}: not JSON ({e})\n{}", show(&out)))
    }
}

fn show(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Rollback,
    Wal,
}

/// An app that writes its database in a loop. Every transaction adds ledger rows and moves the
/// matching amounts into account balances, sometimes deletes an old row (and takes its amount
/// back out) or rewrites an old row's payload, and counts itself in `meta`. Invariants, true in
/// every committed state:
/// - each account's balance is the sum of its ledger amounts;
/// - `meta.rows` is the number of ledger rows;
/// - `meta.txns` is the number of committed transactions, and the largest `txn` in the ledger.
struct Writer {
    stop: Arc<AtomicBool>,
    /// Transactions known to be committed.
    committed: Arc<AtomicU64>,
    handle: Option<JoinHandle<rusqlite::Result<u64>>>,
}

fn setup_db(path: &Path, mode: Mode, rng: &mut StdRng) -> Connection {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(60)).unwrap();
    match mode {
        Mode::Rollback => {
            let m: String = c
                .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
                .unwrap();
            assert_eq!(m, "delete");
        }
        Mode::Wal => {
            let m: String = c
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
                .unwrap();
            assert_eq!(m, "wal");
            // Keep recent commits in the -wal file: a copy of the main file alone would miss
            // them. The writer checkpoints by hand now and then.
            c.execute_batch("PRAGMA wal_autocheckpoint=0;").unwrap();
        }
    }
    c.execute_batch(
        "CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
         CREATE TABLE ledger(id INTEGER PRIMARY KEY, txn INTEGER NOT NULL,
                             account INTEGER NOT NULL, amount INTEGER NOT NULL, payload BLOB);
         CREATE INDEX ledger_account ON ledger(account);
         CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);
         INSERT INTO meta VALUES ('txns', 0), ('rows', 0);",
    )
    .unwrap();
    for a in 0..ACCOUNTS {
        c.execute("INSERT INTO accounts VALUES (?1, 0)", [a])
            .unwrap();
    }
    // A few MB to start with, so copying it takes a moment; quickly, without syncs.
    c.execute_batch("PRAGMA synchronous=OFF").unwrap();
    for _ in 0..1500 {
        transaction(&c, rng).unwrap();
    }
    c.execute_batch("PRAGMA synchronous=FULL").unwrap();
    c
}

/// One transaction of the app; returns its number.
fn transaction(c: &Connection, rng: &mut StdRng) -> rusqlite::Result<u64> {
    let tx = c.unchecked_transaction()?;
    let last: i64 = tx.query_row("SELECT v FROM meta WHERE k='txns'", [], |r| r.get(0))?;
    let txn = last + 1;
    let mut rows = 0i64;
    if rng.gen_bool(0.2) {
        let max: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM ledger", [], |r| r.get(0))?;
        let victim = rng.gen_range(0..=max);
        let gone: Option<(i64, i64)> = tx
            .query_row(
                "SELECT account, amount FROM ledger WHERE id >= ?1 ORDER BY id LIMIT 1",
                [victim],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        if let Some((account, amount)) = gone {
            tx.execute(
                "DELETE FROM ledger WHERE id = (SELECT id FROM ledger WHERE id >= ?1 ORDER BY id LIMIT 1)",
                [victim],
            )?;
            tx.execute(
                "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2",
                params![amount, account],
            )?;
            rows -= 1;
        }
    }
    if rng.gen_bool(0.3) {
        let max: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM ledger", [], |r| r.get(0))?;
        let mut payload = vec![0u8; rng.gen_range(100..3000)];
        rng.fill_bytes(&mut payload);
        tx.execute(
            "UPDATE ledger SET payload = ?1 WHERE id = ?2",
            params![payload, rng.gen_range(0..=max)],
        )?;
    }
    for _ in 0..rng.gen_range(1..=4) {
        let account = rng.gen_range(0..ACCOUNTS);
        let amount = rng.gen_range(-1000i64..=1000);
        let mut payload = vec![0u8; rng.gen_range(100..3000)];
        rng.fill_bytes(&mut payload);
        tx.execute(
            "INSERT INTO ledger(txn, account, amount, payload) VALUES (?1, ?2, ?3, ?4)",
            params![txn, account, amount, payload],
        )?;
        tx.execute(
            "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2",
            params![amount, account],
        )?;
        rows += 1;
    }
    tx.execute("UPDATE meta SET v = ?1 WHERE k='txns'", [txn])?;
    tx.execute("UPDATE meta SET v = v + ?1 WHERE k='rows'", [rows])?;
    tx.commit()?;
    Ok(txn as u64)
}

impl Writer {
    fn start(path: &Path, mode: Mode, seed: u64) -> Writer {
        let mut rng = StdRng::seed_from_u64(seed);
        let c = setup_db(path, mode, &mut rng);
        let txns: i64 = c
            .query_row("SELECT v FROM meta WHERE k='txns'", [], |r| r.get(0))
            .unwrap();
        let txns = txns as u64;
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(txns));
        let (s, n) = (stop.clone(), committed.clone());
        let handle = std::thread::spawn(move || {
            let mut count = 0u64;
            while !s.load(SeqCst) {
                let txn = transaction(&c, &mut rng)?;
                n.store(txn, SeqCst);
                count += 1;
                if mode == Mode::Wal && count % 400 == 0 {
                    // A checkpoint now and then moves the WAL into the main file, while backups
                    // may be reading.
                    c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
                }
            }
            Ok(count)
        });
        Writer {
            stop,
            committed,
            handle: Some(handle),
        }
    }

    fn committed(&self) -> u64 {
        self.committed.load(SeqCst)
    }

    /// Stops the app; returns how many transactions it committed while running.
    fn stop(mut self) -> u64 {
        self.stop.store(true, SeqCst);
        self.handle
            .take()
            .unwrap()
            .join()
            .expect("the writer thread panicked")
            .expect("the writer failed")
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Checks a restored database by itself: integrity, invariants, and the range of transactions
/// it may hold. Returns the number of transactions it holds.
fn verify_db(path: &Path, lo: u64, hi: u64) -> u64 {
    for side in ["-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(side);
        assert!(
            !Path::new(&p).exists(),
            "{} was restored: a backup must hold the database alone",
            Path::new(&p).display()
        );
    }
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap();
    let check: Vec<String> = c
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(check, ["ok"], "{}: integrity check", path.display());
    let q = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    let txns = q("SELECT v FROM meta WHERE k='txns'") as u64;
    assert_eq!(
        q("SELECT v FROM meta WHERE k='rows'"),
        q("SELECT count(*) FROM ledger"),
        "{}: meta.rows does not match the ledger",
        path.display()
    );
    assert_eq!(
        q("SELECT coalesce(max(txn), 0) FROM ledger") as u64,
        txns,
        "{}: the last transaction's rows are missing or extra",
        path.display()
    );
    assert_eq!(
        q("SELECT count(*) FROM accounts a WHERE balance != \
           (SELECT coalesce(sum(amount), 0) FROM ledger l WHERE l.account = a.id)"),
        0,
        "{}: balances do not match the ledger",
        path.display()
    );
    assert_eq!(q("SELECT count(*) FROM accounts"), ACCOUNTS);
    assert!(
        (lo..=hi).contains(&txns),
        "{}: holds {txns} transactions, but {lo} were committed before the backup started \
         and {hi} when it ended",
        path.display()
    );
    txns
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn live_database(mode: Mode) {
    let started = Instant::now();
    let env = Env::new();
    let src = env.root.join("app");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("settings.txt"), "theme=dark\n").unwrap();
    let db = src.join("app.db");
    let writer = Writer::start(&db, mode, 7 + mode as u64);
    let src_arg = src.to_str().unwrap();

    // (snapshot id, committed before the backup started, committed when it ended)
    let mut snaps: Vec<(String, u64, u64)> = Vec::new();
    let mut max_wal = 0;
    for i in 0..BACKUPS {
        std::thread::sleep(Duration::from_millis(150));
        let wal = fs::metadata(src.join("app.db-wal")).map_or(0, |m| m.len());
        max_wal = max_wal.max(wal);
        let lo = writer.committed();
        let t = Instant::now();
        let out = env.run(&["--json", "backup", src_arg]);
        let hi = writer.committed();
        assert_eq!(
            out.status.code(),
            Some(0),
            "backup {i} of a live {mode:?} database\n{}",
            show(&out)
        );
        // A writer that commits back to back must not starve the backup of its read lock.
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "backup {i} took {:?}: it waited too long for a read lock",
            t.elapsed()
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        eprintln!(
            "{mode:?} backup {i}: {:.2}s, transactions {lo}..{hi}, db {} bytes, wal {wal} bytes",
            t.elapsed().as_secs_f64(),
            fs::metadata(&db).unwrap().len(),
        );
        snaps.push((v["snapshot"].as_str().unwrap().to_string(), lo, hi));
    }
    let during = writer.stop();
    assert!(
        during > 20,
        "the writer committed only {during} transactions during the backups"
    );
    if mode == Mode::Wal {
        assert!(
            max_wal > 0,
            "the source never had a -wal file: the test did not exercise WAL"
        );
    }

    let mut held = Vec::new();
    for (i, (id, lo, hi)) in snaps.iter().enumerate() {
        // The snapshot lists the database alone, without its sidecar files.
        let listing = env.json(&["ls", id, src_arg]);
        let mut listed: Vec<String> = listing
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let p = e["path"].as_str().unwrap();
                p.rsplit('/').next().unwrap().to_string()
            })
            .collect();
        listed.sort();
        assert_eq!(
            listed,
            ["app.db", "settings.txt"],
            "snapshot {i} lists {listed:?}"
        );

        let target = env.root.join(format!("restored-{i}"));
        env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
        let dir = target.join(src.strip_prefix("/").unwrap());
        assert_eq!(names(&dir), ["app.db", "settings.txt"]);
        held.push(verify_db(&dir.join("app.db"), *lo, *hi));
    }
    eprintln!(
        "{mode:?}: {BACKUPS} snapshots hold transactions {held:?}; the writer committed {during} \
         during the test; {:.1}s",
        started.elapsed().as_secs_f64()
    );
    env.ok(&["check", "--read-data"]);
}

/// The files a writer that crashed leaves behind: in rollback mode, a database file holding
/// pages of an unfinished transaction and the hot journal that undoes them; in WAL mode, a
/// database whose recent commits are only in the `-wal`. Copied with `cp` (another process: a
/// descriptor opened and closed in this one would drop SQLite's POSIX locks) while the writer is
/// in that state. Returns the number of transactions committed.
fn crashed_writer_files(mode: Mode, dir: &Path) -> u64 {
    let work = dir.with_extension("work");
    fs::create_dir_all(&work).unwrap();
    fs::create_dir_all(dir).unwrap();
    let db = work.join("app.db");
    let mut rng = StdRng::seed_from_u64(99);
    let c = setup_db(&db, mode, &mut rng);
    let committed: i64 = c
        .query_row("SELECT v FROM meta WHERE k='txns'", [], |r| r.get(0))
        .unwrap();
    let mut files = vec!["app.db"];
    match mode {
        Mode::Rollback => {
            // A small page cache makes SQLite write changed pages into the database file before
            // the commit, after saving the originals in the journal.
            c.execute_batch(
                "PRAGMA cache_size=5; BEGIN;
                 UPDATE ledger SET payload = randomblob(2000), amount = amount + 1;
                 UPDATE meta SET v = v + 1000 WHERE k='txns';",
            )
            .unwrap();
            files.push("app.db-journal");
        }
        Mode::Wal => files.push("app.db-wal"),
    }
    for f in &files {
        let st = Command::new("cp")
            .arg(work.join(f))
            .arg(dir.join(f))
            .status()
            .unwrap();
        assert!(st.success());
        assert!(fs::metadata(dir.join(f)).unwrap().len() > 0, "{f} is empty");
    }
    if mode == Mode::Rollback {
        c.execute_batch("ROLLBACK").unwrap();
    }
    drop(c);
    fs::remove_dir_all(&work).unwrap();
    committed as u64
}

fn crashed_writer(mode: Mode) {
    let env = Env::new();
    let src = env.root.join("app");
    let committed = crashed_writer_files(mode, &src);
    let before: Vec<(String, Vec<u8>)> = names(&src)
        .into_iter()
        .map(|n| {
            let bytes = fs::read(src.join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    let src_arg = src.to_str().unwrap();
    let out = env.run(&["backup", src_arg]);
    eprintln!("{mode:?}, left by a crashed writer: {}", show(&out));
    // Either arca reads the committed state itself (exit 0), or it says it could not and stores
    // the files as they are, sidecar included (exit 3), which SQLite recovers on opening.
    match out.status.code() {
        Some(0) => {}
        Some(3) => {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("app.db"), "{}", show(&out));
            if mode == Mode::Rollback {
                assert!(err.contains("hot journal"), "{}", show(&out));
            }
        }
        _ => panic!("the backup failed\n{}", show(&out)),
    }
    // The source is not changed (SQLite, like any reader of a WAL database, may add a -shm).
    let after: Vec<String> = names(&src)
        .into_iter()
        .filter(|n| !n.ends_with("-shm"))
        .collect();
    assert_eq!(
        after,
        before.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
    );
    for (n, bytes) in &before {
        assert!(
            fs::read(src.join(n)).unwrap() == *bytes,
            "the backup changed {n}"
        );
    }
    let target = env.root.join("restored");
    env.ok(&["restore", "--target", target.to_str().unwrap()]);
    let dir = target.join(src.strip_prefix("/").unwrap());
    let restored = names(&dir);
    // Opening the restored database recovers it (rolls the hot journal back, or reads the WAL).
    let db = dir.join("app.db");
    let c = Connection::open(&db).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    drop(c);
    assert_eq!(check, "ok", "restored {restored:?}");
    for side in ["-journal", "-wal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(side);
        let _ = fs::remove_file(&p);
    }
    let txns = verify_db(&db, committed, committed);
    assert_eq!(txns, committed);
}

#[test]
fn database_left_by_a_crashed_writer_in_rollback_journal_mode() {
    crashed_writer(Mode::Rollback);
}

#[test]
fn database_left_by_a_crashed_writer_in_wal_mode() {
    crashed_writer(Mode::Wal);
}

#[test]
fn live_database_in_rollback_journal_mode() {
    live_database(Mode::Rollback);
}

#[test]
fn live_database_in_wal_mode() {
    live_database(Mode::Wal);
}

/// Restores the snapshot a `backup --json` answer `v` names into `root/<name>`; returns the
/// restored copy of the test's `app` folder.
fn restore_snapshot(env: &Env, v: &serde_json::Value, name: &str) -> PathBuf {
    let target = env.root.join(name);
    env.ok(&[
        "restore",
        v["snapshot"].as_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
    ]);
    target.join(env.root.join("app").strip_prefix("/").unwrap())
}

/// A WAL database no program has open is backed up from its file alone, and the backup leaves
/// the user's folder as it found it: no `-shm` and no empty `-wal` (SQLite creates both when it
/// opens a WAL database, even read-only). Once an app has it open, the backup copies it through
/// SQLite and its WAL content is in the snapshot.
#[test]
fn a_closed_wal_database_is_backed_up_without_leaving_files_beside_it() {
    let env = Env::new();
    let src = env.root.join("app");
    fs::create_dir_all(&src).unwrap();
    let db = src.join("app.db");
    let mut rng = StdRng::seed_from_u64(11);
    let c = setup_db(&db, Mode::Wal, &mut rng);
    for _ in 0..20 {
        transaction(&c, &mut rng).unwrap();
    }
    drop(c);
    assert_eq!(
        names(&src),
        ["app.db"],
        "SQLite kept its sidecars after closing"
    );
    let before = fs::read(&db).unwrap();
    assert_eq!(&before[18..20], &[2, 2], "the database is not in WAL mode");
    let src_arg = src.to_str().unwrap();

    let v = env.json(&["backup", src_arg]);
    assert_eq!(
        names(&src),
        ["app.db"],
        "the backup left files beside the database"
    );
    assert_eq!(
        fs::read(&db).unwrap(),
        before,
        "the backup changed the database"
    );
    let restored = restore_snapshot(&env, &v, "restored-closed").join("app.db");
    assert_eq!(fs::read(&restored).unwrap(), before);
    // `setup_db` commits 1500 transactions, then 20 more here.
    assert_eq!(verify_db(&restored, 1520, 1520), 1520);

    // Open, with commits only in its -wal: the backup holds them.
    let c = Connection::open(&db).unwrap();
    c.busy_timeout(Duration::from_secs(60)).unwrap();
    c.execute_batch("PRAGMA wal_autocheckpoint=0;").unwrap();
    for _ in 0..5 {
        transaction(&c, &mut rng).unwrap();
    }
    assert!(fs::metadata(src.join("app.db-wal")).unwrap().len() > 0);
    let v = env.json(&["backup", src_arg]);
    let dir = restore_snapshot(&env, &v, "restored-open");
    assert_eq!(names(&dir), ["app.db"]);
    assert_eq!(verify_db(&dir.join("app.db"), 1525, 1525), 1525);
    drop(c);
    env.ok(&["check", "--read-data"]);
}
