//! Complete logins per second against a real `arca-vault serve` on loopback, with the server's
//! and the clients' costs measured apart.
//!
//! ```sh
//! cargo build --release -p arca-vault     # the server binary this bench starts
//! cargo run --release --example login_bench -p arca-vault -- --ksf default
//! cargo run --release --example login_bench -p arca-vault -- --ksf test
//! # PostgreSQL: a fresh database on that server, three vault nodes sharing it
//! cargo run --release --example login_bench -p arca-vault -- --ksf test \
//!     --database postgres://root@127.0.0.1:5432/postgres --nodes 3 --clients 256
//! ```
//!
//! `--database sqlite` (the default) puts the vault on a SQLite file in the temporary folder.
//! `--database postgres://USER@HOST:PORT/DB` (or just `postgres`, for
//! `postgres://root@127.0.0.1:5432/postgres`) connects there only to create a database
//! `arca_bench_PID`, runs the vault nodes on it and drops it at the end. `--nodes N` starts N
//! `arca-vault` processes on the same database (PostgreSQL only) and spreads the clients over
//! them (client i uses node i mod N); the server CPU is then the sum over the nodes, and with
//! PostgreSQL the CPU of the database's server processes for the bench database is reported
//! too (from `pg_stat_activity` and /proc).
//!
//! The bench writes a vault config into a temporary folder (a new master key, an HS256 token
//! issuer, rate limits off; with `--ksf test` the Argon2id floor lowered to 64 KiB, t = 1 under
//! `insecure_test_ksf`), starts `arca-vault serve --listen 127.0.0.1:0` on a SQLite database
//! there, issues a token per client with the config's issuer and registers one account per
//! client. Then:
//!
//! 1. **solo**: one client alone does `--solo` logins, the unloaded cost of each part;
//! 2. **loaded**: `--clients` threads do complete logins for `--seconds`.
//!
//! A complete login is `arca_client::recover` over HTTP: the client's OPAQUE start, the login
//! start round trip, the client's OPAQUE finish (Argon2id included), the login finish round trip
//! and the opening of the released envelope. Per login the bench records the wall time of the
//! whole login and of each round trip (the server's latency as a client sees it, queueing
//! included), and the client thread's CPU time inside and outside the round trips. The server's
//! CPU time is its utime + stime (all threads) from /proc/PID/stat before and after a phase,
//! and its own time for each login start and finish (queueing in the server included) comes
//! from its JSON log. The client computation splits into Argon2id and the rest (OPAQUE and the
//! envelope) by timing the same logins against the vault code in this process (the `Embedded`
//! transport, an in-memory database) with the cheapest Argon2id there is (8 KiB, t = 1): that
//! is the rest, and Argon2id is the difference. The last line of the output is JSON.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use arca_client::{Embedded, Http, Transport, recover, register};
use arca_crypto::BackupKey;
use arca_vault::http::config::Config;
use arca_vault::setup::MasterKey;
use arca_vault::sqlite::SqliteStore;
use arca_vault::suite::KsfParams;
use arca_vault::wire::*;
use arca_vault::{Policy, Vault, VaultError};
use clap::{Parser, ValueEnum};
use rand_core::{OsRng, RngCore};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Argon2id parameters: `default` (19 MiB, t = 2, as in production) or `test` (64 KiB,
    /// t = 1, so that the vault's own cost shows).
    #[arg(long, value_enum, default_value_t = Ksf::Default)]
    ksf: Ksf,
    /// Concurrent clients, one account each.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Length of the loaded phase.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Logins of the solo phase, and of the in-process calibration.
    #[arg(long, default_value_t = 30)]
    solo: usize,
    /// The server binary [default: `arca-vault` in the folder above this example's].
    #[arg(long)]
    vault_bin: Option<PathBuf>,
    /// Where the vault's folder (config, database, log) is made [default: the system's
    /// temporary folder].
    #[arg(long)]
    tmp: Option<PathBuf>,
    /// `sqlite`, or a PostgreSQL server to make a bench database on: `postgres` or
    /// `postgres://USER@HOST:PORT/DB` (an existing database to connect to for CREATE DATABASE).
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// Vault processes sharing the database (PostgreSQL only).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// `[database] max_connections` of each node (PostgreSQL).
    #[arg(long, default_value_t = 16)]
    pool: usize,
}

/// The bench's PostgreSQL database, dropped at the end.
struct PgBench {
    admin: String,
    name: String,
}

