//! What the vault's integration tests share: the test issuer and config, the real `arca-vault`
//! binary on loopback, raw HTTP requests, and the OPAQUE steps a test does by hand.
//!
//! Each test binary uses a part of it.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arca_client::{ClientError, Http, Transport, open_envelope, recover};
use arca_crypto::BackupKey;
use arca_vault::VaultError;
use arca_vault::http::auth::{Issuer, Issuers};
use arca_vault::service::release_key;
use arca_vault::suite::{KsfParams, Suite};
use arca_vault::wire::*;
use opaque_ke::errors::ProtocolError;
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientLoginFinishResult, CredentialResponse,
    Identifiers,
};
use rand_core::{OsRng, RngCore};

/// Cheap Argon2id, allowed only because the config says `insecure_test_ksf = true`.
pub const TEST_KSF: KsfParams = KsfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};
pub const ISSUER: &str = "arca-test";
pub const SECRET: &str = "test secret: 0123456789abcdef0123456789abcdef";
/// Where the vault listens unless a test says otherwise: a free loopback port.
pub const LOOPBACK: &str = "127.0.0.1:0";

/// Whether `ARCA_REQUIRE_SERVERS=1` (set by .ci/run): a test that needs a server or programs this
/// machine lacks then fails instead of skipping.
pub fn servers_required() -> bool {
    std::env::var("ARCA_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

// ---------------------------------------------------------------------------------------------
// The config

/// A `vault.toml`: the test issuer and the cheap Argon2 floor, plus what the test asks for.
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    /// `create_master_key = true`: the first start writes `master.key`. Without it the test
    /// writes the key itself (see postgres.rs, whose nodes share one).
    pub create_master_key: bool,
    /// `max_guess_limit` in `[policy]`, if not the vault's default.
    pub max_guess_limit: Option<u32>,
    /// A `[rate_limit]` section with both limits off.
    pub no_rate_limits: bool,
    /// A `[database]` section for PostgreSQL with this pool size and short timeouts (2 s to
    /// connect, 5 s per statement and for a pooled connection).
    pub database_pool: Option<u32>,
    /// Appended at the end, after the `[database]` section if there is one (so a bare key such as
    /// `ca_file = ...` lands in it).
    pub extra: &'a str,
}

impl Default for Config<'_> {
    fn default() -> Self {
        Config {
            create_master_key: true,
            max_guess_limit: None,
            no_rate_limits: false,
            database_pool: None,
            extra: "",
        }
    }
}

impl Config<'_> {
    pub fn text(&self) -> String {
        let create = if self.create_master_key {
            "create_master_key = true\n"
        } else {
            ""
        };
        let max_guess_limit = match self.max_guess_limit {
            Some(n) => format!("max_guess_limit = {n}\n"),
            None => String::new(),
        };
        let rate_limit = if self.no_rate_limits {
            "\n[rate_limit]\nper_account_per_minute = 0\nper_address_per_minute = 0\n"
        } else {
            ""
        };
        let database = match self.database_pool {
            Some(n) => format!(
                "\n[database]\nmax_connections = {n}\nconnect_timeout_secs = 2\n\
                 statement_timeout_secs = 5\npool_timeout_secs = 5\n"
            ),
            None => String::new(),
        };
        format!(
            r#"
master_key_file = "master.key"
{create}
[[issuer]]
name = "{ISSUER}"
hs256_secret = "{SECRET}"

[policy]
ksf_floor = {{ m_kib = 64, t = 1, p = 1 }}
insecure_test_ksf = true
{max_guess_limit}{rate_limit}{database}{extra}
"#,
            extra = self.extra
        )
    }
}

/// The plain config with `extra` at the end: a master key the vault creates, no other sections.
pub fn config_text(extra: &str) -> String {
    Config {
        extra,
        ..Config::default()
    }
    .text()
}

// ---------------------------------------------------------------------------------------------
// The vault process

/// A running `arca-vault serve`, killed on drop. Its stderr (the log) is kept.
pub struct Server {
    child: Child,
    pub url: String,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts the binary with `dir/vault.toml` on `database` (a SQLite file or a PostgreSQL URL),
    /// on a free loopback port, with `ARCA_VAULT_LOG=log`; panics if it does not come up.
    pub fn start(dir: &Path, database: impl AsRef<OsStr>, log: &str) -> Server {
        Self::try_start(dir, database, log)
            .unwrap_or_else(|e| panic!("the vault did not start: {e}"))
    }

