//! PostgreSQL restarted during load (issue 6): no request succeeds wrongly, all recover after.
//!
//! The machine's shared PostgreSQL server is never touched: the test makes a private cluster
//! with Debian's PostgreSQL programs (`/usr/lib/postgresql/<version>/bin`, the newest version
//! found) in a temporary folder, on a free loopback port. `initdb` refuses to run as root, so
//! when the test runs as root the cluster belongs to `nobody` (uid 65534) and its programs run
//! under `setpriv`. Two `arca-vault` nodes serve from it while client threads do complete logins
//! with the right password and login attempts with a wrong one, and the test restarts the
//! cluster three times in the middle: `pg_ctl restart -m fast` (a clean restart),
//! `pg_ctl restart -m immediate` (a crash and recovery), and a stop, a pause in which it probes
//! the nodes, and a start. It asserts:
//!
//! - a wrong password never succeeds, and a right one never gets anything but success or a
//!   503 `unavailable` with `Retry-After` (no 500, no wrong-password answer, no lost account);
//! - while the cluster is stopped, every login start and `/readyz` is 503 with `Retry-After`
//!   and `/healthz` still answers;
//! - no guess is charged without an OPAQUE answer: the guesses the wrong-password account lost
//!   (read from the database) are at least the login starts answered with KE2 and at most those
//!   plus the requests that failed while a restart was under way;
//! - after each restart every node serves logins again, without being restarted.
//!
//! Without the PostgreSQL programs the test is skipped with a loud message, unless
//! `ARCA_REQUIRE_SERVERS=1` (set by .ci/run): then it fails.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arca_client::{ClientError, Transport, recover, register};
use arca_crypto::BackupKey;
use arca_vault::VaultError;
use arca_vault::wire::*;
use common::{Server as Node, *};

