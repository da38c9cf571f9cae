//! The PostgreSQL record store, for any number of stateless vault nodes over one database.
//!
//! Every step that changes a guess count or a record is one atomic statement, or one
//! `SERIALIZABLE` transaction that is retried when PostgreSQL reports a serialization failure
//! or a deadlock. The guess count itself is only ever lowered by
//! `UPDATE ... WHERE guesses_left > 0 RETURNING`, which PostgreSQL runs under the row's lock and
//! re-checks against the latest committed row, so however many nodes charge the same account at
//! once, at most `guess_limit` charges succeed between two resets. Pending logins, change
//! tickets and the head register live in the database too, so a login started on one node can
//! finish on another, and each is taken with `DELETE ... RETURNING` (single use).
//!
//! Connections: a small pool per node (`[database] max_connections`), filled on demand. The
//! connections are driven by a runtime of the store's own, so a connection the server closed
//! (restart, `pg_terminate_backend`, network cut) is noticed at once and never handed out
//! again; a request that finds the database unreachable fails with [`VaultError::Store`] (503
//! with `Retry-After`) and the next request simply connects again. An error that leaves it
//! unknown whether a statement committed is never retried: at worst a guess is charged and the
//! client sees a 503, never an answer without a charge.
//!
//! Migrations run at start, under an advisory lock so that nodes starting together apply each
//! one once; `arca_vault_migrations` records them, and a node refuses a schema newer than it
//! knows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, IsolationLevel, NoTls, Row, Statement, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;
use zeroize::Zeroizing;

use crate::VaultError;
use crate::metrics::metrics;
use crate::store::{Charge, PendingLogin, Record, RecordStore, Result, Status};
use crate::wire::Head;

type PgError = tokio_postgres::Error;

/// Schema migrations, applied in order; `arca_vault_migrations` holds the versions applied.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE server_setup (id INTEGER PRIMARY KEY CHECK (id = 1), sealed BYTEA NOT NULL);
CREATE TABLE records (
    account TEXT PRIMARY KEY,
    password_file BYTEA NOT NULL,
    envelope BYTEA NOT NULL,
    ksf TEXT NOT NULL,
    guess_limit INTEGER NOT NULL CHECK (guess_limit > 0),
    guesses_left INTEGER NOT NULL CHECK (guesses_left >= 0),
    key_proof_hash BYTEA,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE TABLE tombstones (account TEXT PRIMARY KEY, destroyed BIGINT NOT NULL);
CREATE TABLE phantoms (account TEXT PRIMARY KEY, guesses_left INTEGER NOT NULL CHECK (guesses_left >= 0));
CREATE TABLE logins (
    id BYTEA PRIMARY KEY,
    account TEXT NOT NULL,
    state BYTEA NOT NULL,
    expires BIGINT NOT NULL,
    known BOOLEAN NOT NULL
);
CREATE INDEX logins_account ON logins (account);
CREATE INDEX logins_expires ON logins (expires);
CREATE TABLE tickets (hash BYTEA PRIMARY KEY, account TEXT NOT NULL, expires BIGINT NOT NULL);
CREATE INDEX tickets_account ON tickets (account);
CREATE INDEX tickets_expires ON tickets (expires);
CREATE TABLE heads (account TEXT PRIMARY KEY, seq BIGINT NOT NULL, mac BYTEA NOT NULL);
CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time BIGINT NOT NULL,
    account TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_account ON audit (account, time);
"#];

/// The advisory lock that serializes migrations between nodes ("arcavlt1").
const MIGRATION_LOCK: i64 = 0x6172_6361_766c_7431;

// The statements, prepared once per connection.
const SETUP_GET: &str = "SELECT sealed FROM server_setup WHERE id = 1";
const SETUP_INIT: &str =
    "INSERT INTO server_setup (id, sealed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING";
const STATUS: &str = "SELECT r.guess_limit, r.guesses_left, t.account IS NOT NULL, p.guesses_left
    FROM (SELECT $1::text AS account) a
    LEFT JOIN records r ON r.account = a.account
    LEFT JOIN tombstones t ON t.account = a.account
    LEFT JOIN phantoms p ON p.account = a.account";
const RECORD: &str =
    "SELECT password_file, envelope, ksf, guess_limit, guesses_left, key_proof_hash
    FROM records WHERE account = $1";
const INSERT: &str = "INSERT INTO records (account, password_file, envelope, ksf, guess_limit,
    guesses_left, key_proof_hash, created, updated) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $7)
    ON CONFLICT (account) DO NOTHING";
const INSERTED: &str = "WITH t AS (DELETE FROM tombstones WHERE account = $1),
    p AS (DELETE FROM phantoms WHERE account = $1)
    INSERT INTO audit (time, account, event, detail) VALUES ($2, $1, 'registered', $3)";
