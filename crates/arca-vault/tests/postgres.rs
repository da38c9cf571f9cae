//! Real `arca-vault` processes over the PostgreSQL server of this machine (`.ci/run` starts it
//! if it is not running): the whole vault flow, three nodes racing for the same guesses, a node
//! killed mid-login, and the database cut off during load.
//!
//! Each test creates its own database (`arca_test_...`) and drops it at the end, so tests run in
//! parallel. The admin connection is `ARCA_TEST_POSTGRES` if set, else
//! `host=127.0.0.1 port=5432 user=root dbname=postgres`. The machine's server is never stopped:
//! an outage is a TCP proxy in front of it that the test cuts, and `pg_terminate_backend` on the
//! test database's own sessions.

mod common;

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use arca_client::{
    ClientError, Http, Transport, change_password_with_key, change_password_with_ticket, head_mac,
    recover, register,
};
use arca_crypto::BackupKey;
use arca_vault::VaultError;
use arca_vault::wire::*;
use common::{Server as Node, *};
use rand_core::{OsRng, RngCore};

/// The nodes log at info level: the tests look for the database and the outage in the log.
const LOG: &str = "info";

fn config_text(extra: &str) -> String {
    Config {
        create_master_key: false,
        max_guess_limit: Some(1000),
        no_rate_limits: true,
        database_pool: Some(6),
        extra,
    }
    .text()
}

/// A folder with the config and master key that all of a test's nodes share.
fn vault_dir(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut k = [0u8; 32];
    OsRng.fill_bytes(&mut k);
    std::fs::write(dir.path().join("master.key"), hex(&k)).unwrap();
    std::fs::write(dir.path().join("vault.toml"), config_text(extra)).unwrap();
    dir
}