    /// As [`Server::start`], with the log of a vault that did not come up as the error.
    pub fn try_start(dir: &Path, database: impl AsRef<OsStr>, log: &str) -> Result<Server, String> {
        Self::start_with(dir, database, log, LOOPBACK, &[])
    }

    /// As [`Server::try_start`], on `listen` and with more environment variables.
    pub fn start_with(
        dir: &Path,
        database: impl AsRef<OsStr>,
        log: &str,
        listen: &str,
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let database: OsString = database.as_ref().to_owned();
        let mut child = Command::new(env!("CARGO_BIN_EXE_arca-vault"))
            .args(["serve", "--listen", listen, "--database"])
            .arg(&database)
            .arg("--config")
            .arg(dir.join("vault.toml"))
            .env("ARCA_VAULT_LOG", log)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn arca-vault");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let reader = {
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
            })
        };
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        let mut server = Server {
            url: String::new(),
            child,
            stderr,
            reader: Some(reader),
        };
        let Some(url) = first.trim().strip_prefix("listening on ") else {
            let _ = server.child.wait();
            server.drain();
            return Err(server.logs());
        };
        server.url = url.to_string();
        Ok(server)
    }

    /// Waits until the log is read to its end (the process has exited).
    fn drain(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    pub fn http(&self, account: &str) -> Http {
        Http::new(&self.url, &token(account), account).unwrap()
    }

    /// The log so far.
    pub fn logs(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// SIGKILL: no graceful shutdown, as a crash. Returns the whole log.
    pub fn kill(mut self) -> Vec<u8> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain();
        self.stderr.lock().unwrap().clone()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `GET path` on this server, within [`RAW_TIMEOUT`].
    pub fn get(&self, path: &str) -> Answer {
        raw_within(
            RAW_TIMEOUT,
            "GET",
            &format!("{}{path}", self.url),
            None,
            None,
        )
    }

    /// A counter's value in this server's `/metrics`, summed over its series matching `labels`.
    pub fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        let text = self.get("/metrics").body;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter(|l| labels.iter().all(|x| l.contains(x)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// Tokens and raw HTTP

pub fn issuers() -> Issuers {
    Issuers(vec![
        Issuer::hs256(ISSUER, SECRET.as_bytes(), None).unwrap(),
    ])
}

/// A token of the test issuer for `account`, valid for an hour.
pub fn token(account: &str) -> String {
    issuers()
        .issue(None, account, Duration::from_secs(3600))
        .unwrap()
}

pub fn bearer(account: &str) -> String {
    format!("Bearer {}", token(account))
}

/// The limit the PostgreSQL tests put on a raw request, so that an outage cannot hang one.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub www_authenticate: Option<String>,
    pub body: String,
}

impl Answer {
    pub fn error(&self) -> ErrorBody {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not an ErrorBody ({e}): {}", self.body))
    }
}

/// One request exactly as given, for what a well-behaved client would never send. No limit on
/// how long it takes.
pub fn raw(method: &str, url: &str, auth: Option<&str>, body: Option<&[u8]>) -> Answer {
    try_raw(method, url, auth, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// As [`raw`], the transport's error returned.
pub fn try_raw(
    method: &str,
    url: &str,
    auth: Option<&str>,
    body: Option<&[u8]>,
) -> Result<Answer, Box<ureq::Transport>> {
    send(None, method, url, auth, body)
}

/// As [`raw`], failing if the whole request takes longer than `limit`.
pub fn raw_within(
    limit: Duration,
    method: &str,
    url: &str,
    auth: Option<&str>,
    body: Option<&[u8]>,
) -> Answer {
    send(Some(limit), method, url, auth, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

fn send(
    limit: Option<Duration>,
    method: &str,
    url: &str,
    auth: Option<&str>,
    body: Option<&[u8]>,
) -> Result<Answer, Box<ureq::Transport>> {
    let mut req = ureq::request(method, url);
    if let Some(limit) = limit {
        req = req.timeout(limit);
    }
    if let Some(a) = auth {
        req = req.set("Authorization", a);
    }
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => return Err(Box::new(t)),
    };
    Ok(Answer {
        status: resp.status(),
        retry_after: resp.header("Retry-After").map(str::to_string),
        www_authenticate: resp.header("WWW-Authenticate").map(str::to_string),
        body: resp.into_string().unwrap(),
    })
}

// ---------------------------------------------------------------------------------------------
// OPAQUE by hand

/// A fresh login start for `password` (its client state dropped).
pub fn login_start_request(password: &[u8]) -> LoginStartRequest {
    LoginStartRequest {
        request: ClientLogin::<Suite>::start(&mut OsRng, password)
            .unwrap()
            .message
            .serialize()
            .to_vec(),
    }
}

/// [`login_start_request`] as a JSON body.
pub fn login_start_body(password: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&login_start_request(password)).unwrap()
}

pub fn guesses_left(t: &dyn Transport) -> Option<u32> {
    t.status().unwrap().guesses_left
}

/// The device's login start, by hand (to hold the state across what the test does next).
pub fn start_login(t: &dyn Transport, password: &[u8]) -> (ClientLogin<Suite>, LoginStartResponse) {
    let start = ClientLogin::<Suite>::start(&mut OsRng, password).unwrap();
    let resp = t
        .login_start(&LoginStartRequest {
            request: start.message.serialize().to_vec(),
        })
        .unwrap();
    (start.state, resp)
}

/// The device's side of the finish; fails if the server's answer does not verify (as with a
/// wrong password).
pub fn try_client_finish(
    state: ClientLogin<Suite>,
    password: &[u8],
    resp: &LoginStartResponse,
) -> Result<ClientLoginFinishResult<Suite>, ProtocolError> {
    let argon = resp.ksf.argon2().unwrap();
    state.finish(
        &mut OsRng,
        password,
        CredentialResponse::deserialize(&resp.response).unwrap(),
        ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&argon)),
    )
}

pub fn client_finish(
    state: ClientLogin<Suite>,
    password: &[u8],
    resp: &LoginStartResponse,
) -> ClientLoginFinishResult<Suite> {
    try_client_finish(state, password, resp).unwrap()
}

/// The key in the envelope a finished login released.
pub fn open_released(
    account: &str,
    done: &ClientLoginFinishResult<Suite>,
    login_id: &[u8],
    fin: &LoginFinishResponse,
) -> BackupKey {
    let envelope = arca_crypto::open(
        &release_key(&done.session_key),
        login_id,
        &fin.sealed_envelope,
    )
    .unwrap();
    open_envelope(&done.export_key, account, &envelope).unwrap()
}

/// The guesses left after a wrong password; panics on anything else.
pub fn wrong_password(r: Result<impl Sized, ClientError>) -> u32 {
    match r {
        Err(ClientError::WrongPassword { guesses_left }) => guesses_left,
        Err(e) => panic!("expected a wrong password, got {e}"),
        Ok(_) => panic!("expected a wrong password, got success"),
    }
}

/// `n` wrong-password login starts sent at once, the `i`th through `transport(i)`: every answer
/// is an OPAQUE response or `gone`. Returns how many of each.
pub fn racing_wrong_starts(n: usize, transport: impl Fn(usize) -> Http + Sync) -> (u32, u32) {
    let answered = AtomicU32::new(0);
    let gone = AtomicU32::new(0);
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        for i in 0..n {
            let (answered, gone, barrier, transport) = (&answered, &gone, &barrier, &transport);
            s.spawn(move || {
                let t = transport(i);
                let req = login_start_request(b"a wrong guess");
                barrier.wait();
                match t.login_start(&req) {
                    Ok(resp) => {
                        assert!(!resp.response.is_empty());
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(VaultError::Gone) => {
                        gone.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => panic!("unexpected answer: {e}"),
                }
            });
        }
    });
    (answered.into_inner(), gone.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Load while the database goes away

/// What one request of the load saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    Ok,
    Unavailable,
}

#[derive(Debug)]
pub struct Event {
    pub began: Instant,
    pub ended: Instant,
    pub seen: Seen,
}

/// Until `stop`: for n = `first` + 1, `first` + 2, ..., `attempt(prepare(n))`, timed into
/// `events` (what `prepare` does is not timed), `pause` apart.
pub fn record_until<P>(
    stop: &AtomicBool,
    first: usize,
    pause: Duration,
    events: &Mutex<Vec<Event>>,
    mut prepare: impl FnMut(usize) -> P,
    mut attempt: impl FnMut(P) -> Seen,
) {
    let mut n = first;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let prepared = prepare(n);
        let began = Instant::now();
        let seen = attempt(prepared);
        events.lock().unwrap().push(Event {
            began,
            ended: Instant::now(),
            seen,
        });
        std::thread::sleep(pause);
    }
}

/// A complete login with the right password: it recovers `key`, or the vault is unavailable.
pub fn right_login(t: &dyn Transport, account: &str, password: &[u8], key: &BackupKey) -> Seen {
    match recover(t, account, password, &TEST_KSF) {
        Ok(got) => {
            assert!(got.key == *key, "a login recovered the wrong key");
            Seen::Ok
        }
        Err(ClientError::Vault(VaultError::Unavailable(_))) => Seen::Unavailable,
        Err(e) => panic!("a right password got {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// A database of the test's own on the machine's PostgreSQL server

/// The admin connection: `ARCA_TEST_POSTGRES` if set, else the machine's server as root.
pub fn admin_conninfo() -> String {
    std::env::var("ARCA_TEST_POSTGRES")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=root dbname=postgres".into())
}

pub fn admin() -> postgres::Client {
    postgres::Client::connect(&admin_conninfo(), postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "cannot reach PostgreSQL ({}): {e}; start it with `pg_ctlcluster \
             --skip-systemctl-redirect $(ls /etc/postgresql) main start` (.ci/run does)",
            admin_conninfo()
        )
    })
}

/// A database of this test's own (`arca_test_<tag>_<pid>_<random>`), dropped at the end.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    /// Panics if the server does not answer.
    pub fn new(tag: &str) -> TestDb {
        Self::create(&mut admin(), tag)
    }

    /// `None`, after a loud message, if the server does not answer and servers are not
    /// required; panics if they are.
    pub fn try_new(tag: &str) -> Option<TestDb> {
        let admin = admin_conninfo();
        match postgres::Client::connect(&admin, postgres::NoTls) {
            Ok(mut c) => Some(Self::create(&mut c, tag)),
            Err(e) => {
                if servers_required() {
                    panic!("PostgreSQL ({admin}) does not answer and ARCA_REQUIRE_SERVERS=1: {e}");
                }
                eprintln!(
                    "\n!!!!!!!! SKIPPED: PostgreSQL ({admin}) does not answer ({e}), so this test did not run (.ci/run starts it).\n"
                );
                None
            }
        }
    }

    fn create(admin: &mut postgres::Client, tag: &str) -> TestDb {
        let name = format!(
            "arca_test_{tag}_{}_{:08x}",
            std::process::id(),
            OsRng.next_u32()
        );
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        TestDb { name }
    }

    /// The vault's URL for this database on 127.0.0.1 as root, through `port` (the server's, or
    /// a proxy's).
    pub fn url_via(&self, port: u16) -> String {
        format!("postgres://root@127.0.0.1:{port}/{}", self.name)
    }

    pub fn url(&self) -> String {
        self.url_via(5432)
    }

    /// The vault's URL for this database with the user, host and port of the admin connection.
    pub fn url_as_admin(&self) -> String {
        let admin = admin_conninfo();
        let param = |k: &str, d: &str| {
            admin
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")).map(str::to_string))
                .unwrap_or_else(|| d.to_string())
        };
        format!(
            "postgres://{}@{}:{}/{}",
            param("user", "root"),
            param("host", "127.0.0.1"),
            param("port", "5432"),
            self.name
        )
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(
            &format!("host=127.0.0.1 port=5432 user=root dbname={}", self.name),
            postgres::NoTls,
        )
        .unwrap()
    }

    /// Ends every session on this database except the caller's; returns how many.
    pub fn terminate_sessions(&self) -> i64 {
        admin()
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .unwrap()
            .get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&admin_conninfo(), postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