const REPLACE: &str = "UPDATE records SET password_file = $2, envelope = $3, ksf = $4,
    guess_limit = $5, guesses_left = $5, key_proof_hash = $6, updated = $7 WHERE account = $1";
const REPLACED: &str = "WITH l AS (DELETE FROM logins WHERE account = $1)
    INSERT INTO audit (time, account, event, detail) VALUES ($2, $1, 'password changed', '')";
/// One guess, with its audit line, in one statement.
const CHARGE: &str = "WITH c AS (
        UPDATE records SET guesses_left = guesses_left - 1, updated = $2
        WHERE account = $1 AND guesses_left > 0
        RETURNING password_file, envelope, ksf, guess_limit, guesses_left, key_proof_hash),
    a AS (INSERT INTO audit (time, account, event, detail)
        SELECT $2, $1, 'login start', guesses_left || ' guesses left' FROM c)
    SELECT * FROM c";
const LOCK_RECORD: &str = "SELECT guesses_left FROM records WHERE account = $1 FOR UPDATE";
const LOCK_EXHAUSTED: &str =
    "SELECT 1 FROM records WHERE account = $1 AND guesses_left = 0 FOR UPDATE";
const TOMBSTONE: &str = "SELECT 1 FROM tombstones WHERE account = $1";
const PHANTOM: &str = "INSERT INTO phantoms (account, guesses_left) VALUES ($1, $2)
    ON CONFLICT (account) DO UPDATE SET guesses_left = GREATEST(phantoms.guesses_left - 1, 0)
    RETURNING guesses_left";
const PHANTOM_AUDIT: &str = "INSERT INTO audit (time, account, event, detail)
    VALUES ($2, $1, 'login start', 'unregistered account')";
const PHANTOM_SPENT: &str = "WITH p AS (DELETE FROM phantoms WHERE account = $1)
    INSERT INTO tombstones (account, destroyed) VALUES ($1, $2)
    ON CONFLICT (account) DO UPDATE SET destroyed = excluded.destroyed";
const RESET: &str = "WITH u AS (
        UPDATE records SET guesses_left = guess_limit, updated = $2 WHERE account = $1)
    INSERT INTO audit (time, account, event, detail) VALUES ($2, $1, 'login finish', 'success')";
/// Overwrites the secrets in place before the row is deleted.
const OVERWRITE: &str = "UPDATE records SET
    password_file = decode(repeat('00', length(password_file)), 'hex'),
    envelope = decode(repeat('00', length(envelope)), 'hex'),
    key_proof_hash = NULL WHERE account = $1";
const DESTROY: &str = "WITH l AS (DELETE FROM logins WHERE account = $1),
    t AS (DELETE FROM tickets WHERE account = $1),
    p AS (DELETE FROM phantoms WHERE account = $1),
    s AS (INSERT INTO tombstones (account, destroyed) VALUES ($1, $2)
        ON CONFLICT (account) DO UPDATE SET destroyed = excluded.destroyed),
    a AS (INSERT INTO audit (time, account, event, detail)
        VALUES ($2, $1, 'destroyed', 'guesses used up'))
    DELETE FROM records WHERE account = $1";
const DELETE: &str = "WITH l AS (DELETE FROM logins WHERE account = $1),
    t AS (DELETE FROM tickets WHERE account = $1),
    h AS (DELETE FROM heads WHERE account = $1),
    p AS (DELETE FROM phantoms WHERE account = $1),
    s AS (DELETE FROM tombstones WHERE account = $1),
    a AS (INSERT INTO audit (time, account, event, detail)
        VALUES ($2, $1, 'deleted', 'by the account holder'))
    DELETE FROM records WHERE account = $1";
const PUT_LOGIN: &str =
    "INSERT INTO logins (id, account, state, expires, known) VALUES ($1, $2, $3, $4, $5)";
const TAKE_LOGIN: &str =
    "DELETE FROM logins WHERE id = $1 AND account = $2 RETURNING account, state, expires, known";
const SWEEP: &str = "WITH l AS (DELETE FROM logins WHERE expires < $1)
    DELETE FROM tickets WHERE expires < $1";
const PUT_TICKET: &str = "INSERT INTO tickets (hash, account, expires) VALUES ($1, $2, $3)";
const TAKE_TICKET: &str = "DELETE FROM tickets WHERE hash = $1 RETURNING account, expires";
const HEAD: &str = "SELECT seq, mac FROM heads WHERE account = $1";
/// Moves the head forward (or rewrites the same head); returns how many rows moved and the
/// head as it was before.
const SET_HEAD: &str = "WITH up AS (
        INSERT INTO heads (account, seq, mac) VALUES ($1, $2, $3)
        ON CONFLICT (account) DO UPDATE SET seq = excluded.seq, mac = excluded.mac
        WHERE excluded.seq > heads.seq OR (excluded.seq = heads.seq AND excluded.mac = heads.mac)
        RETURNING seq)
    SELECT (SELECT count(*) FROM up), (SELECT seq FROM heads WHERE account = $1)";