impl PgBench {
    fn create(admin: &str) -> PgBench {
        let name = format!("arca_bench_{}", std::process::id());
        let mut c = postgres::Client::connect(admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {admin}: {e}"));
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            c.batch_execute(&sql).expect("create the bench database");
        }
        PgBench {
            admin: admin.to_string(),
            name,
        }
    }

    /// The vault's URL: the admin URL with the bench database instead.
    fn url(&self) -> String {
        let (base, query) = match self.admin.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (self.admin.as_str(), String::new()),
        };
        let host = base.rsplit_once('/').map(|(h, _)| h).unwrap_or(base);
        format!("{host}/{}{query}", self.name)
    }

    /// utime + stime of the server processes serving the bench database, by pid.
    fn backends(&self) -> Vec<(u32, Duration)> {
        let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) else {
            return Vec::new();
        };
        c.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&self.name],
        )
        .map(|rows| {
            rows.iter()
                .filter_map(|r| {
                    let pid = r.get::<_, i32>(0) as u32;
                    std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .ok()
                        .map(|_| (pid, process_cpu(pid)))
                })
                .collect()
        })
        .unwrap_or_default()
    }
}

impl Drop for PgBench {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The CPU time the bench database's server processes used between two `backends()` readings
/// (a process that started in between counts from zero).
fn backend_cpu(before: &[(u32, Duration)], after: &[(u32, Duration)]) -> Duration {
    after
        .iter()
        .map(|(pid, t)| {
            let t0 = before
                .iter()
                .find(|(p, _)| p == pid)
                .map(|(_, t)| *t)
                .unwrap_or_default();
            t.saturating_sub(t0)
        })
        .sum()
}

#[derive(Clone, Copy, ValueEnum)]
enum Ksf {
    Default,
    Test,
}

const TEST_KSF: KsfParams = KsfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};
/// The least Argon2id accepts: its cost is next to nothing.
const MIN_KSF: KsfParams = KsfParams {
    m_kib: 8,
    t: 1,
    p: 1,
};

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// utime + stime of process `pid`, all threads, from /proc/PID/stat.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // After the command name (in parentheses, may hold spaces) come fields 3, 4, ...; utime and
    // stime are fields 14 and 15, in clock ticks.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("stat format") + 2..]
        .split(' ')
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A running `arca-vault serve`, killed on drop.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Server {
    fn start(bin: &Path, dir: &Path, database: &str, index: usize) -> Server {
        let log = dir.join(format!("vault-{index}.log"));
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--database", database])
            .arg("--config")
            .arg(dir.join("vault.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("create the server log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the server's first line");
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("the vault did not start: {err}");
        };
        Server {
            url: url.to_string(),
            child,
            log,
        }
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// The time the server took over each login start and login finish logged between the
    /// byte offsets `from` and `to` of its log (its `micros` field: from the request's
    /// arrival to its answer, queueing in the server included).
    fn handler_times(&self, from: u64, to: u64) -> [Vec<Duration>; 2] {
        let log = std::fs::read(&self.log).expect("read the server log");
        let mut out = [Vec::new(), Vec::new()];
        for line in log[from as usize..to as usize].split(|&b| b == b'\n') {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            let f = &v["fields"];
            let path = f["path"].as_str().unwrap_or("");
            let slot = if path.ends_with("/login/start") {
                0
            } else if path.ends_with("/login/finish") {
                1
            } else {
                continue;
            };
            if let Some(us) = f["micros"].as_u64() {
                out[slot].push(Duration::from_micros(us));
            }
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (wall time, thread CPU time) of one round trip.
type Timing = (Duration, Duration);

fn timed<T>(slot: &Cell<Timing>, f: impl FnOnce() -> T) -> T {
    let (wall, cpu) = (Instant::now(), thread_cpu());
    let r = f();
    slot.set((wall.elapsed(), thread_cpu() - cpu));
    r
}

/// A transport that times each login start and login finish.
struct Timed<'a> {
    inner: &'a dyn Transport,
    start: Cell<Timing>,
    finish: Cell<Timing>,
}

impl Transport for Timed<'_> {
    fn registration_start(
        &self,
        req: &RegistrationStartRequest,
    ) -> Result<RegistrationStartResponse, VaultError> {
        self.inner.registration_start(req)
    }
    fn registration_finish(
        &self,
        req: &RegistrationFinishRequest,
    ) -> Result<RegistrationFinishResponse, VaultError> {
        self.inner.registration_finish(req)
    }
    fn login_start(&self, req: &LoginStartRequest) -> Result<LoginStartResponse, VaultError> {
        timed(&self.start, || self.inner.login_start(req))
    }
    fn login_finish(&self, req: &LoginFinishRequest) -> Result<LoginFinishResponse, VaultError> {
        timed(&self.finish, || self.inner.login_finish(req))
    }
    fn status(&self) -> Result<AccountStatus, VaultError> {
        self.inner.status()
    }
    fn head(&self) -> Result<Option<Head>, VaultError> {
        self.inner.head()
    }
    fn set_head(&self, head: &Head) -> Result<(), VaultError> {
        self.inner.set_head(head)
    }
    fn delete(&self) -> Result<bool, VaultError> {
        self.inner.delete()
    }
}

struct Client {
    account: String,
    password: Vec<u8>,
    key: BackupKey,
    transport: Box<dyn Transport + Sync>,
}

/// One complete login's timings.
struct Sample {
    total: Duration,
    start_rtt: Duration,
    finish_rtt: Duration,
    /// The client's own computation: thread CPU outside the two round trips.
    compute_cpu: Duration,
    /// Thread CPU inside the round trips (JSON, base64, HTTP).
    http_cpu: Duration,
}

impl Client {
    fn register(&self, ksf: KsfParams) {
        let t = self.transport.as_ref();
        register(t, &self.account, &self.password, &self.key, ksf, None, None)
            .unwrap_or_else(|e| panic!("register {}: {e}", self.account));
    }

    fn login(&self, ksf: &KsfParams) -> Sample {
        let t = Timed {
            inner: self.transport.as_ref(),
            start: Default::default(),
            finish: Default::default(),
        };
        let (wall, cpu) = (Instant::now(), thread_cpu());
        let got = recover(&t, &self.account, &self.password, ksf)
            .unwrap_or_else(|e| panic!("login of {}: {e}", self.account));
        let (total, cpu) = (wall.elapsed(), thread_cpu() - cpu);
        assert!(got.key == self.key, "recovered the wrong key");
        let (start, finish) = (t.start.get(), t.finish.get());
        let http_cpu = start.1 + finish.1;
        Sample {
            total,
            start_rtt: start.0,
            finish_rtt: finish.0,
            compute_cpu: cpu.saturating_sub(http_cpu),
            http_cpu,
        }
    }
}

enum Until {
    Count(usize),
    Elapsed(Duration),
}

/// What one phase measured.
struct Phase {
    samples: Vec<Sample>,
    elapsed: Duration,
    server_cpu: Duration,
    bench_cpu: Duration,
    /// Server-side time of each login start and login finish, from its log.
    handler: [Vec<Duration>; 2],
    /// CPU time of the PostgreSQL server processes of the bench database.
    database_cpu: Option<Duration>,
}

fn run(
    clients: &[Client],
    ksf: &KsfParams,
    until: Until,
    servers: &[Server],
    pg: Option<&PgBench>,
) -> Phase {
    let servers_cpu = || -> Duration { servers.iter().map(|s| process_cpu(s.child.id())).sum() };
    let logs0: Vec<u64> = servers.iter().map(Server::log_len).collect();
    let barrier = Barrier::new(clients.len() + 1);
    std::thread::scope(|s| {
        let workers: Vec<_> = clients
            .iter()
            .map(|c| {
                let (barrier, until) = (&barrier, &until);
                s.spawn(move || {
                    let mut samples = Vec::new();
                    barrier.wait();
                    let begin = Instant::now();
                    while match until {
                        Until::Count(n) => samples.len() < *n,
                        Until::Elapsed(d) => begin.elapsed() < *d,
                    } {
                        samples.push(c.login(ksf));
                    }
                    samples
                })
            })
            .collect();
        let (server0, bench0) = (servers_cpu(), process_cpu(std::process::id()));
        let db0 = pg.map(PgBench::backends);
        barrier.wait();
        let begin = Instant::now();
        let samples: Vec<Sample> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("a client thread panicked"))
            .collect();
        let elapsed = begin.elapsed();
        let server_cpu = servers_cpu() - server0;
        let bench_cpu = process_cpu(std::process::id()) - bench0;
        let database_cpu = pg
            .zip(db0)
            .map(|(pg, db0)| backend_cpu(&db0, &pg.backends()));
        let mut handler = [Vec::new(), Vec::new()];
        for (s, log0) in servers.iter().zip(logs0) {
            let [a, b] = s.handler_times(log0, s.log_len());
            handler[0].extend(a);
            handler[1].extend(b);
        }
        Phase {
            samples,
            elapsed,
            server_cpu,
            bench_cpu,
            handler,
            database_cpu,
        }
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// p50, p90, p99 and max in milliseconds (nearest rank).
fn percentiles(mut v: Vec<Duration>) -> [f64; 4] {
    v.sort();
    let at = |p: f64| ms(v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]);
    [at(0.50), at(0.90), at(0.99), ms(*v.last().unwrap())]
}

fn mean(v: impl Iterator<Item = Duration>, n: usize) -> f64 {
    ms(v.sum::<Duration>()) / n as f64
}

/// The client's CPU time per login for OPAQUE and the envelope: `n` logins against the vault
/// code in this process with the cheapest Argon2id, timed outside the vault calls.
fn opaque_cpu(n: usize) -> f64 {
    let mut master = [0u8; 32];
    OsRng.fill_bytes(&mut master);
    let master = MasterKey::from_hex(&hex(&master)).unwrap();
    let policy = Policy {
        ksf_floor: MIN_KSF,
        ..Policy::default()
    };
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let client = Client {
        account: "calibration".into(),
        password: b"calibration".to_vec(),
        key: BackupKey::generate(),
        transport: Box::new(Embedded {
            vault: Vault::new(store, &master, policy).unwrap(),
            account: "calibration".into(),
        }),
    };
    client.register(MIN_KSF);
    let samples: Vec<Sample> = (0..n).map(|_| client.login(&MIN_KSF)).collect();
    mean(samples.iter().map(|s| s.compute_cpu), n)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Prints a phase and returns it as JSON; `opaque_ms` is the client's CPU time per login for
/// OPAQUE and the envelope, the rest of its computation being Argon2id.
fn report(name: &str, p: &Phase, opaque_ms: f64) -> serde_json::Value {
    let n = p.samples.len();
    let rate = n as f64 / p.elapsed.as_secs_f64();
    let pick = |f: fn(&Sample) -> Duration| percentiles(p.samples.iter().map(f).collect());
    let (total, start, finish) = (
        pick(|s| s.total),
        pick(|s| s.start_rtt),
        pick(|s| s.finish_rtt),
    );
    let compute = mean(p.samples.iter().map(|s| s.compute_cpu), n);
    let http = mean(p.samples.iter().map(|s| s.http_cpu), n);
    let server = ms(p.server_cpu) / n as f64;
    let bench = ms(p.bench_cpu) / n as f64;
    let line = |what: &str, q: [f64; 4]| {
        println!(
            "  {what:<22} p50 {:8.2}  p90 {:8.2}  p99 {:8.2}  max {:8.2} ms",
            q[0], q[1], q[2], q[3]
        )
    };
    println!(
        "{name}: {n} logins in {:.1} s = {rate:.1} logins/s",
        p.elapsed.as_secs_f64()
    );
    line("complete login", total);
    line("login start (HTTP)", start);
    line("login finish (HTTP)", finish);
    let [hs, hf] = p.handler.clone().map(percentiles);
    line("login start (server)", hs);
    line("login finish (server)", hf);
    println!(
        "  client CPU per login: computation {compute:.2} ms (Argon2id {:.2}, OPAQUE and \
         envelope {opaque_ms:.2}), in the round trips {http:.2} ms; whole bench process \
         {bench:.2} ms",
        compute - opaque_ms
    );
    println!(
        "  server CPU per login: {server:.2} ms ({:.2} of a core busy)",
        p.server_cpu.as_secs_f64() / p.elapsed.as_secs_f64()
    );
    let database = p.database_cpu.map(|d| ms(d) / n as f64);
    if let (Some(db), Some(d)) = (database, p.database_cpu) {
        println!(
            "  PostgreSQL CPU per login: {db:.2} ms ({:.2} of a core busy)",
            d.as_secs_f64() / p.elapsed.as_secs_f64()
        );
    }
    json!({
        "database_cpu_ms": database,
        "logins": n, "seconds": p.elapsed.as_secs_f64(), "logins_per_sec": rate,
        "complete_ms": total, "login_start_ms": start, "login_finish_ms": finish,
        "server_login_start_ms": hs, "server_login_finish_ms": hf,
        "client_compute_cpu_ms": compute, "client_argon2id_cpu_ms": compute - opaque_ms,
        "client_http_cpu_ms": http,
        "bench_process_cpu_ms": bench, "server_cpu_ms": server,
    })
}

fn main() {
    let args = Args::parse();
    let ksf = match args.ksf {
        Ksf::Default => KsfParams::default(),
        Ksf::Test => TEST_KSF,
    };
    let bin = args.vault_bin.unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("this program's path");
        exe.parent().unwrap().parent().unwrap().join("arca-vault")
    });
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release -p arca-vault` first, or give --vault-bin",
        bin.display()
    );

    let pg = match args.database.as_str() {
        "sqlite" => None,
        "postgres" => Some(PgBench::create("postgres://root@127.0.0.1:5432/postgres")),
        url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Some(PgBench::create(url))
        }
        other => panic!("--database {other:?}: give sqlite, postgres or a postgres:// URL"),
    };
    assert!(
        args.nodes >= 1 && (args.nodes == 1 || pg.is_some()),
        "--nodes: 1 with SQLite (one process per file), 1 or more with PostgreSQL"
    );
    let dir = match &args.tmp {
        Some(t) => tempfile::tempdir_in(t),
        None => tempfile::tempdir(),
    }
    .expect("a temporary folder");
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let secret = hex(&secret);
    let policy = match args.ksf {
        Ksf::Default => "",
        Ksf::Test => "ksf_floor = { m_kib = 64, t = 1, p = 1 }\ninsecure_test_ksf = true",
    };
    let config = dir.path().join("vault.toml");
    std::fs::write(
        &config,
        format!(
            "master_key_file = \"master.key\"\ncreate_master_key = true\n\n\
             [[issuer]]\nname = \"login-bench\"\nhs256_secret = \"{secret}\"\n\n\
             [policy]\n{policy}\n\n\
             [rate_limit]\nper_account_per_minute = 0\nper_address_per_minute = 0\n\n\
             [database]\nmax_connections = {}\n",
            args.pool
        ),
    )
    .expect("write the config");
    let database = match &pg {
        Some(pg) => pg.url(),
        None => dir.path().join("vault.db").display().to_string(),
    };
    // One after the other: the first creates the master key and migrates the database.
    let servers: Vec<Server> = (0..args.nodes)
        .map(|i| Server::start(&bin, dir.path(), &database, i))
        .collect();
    let issuers = Config::load(&config)
        .and_then(|c| c.issuers())
        .expect("the config's issuers");

    for s in &servers {
        println!("arca-vault at {} (pid {})", s.url, s.child.id());
    }
    println!("database {database}");
    println!(
        "Argon2id {} KiB, t = {}, p = {}; {} clients; load average {}",
        ksf.m_kib,
        ksf.t,
        ksf.p,
        args.clients,
        loadavg()
    );

    let clients: Vec<Client> = (0..args.clients)
        .map(|i| {
            let account = format!("bench-{i}");
            let token = issuers
                .issue(None, &account, Duration::from_secs(24 * 3600))
                .expect("issue a token");
            let url = &servers[i % servers.len()].url;
            let http = Http::new(url, &token, &account).expect("an HTTP client");
            let c = Client {
                password: format!("login bench password {i}").into_bytes(),
                key: BackupKey::generate(),
                account,
                transport: Box::new(http),
            };
            c.register(ksf);
            c
        })
        .collect();

    let opaque_ms = opaque_cpu(args.solo);
    println!("client OPAQUE and envelope alone: {opaque_ms:.2} ms of CPU per login");

    let solo = run(
        &clients[..1],
        &ksf,
        Until::Count(args.solo),
        &servers,
        pg.as_ref(),
    );
    let solo = report("solo (1 client)", &solo, opaque_ms);
    let loaded = run(
        &clients,
        &ksf,
        Until::Elapsed(Duration::from_secs(args.seconds)),
        &servers,
        pg.as_ref(),
    );
    let loaded = report(
        &format!("loaded ({} clients)", args.clients),
        &loaded,
        opaque_ms,
    );
    println!("load average after: {}", loadavg());
    println!(
        "{}",
        json!({
            "ksf": ksf, "clients": args.clients, "client_opaque_cpu_ms": opaque_ms,
            "database": if pg.is_some() { "postgres" } else { "sqlite" },
            "nodes": args.nodes, "pool": args.pool,
            "solo": solo, "loaded": loaded,
        })
    );
}