/// Starts `n` nodes at once on a fresh database (their migrations race).
fn start_nodes(dir: &Path, database: &str, n: usize) -> Vec<Node> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| s.spawn(|| Node::start(dir, database, LOG)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn count(db: &mut postgres::Client, sql: &str, account: &str) -> i64 {
    db.query_one(sql, &[&account]).unwrap().get(0)
}

#[test]
fn the_vault_flow_over_postgres() {
    let db = TestDb::new("flow");
    let dir = vault_dir("");
    let node = Node::start(dir.path(), db.url(), LOG);
    let t = node.http("alice");
    let st = t.status().unwrap();
    assert!(!st.registered && !st.gone);

    let k = BackupKey::generate();
    let pw = b"correct horse battery staple";
    let r = register(&t, "alice", pw, &k, TEST_KSF, None, None).unwrap();
    assert_eq!((r.guess_limit, r.guesses_left), (10, 10));
    assert!(
        node.logs().contains(&format!(
            "database=postgres://root@127.0.0.1:5432/{}",
            db.name
        )),
        "the log names the database: {}",
        node.logs()
    );
    assert!(matches!(
        register(&t, "alice", pw, &k, TEST_KSF, None, None),
        Err(ClientError::Vault(VaultError::AlreadyRegistered))
    ));
    let got = recover(&t, "alice", pw, &TEST_KSF).unwrap();
    assert_eq!((got.key.clone(), got.guesses_left), (k.clone(), 10));

    // the head register only moves forward
    let repo = [3u8; 16];
    assert_eq!(t.head().unwrap(), None);
    t.set_head(&Head {
        seq: 7,
        mac: head_mac(&k, &repo, 7),
    })
    .unwrap();
    assert!(matches!(
        t.set_head(&Head {
            seq: 6,
            mac: head_mac(&k, &repo, 6)
        }),
        Err(VaultError::HeadBehind { current: 7 })
    ));
    t.set_head(&Head {
        seq: 7,
        mac: head_mac(&k, &repo, 7),
    })
    .expect("the same head again is accepted (a retried write)");
    assert!(matches!(
        t.set_head(&Head {
            seq: 7,
            mac: head_mac(&k, &repo, 8)
        }),
        Err(VaultError::HeadBehind { current: 7 })
    ));
    t.set_head(&Head {
        seq: 9,
        mac: head_mac(&k, &repo, 9),
    })
    .unwrap();
    assert_eq!(t.head().unwrap().unwrap().seq, 9);

    // wrong passwords count down; a success refunds them
    assert_eq!(wrong_password(recover(&t, "alice", b"nope", &TEST_KSF)), 9);
    assert_eq!(guesses_left(&t), Some(9));
    recover(&t, "alice", pw, &TEST_KSF).unwrap();
    assert_eq!(guesses_left(&t), Some(10));
    for expected in (1..10).rev() {
        assert_eq!(
            wrong_password(recover(&t, "alice", b"wrong", &TEST_KSF)),
            expected
        );
    }
    // the 10th wrong one destroys the record, for good
    assert!(matches!(
        recover(&t, "alice", b"wrong", &TEST_KSF),
        Err(ClientError::Gone)
    ));
    assert!(matches!(
        recover(&t, "alice", pw, &TEST_KSF),
        Err(ClientError::Gone)
    ));
    let st = t.status().unwrap();
    assert!(st.gone && !st.registered, "{st:?}");
    let a = raw_within(
        RAW_TIMEOUT,
        "POST",
        &format!("{}/v1/accounts/alice/login/start", node.url),
        Some(&bearer("alice")),
        Some(&login_start_body(pw)),
    );
    assert_eq!((a.status, a.error().error.as_str()), (410, "gone"));
    {
        let mut c = db.client();
        let records = "SELECT count(*) FROM records WHERE account = $1";
        assert_eq!(count(&mut c, records, "alice"), 0);
        let tomb = "SELECT count(*) FROM tombstones WHERE account = $1";
        assert_eq!(count(&mut c, tomb, "alice"), 1);
        let destroyed = "SELECT count(*) FROM audit WHERE account = $1 AND event = 'destroyed'";
        assert_eq!(count(&mut c, destroyed, "alice"), 1);
        let logins = "SELECT count(*) FROM logins WHERE account = $1";
        assert_eq!(count(&mut c, logins, "alice"), 0);
        let heads = "SELECT count(*) FROM heads WHERE account = $1";
        assert_eq!(
            count(&mut c, heads, "alice"),
            1,
            "the head outlives a destruction"
        );
    }
    // registering again starts afresh
    register(&t, "alice", pw, &k, TEST_KSF, Some(3), None).unwrap();
    assert_eq!(guesses_left(&t), Some(3));

    // password changes: with the ticket of a login, then with the 64-digit key
    let b = node.http("bob");
    let (pw1, pw2, pw3) = (
        b"bob one".as_slice(),
        b"bob two".as_slice(),
        b"bob 3".as_slice(),
    );
    register(&b, "bob", pw1, &k, TEST_KSF, Some(5), None).unwrap();
    let got = recover(&b, "bob", pw1, &TEST_KSF).unwrap();
    // a login started under the old password cannot finish after the change
    let (state, resp) = start_login(&b, pw1);
    change_password_with_ticket(&b, "bob", &got, pw2, TEST_KSF, Some(7)).unwrap();
    let done = client_finish(state, pw1, &resp);
    assert!(matches!(
        b.login_finish(&LoginFinishRequest {
            login_id: resp.login_id.clone(),
            finalization: done.message.serialize().to_vec(),
        }),
        Err(VaultError::LoginExpired)
    ));
    // the ticket was single use
    assert!(matches!(
        change_password_with_ticket(&b, "bob", &got, pw3, TEST_KSF, None),
        Err(ClientError::Vault(VaultError::Forbidden(_)))
    ));
    assert_eq!(wrong_password(recover(&b, "bob", pw1, &TEST_KSF)), 6);
    assert_eq!(recover(&b, "bob", pw2, &TEST_KSF).unwrap().key, k);
    assert!(matches!(
        change_password_with_key(&b, "bob", &BackupKey::generate(), pw3, TEST_KSF, None),
        Err(ClientError::Vault(VaultError::Forbidden(_)))
    ));
    change_password_with_key(&b, "bob", &k, pw3, TEST_KSF, None).unwrap();
    assert_eq!(recover(&b, "bob", pw3, &TEST_KSF).unwrap().key, k);
    assert_eq!(b.status().unwrap().guess_limit, Some(10));

    // deletion at the holder's request takes the head too
    b.set_head(&Head {
        seq: 1,
        mac: head_mac(&k, &repo, 1),
    })
    .unwrap();
    assert!(b.delete().unwrap());
    assert!(!b.delete().unwrap());
    assert!(!b.status().unwrap().registered);
    assert_eq!(b.head().unwrap(), None);

    // an unknown account is answered like a real one, with a phantom counter
    let c = node.http("carol");
    let (_, resp) = start_login(&c, b"anything");
    assert_eq!(resp.guesses_left, 9);
    assert!(!resp.response.is_empty());
    let st = c.status().unwrap();
    assert!(!st.registered && !st.gone);

    // operations endpoints
    assert_eq!(node.get("/healthz").status, 200);
    let ready = node.get("/readyz");
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, r#"{"status":"ready"}"#)
    );
    assert!(node.metric("arca_vault_guesses_charged_total", &["record"]) >= 15.0);
    assert_eq!(
        node.metric("arca_vault_guesses_charged_total", &["unknown"]),
        1.0
    );
    assert_eq!(node.metric("arca_vault_records_destroyed_total", &[]), 1.0);
    assert!(
        node.metric(
            "arca_vault_http_requests_total",
            &[
                r#"route="/v1/accounts/{account}/login/start""#,
                r#"method="POST""#,
                r#"status="200""#
            ]
        ) >= 15.0
    );
    assert!(
        node.metric(
            "arca_vault_http_request_duration_seconds_count",
            &[r#"route="/v1/accounts/{account}/login/finish""#]
        ) >= 10.0
    );
    let metrics = node.get("/metrics").body;
    assert!(!metrics.contains("alice"), "no account in the metrics");

    // a restarted node finds the same OPAQUE setup and schema in the database
    let logs = node.logs();
    drop(node);
    let node = Node::start(dir.path(), db.url(), LOG);
    assert!(
        !node
            .logs()
            .contains("applied a PostgreSQL schema migration"),
        "{}",
        node.logs()
    );
    assert_eq!(
        recover(&node.http("alice"), "alice", pw, &TEST_KSF)
            .unwrap()
            .key,
        k
    );

    // neither the database nor the log holds a password, K or the token
    let mut c = db.client();
    let mut dump = String::new();
    for table in [
        "server_setup",
        "records",
        "tombstones",
        "phantoms",
        "logins",
        "tickets",
        "heads",
        "audit",
    ] {
        for row in c
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .unwrap()
        {
            dump.push_str(row.get::<_, &str>(0));
            dump.push('\n');
        }
    }
    assert!(dump.contains("registered"), "the dump has the audit log");
    let tok = token("alice");
    let everything = format!("{dump}\n{logs}\n{}", node.logs());
    for (name, secret) in [
        ("a password", String::from_utf8_lossy(pw).into_owned()),
        ("a password (hex)", hex(pw)),
        ("bob's password (hex)", hex(pw3)),
        ("K (hex)", hex(k.expose())),
        ("the token", tok.clone()),
    ] {
        assert!(!everything.contains(&secret), "{name} found");
    }
}

#[test]
fn three_nodes_sixty_concurrent_wrong_starts_get_at_most_ten_answers() {
    let db = TestDb::new("race");
    let dir = vault_dir("");
    let nodes = start_nodes(dir.path(), &db.url(), 3);
    {
        let mut c = db.client();
        let v: i64 = c
            .query_one("SELECT count(*) FROM arca_vault_migrations", &[])
            .unwrap()
            .get(0);
        assert_eq!(
            v, 1,
            "each migration applied once by three nodes starting together"
        );
    }
    let k = BackupKey::generate();
    register(
        &nodes[0].http("race"),
        "race",
        b"the right one",
        &k,
        TEST_KSF,
        Some(10),
        None,
    )
    .unwrap();

    let (answered, gone) = racing_wrong_starts(60, |i| nodes[i % 3].http("race"));
    assert!(answered <= 10, "{answered} OPAQUE responses for 10 guesses");
    assert_eq!(answered, 10, "every guess was answered once");
    assert_eq!(gone, 50);
    for n in &nodes {
        assert!(n.http("race").status().unwrap().gone);
        assert!(matches!(
            recover(&n.http("race"), "race", b"the right one", &TEST_KSF),
            Err(ClientError::Gone)
        ));
    }
    let mut c = db.client();
    let starts = "SELECT count(*) FROM audit WHERE account = $1 AND event = 'login start'";
    assert_eq!(count(&mut c, starts, "race"), 10);
    let destroyed = "SELECT count(*) FROM audit WHERE account = $1 AND event = 'destroyed'";
    assert_eq!(count(&mut c, destroyed, "race"), 1);
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM records WHERE account = $1",
            "race"
        ),
        0
    );
    let charged: f64 = nodes
        .iter()
        .map(|n| n.metric("arca_vault_guesses_charged_total", &["record"]))
        .sum();
    assert_eq!(
        charged, 10.0,
        "the nodes' metrics add up to the guesses charged"
    );
    let destroyed: f64 = nodes
        .iter()
        .map(|n| n.metric("arca_vault_records_destroyed_total", &[]))
        .sum();
    assert_eq!(destroyed, 1.0);
}