const AUDIT: &str = "INSERT INTO audit (time, account, event, detail) VALUES ($1, $2, $3, $4)";

const STATEMENTS: &[&str] = &[
    SETUP_GET,
    SETUP_INIT,
    STATUS,
    RECORD,
    INSERT,
    INSERTED,
    REPLACE,
    REPLACED,
    CHARGE,
    LOCK_RECORD,
    LOCK_EXHAUSTED,
    TOMBSTONE,
    PHANTOM,
    PHANTOM_AUDIT,
    PHANTOM_SPENT,
    RESET,
    OVERWRITE,
    DESTROY,
    DELETE,
    PUT_LOGIN,
    TAKE_LOGIN,
    SWEEP,
    PUT_TICKET,
    TAKE_TICKET,
    HEAD,
    SET_HEAD,
    AUDIT,
];

/// How many times a transaction is retried after a serialization failure or a deadlock.
const MAX_RETRIES: u32 = 40;
/// Pending logins and tickets are swept this long after they expire (a finish of an expired
/// login is still told so, and may destroy a used-up record).
const SWEEP_AFTER_SECS: i64 = 3600;

/// Pool and timeout settings (the config file's `[database]` section).
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Connections this node opens at most.
    pub max_connections: usize,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// How long a request waits for a free connection when all are busy.
    pub pool_timeout: Duration,
    /// PostgreSQL's `statement_timeout` on every connection; an operation (with its retries)
    /// is abandoned a little after it.
    pub statement_timeout: Duration,
    /// The password, if not in the URL.
    pub password: Option<Zeroizing<String>>,
    /// PEM certificates to trust for TLS to the database (`sslmode=require` in the URL)
    /// instead of the web PKI roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            pool_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(10),
            password: None,
            ca_pem: None,
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn to_u32(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// One pooled connection and its prepared statements.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    fn st(&self, sql: &'static str) -> &Statement {
        &self.statements[sql]
    }
}

/// A connection lent to one operation; back to the pool on drop unless it broke.
struct Lease<'a> {
    store: &'a PgStore,
    conn: Option<Conn>,
    broken: bool,
    _permit: OwnedSemaphorePermit,
}

impl Lease<'_> {
    fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take()
            && !self.broken
            && !c.client.is_closed()
        {
            self.store
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(c);
        }
        self.store.update_gauges(1);
    }
}

/// What an error means for the operation that met it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// Serialization failure or deadlock: the transaction was rolled back; run it again.
    Serialization,
    /// The server ended the session before running the statement (`pg_terminate_backend`,
    /// shutdown): nothing was done; run it again on another connection.
    Terminated,
    /// The connection failed; whether the statement ran is unknown.
    Connection,
    Other,
}

impl Failure {
    fn of(e: &PgError) -> Failure {
        match e.code() {
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE => Failure::Serialization,
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED => Failure::Serialization,
            Some(c)
                if *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CRASH_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW =>
            {
                Failure::Terminated
            }
            Some(c) if c.code().starts_with("08") => Failure::Connection,
            Some(_) => Failure::Other,
            None => Failure::Connection,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Failure::Serialization => "serialization",
            Failure::Terminated | Failure::Connection => "connection",
            Failure::Other => "other",
        }
    }
}

pub struct PgStore {
    /// Drives the connections; `None` only while dropping.
    rt: Option<tokio::runtime::Runtime>,
    config: tokio_postgres::Config,
    /// TLS, when the URL says `sslmode=require`.
    tls: Option<MakeRustlsConnect>,
    options: PgOptions,
    idle: Mutex<Vec<Conn>>,
    slots: std::sync::Arc<Semaphore>,
    /// Whether the last attempt to reach the database failed (for the log).
    down: AtomicBool,
    last_sweep: AtomicI64,
    described: String,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // May run inside another runtime (the server's): never block here.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// `postgres://user@host:port/dbname`, without the password, for logs and messages.
pub fn describe(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    // One port applies to every host; none means 5432.
    let ports = config.get_ports();
    let port = |i: usize| match ports {
        [] => 5432,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(5432),
    };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| (h, port(i)))
        .map(|(h, p)| match h {
            Host::Tcp(name) => format!("{name}:{p}"),
            Host::Unix(path) => format!("[{}]:{p}", path.display()),
        })
        .collect();
    let db = config.get_dbname().or(config.get_user()).unwrap_or("");
    format!("postgres://{user}@{}/{db}", hosts.join(","))
}