/// The guess budget of the account that only ever gets wrong passwords.
const BAD_LIMIT: u32 = 100_000;
/// The uid and gid the cluster runs as when the test runs as root.
const NOBODY: u32 = 65534;

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb` and `pg_ctl`.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A PostgreSQL cluster of the test's own, stopped (immediately) on drop.
struct Cluster {
    bin: PathBuf,
    _root: tempfile::TempDir,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    as_nobody: bool,
}

impl Cluster {
    fn create(bin: PathBuf) -> Cluster {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_nobody = unsafe { libc::geteuid() } == 0;
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("pg");
        std::fs::create_dir(&home).unwrap();
        if as_nobody {
            use std::os::unix::fs::PermissionsExt;
            // nobody must reach its folder through the temporary folder
            std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        let c = Cluster {
            bin,
            data: home.join("data"),
            log: home.join("log"),
            port: free_port(),
            _root: root,
            as_nobody,
        };
        let out = c.run(
            "initdb",
            &[
                "-D",
                c.data.to_str().unwrap(),
                "-U",
                "arca",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb: {}", text(&out));
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             max_connections = 40\nshared_buffers = 16MB\nfsync = off\nlogging_collector = off\n",
            c.port,
            home.display()
        );
        let mut pg_conf = std::fs::read_to_string(c.data.join("postgresql.conf")).unwrap();
        pg_conf.push_str(&conf);
        // written by the test (root): initdb left the file owned by nobody, keep it so
        std::fs::write(c.data.join("postgresql.conf"), pg_conf).unwrap();
        c.pg_ctl(&["start"]);
        c
    }

    /// Runs one of the cluster's programs, as nobody when the test is root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
                "--",
            ])
            .arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args)
            .env("LC_ALL", "C")
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
    }

    /// `pg_ctl ACTION ... -w`, with the cluster's folder and log; panics if it fails.
    fn pg_ctl(&self, action: &[&str]) {
        let mut args = action.to_vec();
        let (data, log) = (self.data.to_str().unwrap(), self.log.to_str().unwrap());
        args.extend(["-D", data, "-l", log, "-w", "-t", "30"]);
        let out = self.run("pg_ctl", &args);
        assert!(
            out.status.success(),
            "pg_ctl {action:?}: {}\n{}",
            text(&out),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    fn admin(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(
            &format!("host=127.0.0.1 port={} user=arca dbname={db}", self.port),
            postgres::NoTls,
        )
        .unwrap()
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://arca@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap();
        let _ = self.run("pg_ctl", &["stop", "-D", data, "-m", "immediate", "-w"]);
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn config_text() -> String {
    Config {
        max_guess_limit: Some(BAD_LIMIT),
        no_rate_limits: true,
        database_pool: Some(6),
        ..Config::default()
    }
    .text()
}

/// The nodes log at warn level.
const LOG: &str = "warn";

/// A 503 as the API promises it: code `unavailable`, `Retry-After` of at least a second.
fn assert_unavailable(a: &Answer, what: &str) {
    let e: ErrorBody = serde_json::from_str(&a.body)
        .unwrap_or_else(|e| panic!("{what}: not an ErrorBody ({e}): {}", a.body));
    assert_eq!((a.status, e.error.as_str()), (503, "unavailable"), "{what}");
    let secs: u64 = a
        .retry_after
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: a 503 without Retry-After"))
        .parse()
        .unwrap();
    assert!(secs >= 1, "{what}: Retry-After {secs}");
}

/// One restart, as the test saw it from the outside.
#[derive(Debug)]
struct Restart {
    what: &'static str,
    began: Instant,
    /// When PostgreSQL accepted connections again.
    done: Instant,
}

/// The guesses left of `account`, read from the database itself.
fn guesses_in_db(db: &mut postgres::Client, account: &str) -> u32 {
    let left: i32 = db
        .query_one(
            "SELECT guesses_left FROM records WHERE account = $1",
            &[&account],
        )
        .unwrap()
        .get(0);
    left as u32
}

#[test]
fn postgres_restarted_during_load_answers_503_charges_nothing_wrongly_and_recovers() {
    let started = Instant::now();
    let Some(bin) = postgres_bin() else {
        if servers_required() {
            panic!(
                "the PostgreSQL server programs (/usr/lib/postgresql/*/bin/initdb, pg_ctl) are \
                 missing and ARCA_REQUIRE_SERVERS=1: install them with `apt-get install postgresql`"
            );
        }
        eprintln!(
            "\n!!!!!!!! SKIPPED: the PostgreSQL server programs (/usr/lib/postgresql/*/bin) are \
             not installed, so this test did not run. Install them with `apt-get install \
             postgresql` (.ci/run does).\n"
        );
        return;
    };
    let cluster = Cluster::create(bin);
    cluster
        .admin("postgres")
        .batch_execute("CREATE DATABASE vault")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vault.toml"), config_text()).unwrap();
    let database = cluster.url("vault");
    let first = Node::start(dir.path(), &database, LOG); // creates the master key and the schema
    let mut nodes = vec![first, Node::start(dir.path(), &database, LOG)];
    let key = BackupKey::generate();
    let pw: &[u8] = b"the right password";
    register(
        &nodes[0].http("good"),
        "good",
        pw,
        &key,
        TEST_KSF,
        None,
        None,
    )
    .unwrap();
    register(
        &nodes[1].http("bad"),
        "bad",
        b"never guessed",
        &key,
        TEST_KSF,
        Some(BAD_LIMIT),
        None,
    )
    .unwrap();

    let stop = AtomicBool::new(false);
    let good: Mutex<Vec<Event>> = Mutex::default();
    let bad: Mutex<Vec<Event>> = Mutex::default();
    let t0 = Instant::now();
    let restarts = std::thread::scope(|s| {
        // Complete logins with the right password, on both nodes.
        for i in 0..2 {
            let (stop, events, nodes, key) = (&stop, &good, &nodes, &key);
            s.spawn(move || {
                record_until(
                    stop,
                    i,
                    Duration::from_millis(5),
                    events,
                    |n| nodes[n % 2].http("good"),
                    |t| right_login(&t, "good", pw, key),
                );
            });
        }
        // Wrong passwords: complete login attempts (the finish must say wrong_password), and
        // the starts' answers counted by hand (raw HTTP, to see every status and header).
        for i in 0..2 {
            let (stop, events, nodes) = (&stop, &bad, &nodes);
            s.spawn(move || {
                record_until(
                    stop,
                    i,
                    Duration::from_millis(5),
                    events,
                    |n| n,
                    |n| {
                        let node = &nodes[n % 2];
                        if n % 3 == 0 {
                            match recover(&node.http("bad"), "bad", b"a guess", &TEST_KSF) {
                                Ok(_) => panic!("a wrong password succeeded"),
                                Err(ClientError::WrongPassword { .. }) => Seen::Ok,
                                // `recover` reports a wrong password once the start was
                                // answered (even if the finish then failed): this is an
                                // unanswered start.
                                Err(ClientError::Vault(VaultError::Unavailable(_))) => {
                                    Seen::Unavailable
                                }
                                Err(e) => panic!("a wrong password got {e}"),
                            }
                        } else {
                            let a = raw_within(
                                RAW_TIMEOUT,
                                "POST",
                                &format!("{}/v1/accounts/bad/login/start", node.url),
                                Some(&bearer("bad")),
                                Some(&login_start_body(b"another guess")),
                            );
                            if a.status == 200 {
                                let r: LoginStartResponse = serde_json::from_str(&a.body).unwrap();
                                assert!(!r.response.is_empty());
                                Seen::Ok
                            } else {
                                assert_unavailable(&a, "a login start during the restarts");
                                Seen::Unavailable
                            }
                        }
                    },
                );
            });
        }

        let mut restarts = Vec::new();
        std::thread::sleep(Duration::from_millis(1500));
        for (what, mode) in [("fast", "fast"), ("immediate", "immediate")] {
            let began = Instant::now();
            cluster.pg_ctl(&["restart", "-m", mode]);
            restarts.push(Restart {
                what,
                began,
                done: Instant::now(),
            });
            std::thread::sleep(Duration::from_millis(2500));
        }
        // Stopped long enough to look: every node answers 503 with Retry-After.
        let began = Instant::now();
        cluster.pg_ctl(&["stop", "-m", "fast"]);
        std::thread::sleep(Duration::from_millis(300));
        for n in &nodes {
            assert_unavailable(&n.get("/readyz"), "readyz");
            assert_eq!(n.get("/healthz").status, 200);
            let a = raw_within(
                RAW_TIMEOUT,
                "POST",
                &format!("{}/v1/accounts/good/login/start", n.url),
                Some(&bearer("good")),
                Some(&login_start_body(pw)),
            );
            assert_unavailable(&a, "a login start while PostgreSQL is stopped");
            assert!(!a.body.contains("127.0.0.1"), "no detail leaks: {}", a.body);
        }
        std::thread::sleep(Duration::from_millis(700));
        cluster.pg_ctl(&["start"]);
        restarts.push(Restart {
            what: "stop, then start",
            began,
            done: Instant::now(),
        });
        std::thread::sleep(Duration::from_millis(2500));
        stop.store(true, Ordering::SeqCst);
        restarts
    });

    let good = good.into_inner().unwrap();
    let bad = bad.into_inner().unwrap();
    let at = |t: Instant| (t - t0).as_secs_f64();
    let summary = |events: &[Event]| {
        events
            .iter()
            .map(|e| format!("{:?} {:.3}-{:.3}", e.seen, at(e.began), at(e.ended)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for r in &restarts {
        eprintln!("restart {}: {:.3} - {:.3}", r.what, at(r.began), at(r.done));
    }
    // A request that began a moment after a restart was done, and before the next one began,
    // must succeed: every node serves again by itself.
    let settle = Duration::from_millis(1000);
    let mut windows: Vec<(Instant, Instant)> = vec![(t0, restarts[0].began)];
    for (i, r) in restarts.iter().enumerate() {
        let next = restarts
            .get(i + 1)
            .map(|n| n.began)
            .unwrap_or(Instant::now());
        windows.push((r.done + settle, next));
    }
    for (name, events) in [("good", &good), ("bad", &bad)] {
        for (i, (from, to)) in windows.iter().enumerate() {
            let inside: Vec<_> = events
                .iter()
                .filter(|e| e.began >= *from && e.ended <= *to)
                .collect();
            assert!(
                !inside.is_empty() && inside.iter().all(|e| e.seen == Seen::Ok),
                "{name}: every request must succeed in window {i} ({:.3}-{:.3})\n{}",
                at(*from),
                at(*to),
                summary(events)
            );
        }
        // The restarts are noticed: some requests failed cleanly (503) during them.
        assert!(
            events.iter().any(|e| e.seen == Seen::Unavailable),
            "{name}: no request met a restart\n{}",
            summary(events)
        );
    }
    // No guess without an answer, no answer without a guess. A failed request can have charged
    // a guess only if the database went away under it: only those that overlapped a restart.
    let answered = bad.iter().filter(|e| e.seen == Seen::Ok).count() as u32;
    let failed_in_restarts = bad
        .iter()
        .filter(|e| {
            e.seen == Seen::Unavailable
                && restarts
                    .iter()
                    .any(|r| e.began <= r.done && e.ended >= r.began)
        })
        .count() as u32;
    let failed = bad.iter().filter(|e| e.seen == Seen::Unavailable).count() as u32;
    let mut db = cluster.admin("vault");
    let charged = BAD_LIMIT - guesses_in_db(&mut db, "bad");
    eprintln!(
        "bad: {answered} answered, {failed} failed ({failed_in_restarts} during a restart), {charged} charged"
    );
    assert!(
        answered <= charged && charged <= answered + failed_in_restarts,
        "{answered} answered, {failed_in_restarts} failed during a restart, {charged} charged"
    );
    assert_eq!(
        nodes[0].http("bad").status().unwrap().guesses_left,
        Some(BAD_LIMIT - charged),
        "the API reports the database's count"
    );
    // Every node, never restarted, logs in again; the right account's count is reset.
    for n in nodes.iter_mut() {
        assert!(n.alive(), "a vault node died: {}", n.logs());
        let r = recover(&n.http("good"), "good", pw, &TEST_KSF).unwrap();
        assert!(r.key == key);
        assert_eq!(r.guesses_left, 10);
        assert!(!n.logs().contains("panicked"), "{}", n.logs());
    }
    assert_eq!(guesses_in_db(&mut db, "good"), 10);
    eprintln!(
        "restart test: {} complete right logins, {} wrong attempts in {:.1} s",
        good.len(),
        bad.len(),
        started.elapsed().as_secs_f64()
    );
}