#[test]
fn a_node_killed_mid_login_leaves_the_guess_charged_and_the_record_intact() {
    let db = TestDb::new("kill");
    let dir = vault_dir("");
    let a = Node::start(dir.path(), db.url(), LOG);
    let b = Node::start(dir.path(), db.url(), LOG);
    let k = BackupKey::generate();
    let pw = b"survives a crash";
    register(&a.http("dana"), "dana", pw, &k, TEST_KSF, Some(50), None).unwrap();

    // a login started on A, which then dies, finishes on B
    let (state, resp) = start_login(&a.http("dana"), pw);
    assert_eq!(resp.guesses_left, 49);
    a.kill();
    let tb = b.http("dana");
    assert_eq!(guesses_left(&tb), Some(49), "the guess stays charged");
    let done = client_finish(state, pw, &resp);
    let fin_req = LoginFinishRequest {
        login_id: resp.login_id.clone(),
        finalization: done.message.serialize().to_vec(),
    };
    let fin = tb.login_finish(&fin_req).unwrap();
    assert_eq!(fin.guesses_left, 50);
    assert_eq!(open_released("dana", &done, &resp.login_id, &fin), k);
    // and only once, on any node
    assert!(matches!(
        tb.login_finish(&fin_req),
        Err(VaultError::LoginExpired)
    ));

    // a node killed with login starts in flight
    let a = Node::start(dir.path(), db.url(), LOG);
    let answered = AtomicU32::new(0);
    let barrier = Barrier::new(21);
    let url = a.url.clone();
    std::thread::scope(|s| {
        for _ in 0..20 {
            let (answered, barrier, url) = (&answered, &barrier, &url);
            s.spawn(move || {
                let t = Http::new(url, &token("dana"), "dana").unwrap();
                let req = login_start_request(b"wrong");
                barrier.wait();
                match t.login_start(&req) {
                    Ok(_) => {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(VaultError::Unavailable(_)) => {}
                    Err(e) => panic!("unexpected answer: {e}"),
                }
            });
        }
        barrier.wait();
        std::thread::sleep(Duration::from_millis(15));
        a.kill();
    });
    let answered = answered.into_inner();
    let left = guesses_left(&tb).unwrap();
    let charged = 50 - left;
    assert!(
        answered <= charged && charged <= 20,
        "{answered} answered, {charged} charged"
    );
    // the record is intact: the right password still opens it, through the surviving node
    let got = recover(&tb, "dana", pw, &TEST_KSF).unwrap();
    assert_eq!((got.key, got.guesses_left), (k.clone(), 50));
    let mut c = db.client();
    let row = c
        .query_one(
            "SELECT length(password_file), position('\\x00000000'::bytea in envelope) \
             FROM records WHERE account = 'dana'",
            &[],
        )
        .unwrap();
    assert!(row.get::<_, i32>(0) > 0);
    assert_eq!(row.get::<_, i32>(1), 0, "the envelope is not zeroed");
    // a third node serves the next login too
    let c3 = Node::start(dir.path(), db.url(), LOG);
    assert_eq!(
        recover(&c3.http("dana"), "dana", pw, &TEST_KSF)
            .unwrap()
            .key,
        k
    );
}

/// A TCP proxy in front of PostgreSQL that the test can cut: every connection through it is
/// closed, and new ones are closed as soon as they are accepted, until it is restored.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, stop2, live2) = (up.clone(), stop.clone(), live.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                {
                    let mut l = live2.lock().unwrap();
                    l.push(client.try_clone().unwrap());
                    l.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy {
            port,
            up,
            stop,
            live,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

#[test]
fn database_outages_answer_503_charge_nothing_wrongly_and_recover() {
    let db = TestDb::new("outage");
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap());
    let dir = vault_dir("");
    let nodes = start_nodes(dir.path(), &db.url_via(proxy.port), 2);
    let k = BackupKey::generate();
    let pw = b"the right password";
    register(&nodes[0].http("good"), "good", pw, &k, TEST_KSF, None, None).unwrap();
    register(
        &nodes[0].http("bad"),
        "bad",
        b"never guessed",
        &k,
        TEST_KSF,
        Some(1000),
        None,
    )
    .unwrap();

    let stop = AtomicBool::new(false);
    let good_events: Mutex<Vec<Event>> = Mutex::default();
    let bad_events: Mutex<Vec<Event>> = Mutex::default();
    let t0 = Instant::now();
    let (cut_begin, cut_at, restore_begin, restored_at, terminate_begin, terminated_at) =
        std::thread::scope(|s| {
            // Complete logins with the right password, on both nodes.
            for i in 0..2 {
                let (stop, events, nodes, k) = (&stop, &good_events, &nodes, &k);
                s.spawn(move || {
                    record_until(
                        stop,
                        i,
                        Duration::from_millis(10),
                        events,
                        |n| nodes[n % 2].http("good"),
                        |t| right_login(&t, "good", pw, k),
                    );
                });
            }
            // Wrong-password login starts (abandoned, so each answered one costs a guess).
            for i in 0..2 {
                let (stop, events, nodes) = (&stop, &bad_events, &nodes);
                s.spawn(move || {
                    record_until(
                        stop,
                        i,
                        Duration::from_millis(10),
                        events,
                        |n| (nodes[n % 2].http("bad"), login_start_request(b"a guess")),
                        |(t, req)| match t.login_start(&req) {
                            Ok(_) => Seen::Ok,
                            Err(VaultError::Unavailable(_)) => Seen::Unavailable,
                            Err(e) => panic!("a login start got {e}"),
                        },
                    );
                });
            }

            std::thread::sleep(Duration::from_millis(1500));
            let cut_begin = Instant::now();
            proxy.cut();
            let cut_at = Instant::now();
            std::thread::sleep(Duration::from_millis(300));
            // While the database is unreachable: 503 with Retry-After, liveness still fine.
            for n in &nodes {
                let r = n.get("/readyz");
                assert_eq!((r.status, r.error().error.as_str()), (503, "unavailable"));
                assert!(r.retry_after.is_some());
                assert_eq!(n.get("/healthz").status, 200);
                let a = raw_within(
                    RAW_TIMEOUT,
                    "POST",
                    &format!("{}/v1/accounts/good/login/start", n.url),
                    Some(&bearer("good")),
                    Some(&login_start_body(pw)),
                );
                assert_eq!((a.status, a.error().error.as_str()), (503, "unavailable"));
                assert!(a.retry_after.unwrap().parse::<u64>().unwrap() >= 1);
                assert!(!a.body.contains("127.0.0.1"), "no detail leaks: {}", a.body);
            }
            std::thread::sleep(Duration::from_millis(1500));
            let restore_begin = Instant::now();
            proxy.restore();
            let restored_at = Instant::now();
            std::thread::sleep(Duration::from_millis(1500));
            // The sessions end under the vault's feet (as in a failover or a restart). The window
            // of "all succeed again" closes when the termination begins: sessions may end before
            // the call that ends them returns.
            let terminate_begin = Instant::now();
            assert!(db.terminate_sessions() >= 1);
            let terminated_at = Instant::now();
            std::thread::sleep(Duration::from_millis(1500));
            stop.store(true, Ordering::SeqCst);
            (
                cut_begin,
                cut_at,
                restore_begin,
                restored_at,
                terminate_begin,
                terminated_at,
            )
        });

    let good = good_events.into_inner().unwrap();
    let bad = bad_events.into_inner().unwrap();
    let settle = Duration::from_millis(200);
    for (name, events) in [("good", &good), ("bad", &bad)] {
        let summary = || {
            events
                .iter()
                .map(|e| {
                    format!(
                        "{:?} {:.3}-{:.3}",
                        e.seen,
                        (e.began - t0).as_secs_f64(),
                        (e.ended - t0).as_secs_f64()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        eprintln!(
            "{name}: cut {:.3} restored {:.3} terminated {:.3}",
            (cut_at - t0).as_secs_f64(),
            (restored_at - t0).as_secs_f64(),
            (terminated_at - t0).as_secs_f64()
        );
        let before: Vec<_> = events.iter().filter(|e| e.ended < cut_begin).collect();
        assert!(
            !before.is_empty() && before.iter().all(|e| e.seen == Seen::Ok),
            "{name}: all succeed before the cut\n{}",
            summary()
        );
        let during: Vec<_> = events
            .iter()
            .filter(|e| e.began > cut_at + settle && e.ended < restored_at)
            .collect();
        assert!(
            !during.is_empty() && during.iter().all(|e| e.seen == Seen::Unavailable),
            "{name}: 503 while the database is cut off\n{}",
            summary()
        );
        // back without a restart: every request that began a moment after the restore succeeds
        let after: Vec<_> = events
            .iter()
            .filter(|e| e.began > restored_at + settle && e.ended < terminate_begin)
            .collect();
        assert!(
            !after.is_empty() && after.iter().all(|e| e.seen == Seen::Ok),
            "{name}: all succeed again after the restore\n{}",
            summary()
        );
        // after the sessions were ended, at most the requests in flight fail
        let last: Vec<_> = events
            .iter()
            .filter(|e| e.began > terminated_at + settle)
            .collect();
        assert!(
            !last.is_empty() && last.iter().all(|e| e.seen == Seen::Ok),
            "{name}: all succeed after the sessions were ended\n{}",
            summary()
        );
        let failed = events
            .iter()
            .filter(|e| e.seen == Seen::Unavailable && e.began > restored_at + settle)
            .count();
        assert!(
            failed <= 4,
            "{name}: {failed} failures after the database came back"
        );
    }
    // No answer without a charge, and no charge without a request that could have made it: a
    // request that began while the database was cut off charged nothing.
    let answered = bad.iter().filter(|e| e.seen == Seen::Ok).count() as u32;
    let failed = bad
        .iter()
        .filter(|e| {
            e.seen == Seen::Unavailable
                && (e.began < cut_at || e.began + Duration::from_millis(500) > restore_begin)
        })
        .count() as u32;
    let t = nodes[0].http("bad");
    let charged = 1000 - guesses_left(&t).unwrap();
    assert!(
        answered <= charged && charged <= answered + failed,
        "{answered} answered, {failed} failed, {charged} charged"
    );
    // the good account is intact and its count was reset by its last success
    assert_eq!(guesses_left(&nodes[1].http("good")), Some(10));
    for n in &nodes {
        assert!(n.metric("arca_vault_database_errors_total", &["connection"]) >= 1.0);
        assert!(n.metric("arca_vault_storage_failures_total", &[]) >= 1.0);
        let logs = n.logs();
        assert!(logs.contains("PostgreSQL is unreachable"), "{logs}");
        assert!(logs.contains("PostgreSQL is reachable again"), "{logs}");
    }
    eprintln!(
        "outage test: {} complete logins, {} login starts in {:.1} s",
        good.len(),
        bad.len(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn startup_errors_name_the_database_without_its_password() {
    let dir = vault_dir("");
    // nothing listens on port 1
    let e = Node::try_start(
        dir.path(),
        "postgres://root:hunter2-secret@127.0.0.1:1/x",
        LOG,
    )
    .err()
    .expect("an unreachable database refuses the start");
    assert!(
        e.contains("cannot connect to the PostgreSQL database"),
        "{e}"
    );
    assert!(e.contains("postgres://root@127.0.0.1:1/x"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    let e = Node::try_start(
        dir.path(),
        "postgres://root@127.0.0.1:5432/arca_no_such_db",
        LOG,
    )
    .err()
    .expect("a missing database refuses the start");
    assert!(e.contains("arca_no_such_db"), "{e}");
    let e = Node::try_start(dir.path(), "mysql://root@127.0.0.1/x", LOG)
        .err()
        .expect("other schemes are refused");
    assert!(e.contains("postgres://"), "{e}");
}

#[test]
fn tls_to_postgres_verifies_the_server() {
    // Debian's PostgreSQL serves TLS with the "snakeoil" certificate for localhost.
    let cert = Path::new("/etc/ssl/certs/ssl-cert-snakeoil.pem");
    let ssl: String = admin().query_one("SHOW ssl", &[]).unwrap().get(0);
    if ssl != "on" || !cert.exists() {
        eprintln!("skipped: this PostgreSQL server does not serve TLS with {cert:?}");
        return;
    }
    let db = TestDb::new("tls");
    let url = format!("postgres://root@localhost:5432/{}?sslmode=require", db.name);
    // the web PKI roots do not vouch for a self-signed certificate
    let e = Node::try_start(vault_dir("").path(), &url, LOG)
        .err()
        .expect("an unverified server is refused");
    assert!(e.contains("certificate"), "{e}");
    let dir = vault_dir(&format!("ca_file = {:?}", cert.to_str().unwrap()));
    let node = Node::start(dir.path(), &url, LOG);
    let t = node.http("tess");
    let k = BackupKey::generate();
    register(&t, "tess", b"over TLS", &k, TEST_KSF, None, None).unwrap();
    assert_eq!(recover(&t, "tess", b"over TLS", &TEST_KSF).unwrap().key, k);
    let encrypted: bool = admin()
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = $1 AND a.application_name = 'arca-vault'",
            &[&db.name],
        )
        .unwrap()
        .get(0);
    assert!(encrypted, "every connection of the vault uses TLS");
}