/// Whether `--database` names a PostgreSQL database.
pub fn is_postgres_url(database: &str) -> bool {
    let lower = database.to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

impl PgStore {
    /// Connects to the database at `url` (a `postgres://` URL), runs pending migrations and
    /// keeps that first connection in the pool.
    pub fn open(url: &str, options: PgOptions) -> Result<Self> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            VaultError::Store(format!(
                "the PostgreSQL URL is not valid ({e}); expected \
                 postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?options]"
            ))
        })?;
        if config.get_user().is_none() {
            return Err(VaultError::Store(
                "the PostgreSQL URL names no user (postgres://USER@HOST/DATABASE)".into(),
            ));
        }
        if let Some(p) = &options.password {
            config.password(p.as_bytes());
        }
        if config.get_application_name().is_none() {
            config.application_name("arca-vault");
        }
        let timeout_ms = options.statement_timeout.as_millis().max(1);
        let session = format!(
            "-c statement_timeout={timeout_ms} -c idle_in_transaction_session_timeout={}",
            timeout_ms * 3
        );
        let merged = match config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} {session}"),
            _ => session,
        };
        config.options(merged);
        config
            .connect_timeout(options.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .tcp_user_timeout(options.statement_timeout + options.connect_timeout);
        let tls = match config.get_ssl_mode() {
            SslMode::Require => Some(tls_connector(options.ca_pem.as_deref())?),
            _ => {
                // Without sslmode=require the connection is plain (the usual loopback or
                // unix-socket setup); `prefer` is not attempted, so that a server's
                // self-signed certificate cannot make the start fail.
                config.ssl_mode(SslMode::Disable);
                None
            }
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("arca-vault-pg")
            .enable_all()
            .build()
            .map_err(|e| VaultError::Store(format!("cannot start the database runtime: {e}")))?;
        let described = describe(&config);
        let store = PgStore {
            rt: Some(rt),
            tls,
            slots: std::sync::Arc::new(Semaphore::new(options.max_connections.max(1))),
            config,
            options,
            idle: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
            last_sweep: AtomicI64::new(0),
            described,
        };
        store.rt().block_on(store.start())?;
        Ok(store)
    }

    /// The database, without its password.
    pub fn description(&self) -> &str {
        &self.described
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("the runtime lives until drop")
    }

    async fn start(&self) -> Result<()> {
        let cannot = |e: PgError| {
            VaultError::Store(format!(
                "cannot connect to the PostgreSQL database {}: {}",
                self.described,
                error_text(&e)
            ))
        };
        let mut client = self.connect_client().await.map_err(cannot)?;
        migrate(&mut client).await.map_err(|e| match e {
            Migration::Pg(e) => VaultError::Store(format!(
                "cannot migrate the PostgreSQL database {}: {}",
                self.described,
                error_text(&e)
            )),
            Migration::Newer(v) => VaultError::Store(format!(
                "the PostgreSQL database {} has schema version {v}, newer than this arca-vault \
                 knows ({}); run a newer arca-vault",
                self.described,
                MIGRATIONS.len()
            )),
        })?;
        let conn = prepare(client).await.map_err(cannot)?;
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        self.update_gauges(0);
        Ok(())
    }

    async fn connect_client(&self) -> std::result::Result<Client, PgError> {
        // The connection runs on the store's runtime, so its end is noticed even while idle.
        let ended = |e: PgError| {
            tracing::debug!(error = %error_text(&e), "a PostgreSQL connection ended");
        };
        match &self.tls {
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                tokio::spawn(async move { connection.await.unwrap_or_else(ended) });
                Ok(client)
            }
            None => {
                let (client, connection) = self.config.connect(NoTls).await?;
                tokio::spawn(async move { connection.await.unwrap_or_else(ended) });
                Ok(client)
            }
        }
    }

    fn update_gauges(&self, leaving: usize) {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).len();
        let max = self.options.max_connections.max(1);
        let busy = max.saturating_sub(self.slots.available_permits() + leaving);
        let m = &metrics().database_connections;
        m.with_label_values(&["idle"]).set(idle as i64);
        m.with_label_values(&["busy"]).set(busy as i64);
    }

    /// A connection: an idle one that is still open, or a new one.
    async fn checkout(&self, deadline: Instant) -> Result<Lease<'_>> {
        let wait = deadline.min(Instant::now() + self.options.pool_timeout);
        let permit = match tokio::time::timeout_at(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => {
                metrics()
                    .database_errors
                    .with_label_values(&["timeout"])
                    .inc();
                return Err(VaultError::Store(format!(
                    "all {} PostgreSQL connections stayed busy for {:?}",
                    self.options.max_connections, self.options.pool_timeout
                )));
            }
        };
        loop {
            let next = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match next {
                Some(c) if c.client.is_closed() => continue,
                Some(c) => {
                    self.update_gauges(0);
                    return Ok(Lease {
                        store: self,
                        conn: Some(c),
                        broken: false,
                        _permit: permit,
                    });
                }
                None => break,
            }
        }
        let connected = match tokio::time::timeout_at(deadline, async {
            let client = self.connect_client().await?;
            prepare(client).await
        })
        .await
        {
            Ok(r) => r,
            Err(_) => {
                metrics()
                    .database_errors
                    .with_label_values(&["timeout"])
                    .inc();
                self.note_down("connecting timed out");
                return Err(VaultError::Store(format!(
                    "connecting to PostgreSQL {} timed out",
                    self.described
                )));
            }
        };
        match connected {
            Ok(conn) => {
                self.update_gauges(0);
                Ok(Lease {
                    store: self,
                    conn: Some(conn),
                    broken: false,
                    _permit: permit,
                })
            }
            Err(e) => {
                metrics()
                    .database_errors
                    .with_label_values(&["connection"])
                    .inc();
                self.note_down(&error_text(&e));
                Err(VaultError::Store(format!(
                    "cannot connect to PostgreSQL {}: {}",
                    self.described,
                    error_text(&e)
                )))
            }
        }
    }

    fn note_down(&self, why: &str) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::error!(database = %self.described, error = %why,
                "PostgreSQL is unreachable; answering 503 until it is back");
        }
    }

    fn note_up(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::warn!(database = %self.described, "PostgreSQL is reachable again");
        }
    }

    /// Runs `op` on a pooled connection, on the store's runtime; reruns it after a
    /// serialization failure (with a random back-off) or when the server ended the session
    /// before running it. Any other failure is [`VaultError::Store`].
    fn run<T>(
        &self,
        what: &'static str,
        op: impl AsyncFnMut(&mut Conn) -> std::result::Result<T, PgError>,
    ) -> Result<T> {
        self.rt().block_on(self.run_async(what, op))
    }

    async fn run_async<T>(
        &self,
        what: &'static str,
        mut op: impl AsyncFnMut(&mut Conn) -> std::result::Result<T, PgError>,
    ) -> Result<T> {
        let deadline =
            Instant::now() + self.options.statement_timeout + self.options.connect_timeout;
        let mut attempt = 0u32;
        loop {
            let mut lease = self.checkout(deadline).await?;
            let err = match tokio::time::timeout_at(deadline, op(lease.conn())).await {
                Ok(Ok(v)) => {
                    drop(lease);
                    self.note_up();
                    return Ok(v);
                }
                Ok(Err(e)) => e,
                Err(_) => {
                    lease.broken = true;
                    metrics()
                        .database_errors
                        .with_label_values(&["timeout"])
                        .inc();
                    return Err(VaultError::Store(format!(
                        "PostgreSQL {what}: no answer within {:?}",
                        self.options.statement_timeout
                    )));
                }
            };
            let failure = Failure::of(&err);
            metrics()
                .database_errors
                .with_label_values(&[failure.label()])
                .inc();
            if failure == Failure::Terminated {
                lease.broken = true;
            }
            drop(lease);
            attempt += 1;
            match failure {
                Failure::Serialization if attempt <= MAX_RETRIES && Instant::now() < deadline => {
                    let cap = 1u64 << attempt.min(6); // 2 ms .. 64 ms
                    let jitter = u64::from(OsRng.next_u32()) % (cap * 1000);
                    tokio::time::sleep(Duration::from_micros(500 + jitter)).await;
                }
                Failure::Terminated if attempt <= 3 => {}
                Failure::Connection | Failure::Terminated => {
                    self.note_down(&error_text(&err));
                    return Err(VaultError::Store(format!(
                        "PostgreSQL {what}: {}",
                        error_text(&err)
                    )));
                }
                _ => {
                    return Err(VaultError::Store(format!(
                        "PostgreSQL {what}: {}",
                        error_text(&err)
                    )));
                }
            }
        }
    }

    fn sweep_due(&self) -> bool {
        let now = now();
        let last = self.last_sweep.load(Ordering::Relaxed);
        now - last >= 60
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// rustls (TLS 1.2/1.3, ring), verifying the server against `ca_pem` or the web PKI roots.
fn tls_connector(ca_pem: Option<&[u8]>) -> Result<MakeRustlsConnect> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| VaultError::Store(format!("database.ca_file: {e}")))?;
            if certs.is_empty() {
                return Err(VaultError::Store(
                    "database.ca_file holds no certificate".into(),
                ));
            }
            for c in certs {
                roots.add(c).map_err(|e| {
                    VaultError::Store(format!(
                        "database.ca_file: a certificate is not usable: {e}"
                    ))
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| VaultError::Store(format!("TLS to the database: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The error with its server-side detail, if any (the `Display` of a `DbError` alone says only
/// "db error").
fn error_text(e: &PgError) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({}): {}", db.severity(), db.code().code(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

enum Migration {
    Pg(PgError),
    Newer(i32),
}

impl From<PgError> for Migration {
    fn from(e: PgError) -> Self {
        Migration::Pg(e)
    }
}

async fn migrate(client: &mut Client) -> std::result::Result<(), Migration> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS arca_vault_migrations \
         (version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)",
    )
    .await?;
    let current: Option<i32> = tx
        .query_one("SELECT max(version) FROM arca_vault_migrations", &[])
        .await?
        .get(0);
    let current = current.unwrap_or(0);
    if current as usize > MIGRATIONS.len() {
        return Err(Migration::Newer(current));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(m).await?;
        tx.execute(
            "INSERT INTO arca_vault_migrations (version, applied) VALUES ($1, $2)",
            &[&(i as i32 + 1), &now()],
        )
        .await?;
        tracing::info!(version = i + 1, "applied a PostgreSQL schema migration");
    }
    tx.commit().await?;
    Ok(())
}

async fn prepare(client: Client) -> std::result::Result<Conn, PgError> {
    let mut statements = HashMap::with_capacity(STATEMENTS.len());
    for sql in STATEMENTS {
        statements.insert(*sql, client.prepare(sql).await?);
    }
    Ok(Conn { client, statements })
}

fn serializable(c: &mut Client) -> tokio_postgres::TransactionBuilder<'_> {
    c.build_transaction()
        .isolation_level(IsolationLevel::Serializable)
}

fn ksf_text(k: &crate::suite::KsfParams) -> String {
    serde_json::to_string(k).expect("KsfParams serializes")
}

fn read_record(row: &Row) -> Result<Record> {
    let ksf: String = row.get("ksf");
    let kp: Option<Vec<u8>> = row.get("key_proof_hash");
    Ok(Record {
        password_file: row.get("password_file"),
        envelope: row.get("envelope"),
        ksf: serde_json::from_str(&ksf)
            .map_err(|e| VaultError::Store(format!("a stored ksf is damaged: {e}")))?,
        guess_limit: to_u32(row.get("guess_limit")),
        guesses_left: to_u32(row.get("guesses_left")),
        key_proof_hash: kp.and_then(|v| v.try_into().ok()),
    })
}

/// Destroys the record inside a transaction that holds its row lock.
async fn destroy_in(
    tx: &Transaction<'_>,
    st: &HashMap<&'static str, Statement>,
    account: &str,
) -> std::result::Result<(), PgError> {
    tx.execute(&st[OVERWRITE], &[&account]).await?;
    tx.execute(&st[DESTROY], &[&account, &now()]).await?;
    Ok(())
}

enum Charged {
    Row(Row),
    Exhausted,
    Gone,
    Unknown(i32),
}

impl RecordStore for PgStore {
    fn server_setup(&self) -> Result<Option<Vec<u8>>> {
        self.run("read the server setup", async |c| {
            Ok(c.client
                .query_opt(c.st(SETUP_GET), &[])
                .await?
                .map(|r| r.get(0)))
        })
    }

    fn init_server_setup(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        self.run("store the server setup", async |c| {
            c.client.execute(c.st(SETUP_INIT), &[&sealed]).await?;
            Ok(c.client.query_one(c.st(SETUP_GET), &[]).await?.get(0))
        })
    }

    fn status(&self, account: &str) -> Result<Status> {
        let row = self.run("read an account's status", async |c| {
            c.client.query_one(c.st(STATUS), &[&account]).await
        })?;
        let limit: Option<i32> = row.get(0);
        let left: Option<i32> = row.get(1);
        let gone: bool = row.get(2);
        let phantom: Option<i32> = row.get(3);
        Ok(match (limit, left) {
            (Some(limit), Some(left)) => Status::Active {
                guess_limit: to_u32(limit),
                guesses_left: to_u32(left),
            },
            _ if gone => Status::Gone,
            _ => Status::Unknown {
                phantom_left: phantom.map(to_u32),
            },
        })
    }

    fn insert(&self, account: &str, r: &Record) -> Result<()> {
        let kp = r.key_proof_hash.map(|h| h.to_vec());
        let ksf = ksf_text(&r.ksf);
        let limit = to_i32(r.guess_limit);
        let detail = format!("guess limit {}", r.guess_limit);
        let inserted = self.run("register", async |c| {
            let now = now();
            let tx = serializable(&mut c.client).start().await?;
            let n = tx
                .execute(
                    &c.statements[INSERT],
                    &[
                        &account,
                        &r.password_file,
                        &r.envelope,
                        &ksf,
                        &limit,
                        &kp,
                        &now,
                    ],
                )
                .await?;
            if n == 1 {
                tx.execute(&c.statements[INSERTED], &[&account, &now, &detail])
                    .await?;
            }
            tx.commit().await?;
            Ok(n == 1)
        })?;
        if inserted {
            Ok(())
        } else {
            Err(VaultError::AlreadyRegistered)
        }
    }

    fn replace(&self, account: &str, r: &Record) -> Result<()> {
        let kp = r.key_proof_hash.map(|h| h.to_vec());
        let ksf = ksf_text(&r.ksf);
        let limit = to_i32(r.guess_limit);
        let n = self.run("change a password", async |c| {
            let now = now();
            let tx = serializable(&mut c.client).start().await?;
            let n = tx
                .execute(
                    &c.statements[REPLACE],
                    &[
                        &account,
                        &r.password_file,
                        &r.envelope,
                        &ksf,
                        &limit,
                        &kp,
                        &now,
                    ],
                )
                .await?;
            if n == 1 {
                tx.execute(&c.statements[REPLACED], &[&account, &now])
                    .await?;
            }
            tx.commit().await?;
            Ok(n)
        })?;
        if n == 1 {
            Ok(())
        } else {
            Err(VaultError::NotRegistered)
        }
    }

    fn record(&self, account: &str) -> Result<Option<Record>> {
        let row = self.run("read a record", async |c| {
            c.client.query_opt(c.st(RECORD), &[&account]).await
        })?;
        row.as_ref().map(read_record).transpose()
    }

    fn charge(&self, account: &str, phantom_limit: u32) -> Result<Charge> {
        let phantom_start = to_i32(phantom_limit.saturating_sub(1));
        let outcome = self.run("charge a guess", async |c| {
            // The usual case, one statement: a record with guesses left.
            if let Some(row) = c
                .client
                .query_opt(c.st(CHARGE), &[&account, &now()])
                .await?
            {
                return Ok(Charged::Row(row));
            }
            // No guess was left, or there is no record: decide under the row lock.
            let now = now();
            let st = &c.statements;
            let tx = serializable(&mut c.client).start().await?;
            let outcome = match tx.query_opt(&st[LOCK_RECORD], &[&account]).await? {
                Some(row) if row.get::<_, i32>(0) > 0 => {
                    // A verified login reset the count meanwhile.
                    match tx.query_opt(&st[CHARGE], &[&account, &now]).await? {
                        Some(row) => Charged::Row(row),
                        None => Charged::Exhausted,
                    }
                }
                Some(_) => {
                    destroy_in(&tx, st, account).await?;
                    Charged::Exhausted
                }
                None if tx.query_opt(&st[TOMBSTONE], &[&account]).await?.is_some() => Charged::Gone,
                None => {
                    let left: i32 = tx
                        .query_one(&st[PHANTOM], &[&account, &phantom_start])
                        .await?
                        .get(0);
                    tx.execute(&st[PHANTOM_AUDIT], &[&account, &now]).await?;
                    if left == 0 {
                        // Look exactly like a record whose guesses ran out.
                        tx.execute(&st[PHANTOM_SPENT], &[&account, &now]).await?;
                    }
                    Charged::Unknown(left)
                }
            };
            tx.commit().await?;
            Ok(outcome)
        })?;
        Ok(match outcome {
            Charged::Row(row) => {
                let record = read_record(&row)?;
                Charge::Charged {
                    left: record.guesses_left,
                    record,
                }
            }
            Charged::Exhausted => Charge::Exhausted,
            Charged::Gone => Charge::Gone,
            Charged::Unknown(left) => Charge::Unknown { left: to_u32(left) },
        })
    }

    fn reset(&self, account: &str) -> Result<()> {
        self.run("reset a guess count", async |c| {
            c.client.execute(c.st(RESET), &[&account, &now()]).await?;
            Ok(())
        })
    }

    fn destroy(&self, account: &str) -> Result<()> {
        self.run("destroy a record", async |c| {
            let st = &c.statements;
            let tx = serializable(&mut c.client).start().await?;
            tx.query_opt(&st[LOCK_RECORD], &[&account]).await?;
            destroy_in(&tx, st, account).await?;
            tx.commit().await
        })
    }

    fn delete(&self, account: &str) -> Result<bool> {
        self.run("delete a record", async |c| {
            let st = &c.statements;
            let tx = serializable(&mut c.client).start().await?;
            tx.execute(&st[OVERWRITE], &[&account]).await?;
            let n = tx.execute(&st[DELETE], &[&account, &now()]).await?;
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    fn destroy_if_exhausted(&self, account: &str) -> Result<bool> {
        self.run("destroy a used-up record", async |c| {
            let st = &c.statements;
            let tx = serializable(&mut c.client).start().await?;
            let exhausted = tx.query_opt(&st[LOCK_EXHAUSTED], &[&account]).await?;
            if exhausted.is_some() {
                destroy_in(&tx, st, account).await?;
            }
            tx.commit().await?;
            Ok(exhausted.is_some())
        })
    }

    fn put_login(&self, id: &[u8], l: &PendingLogin) -> Result<()> {
        let sweep = self.sweep_due();
        self.run("store a pending login", async |c| {
            if sweep {
                c.client
                    .execute(c.st(SWEEP), &[&(now() - SWEEP_AFTER_SECS)])
                    .await?;
            }
            c.client
                .execute(
                    c.st(PUT_LOGIN),
                    &[&id, &l.account, &l.state, &l.expires, &l.known],
                )
                .await?;
            Ok(())
        })
    }

    fn take_login(&self, id: &[u8], account: &str) -> Result<Option<PendingLogin>> {
        let row = self.run("take a pending login", async |c| {
            c.client.query_opt(c.st(TAKE_LOGIN), &[&id, &account]).await
        })?;
        Ok(row.map(|r| PendingLogin {
            account: r.get(0),
            state: r.get(1),
            expires: r.get(2),
            known: r.get(3),
        }))
    }

    fn put_ticket(&self, hash: &[u8; 32], account: &str, expires: i64) -> Result<()> {
        let hash = hash.as_slice();
        self.run("store a change ticket", async |c| {
            c.client
                .execute(c.st(PUT_TICKET), &[&hash, &account, &expires])
                .await?;
            Ok(())
        })
    }

    fn take_ticket(&self, hash: &[u8; 32], account: &str, now: i64) -> Result<bool> {
        let hash = hash.as_slice();
        let row = self.run("take a change ticket", async |c| {
            c.client.query_opt(c.st(TAKE_TICKET), &[&hash]).await
        })?;
        Ok(match row {
            Some(r) => r.get::<_, String>(0) == account && r.get::<_, i64>(1) >= now,
            None => false,
        })
    }

    fn head(&self, account: &str) -> Result<Option<Head>> {
        let row = self.run("read a head", async |c| {
            c.client.query_opt(c.st(HEAD), &[&account]).await
        })?;
        Ok(row.map(|r| Head {
            seq: r.get::<_, i64>(0) as u64,
            mac: r.get(1),
        }))
    }

    fn set_head(&self, account: &str, head: &Head) -> Result<()> {
        let seq = head.seq as i64;
        let row = self.run("move a head", async |c| {
            c.client
                .query_one(c.st(SET_HEAD), &[&account, &seq, &head.mac])
                .await
        })?;
        let moved: i64 = row.get(0);
        let before: Option<i64> = row.get(1);
        if moved == 1 {
            Ok(())
        } else {
            Err(VaultError::HeadBehind {
                current: before.unwrap_or(0) as u64,
            })
        }
    }

    fn audit(&self, account: &str, event: &str, detail: &str) -> Result<()> {
        self.run("append to the audit log", async |c| {
            c.client
                .execute(c.st(AUDIT), &[&now(), &account, &event, &detail])
                .await?;
            Ok(())
        })
    }

    fn ping(&self) -> Result<()> {
        self.run("answer a ping", async |c| {
            c.client.batch_execute("SELECT 1").await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_never_carry_the_password() {
        let c: tokio_postgres::Config = "postgres://vault:s3cret@db.example:6543/arca"
            .parse()
            .unwrap();
        assert_eq!(describe(&c), "postgres://vault@db.example:6543/arca");
        let c: tokio_postgres::Config = "postgresql://root@%2Fvar%2Frun%2Fpostgresql/test"
            .parse()
            .unwrap();
        assert_eq!(
            describe(&c),
            "postgres://root@[/var/run/postgresql]:5432/test"
        );
        let c: tokio_postgres::Config = "host=a,b port=6000 user=u dbname=d".parse().unwrap();
        assert_eq!(describe(&c), "postgres://u@a:6000,b:6000/d");
        assert!(is_postgres_url("PostgreSQL://x@y/z"));
        assert!(!is_postgres_url("/var/lib/arca/vault.db"));
    }

    #[test]
    fn every_statement_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for s in STATEMENTS {
            assert!(seen.insert(*s), "listed twice: {s}");
        }
    }

    #[test]
    fn a_url_without_a_user_is_refused() {
        let e = PgStore::open("postgres://127.0.0.1:1/x", PgOptions::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("user"), "{e}");
    }
}
