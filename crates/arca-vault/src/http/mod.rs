//! The vault's HTTP API (`/v1`, JSON, binary fields in unpadded base64url), served by the
//! `arca-vault` binary. One file per idea:
//!
//! - [`routes`]: the routes, the guard every account route passes, the request log;
//! - [`auth`]: bearer tokens (JWT, EdDSA or HS256) and the issuers that sign them;
//! - [`errors`]: refusals as HTTP statuses with an [`ErrorBody`](crate::wire::ErrorBody);
//! - [`ratelimit`]: request limits per account and per client address;
//! - [`openapi`]: the OpenAPI 3 document the server serves at `/v1/openapi.json`;
//! - [`config`]: the TOML config file;
//! - [`tls`]: rustls, and the rule that plain HTTP is for loopback only.

pub mod auth;
pub mod config;
pub mod errors;
pub mod openapi;
pub mod ratelimit;
pub mod routes;
pub mod tls;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use self::auth::Issuers;
use self::config::Config;
use self::errors::ApiError;
use self::ratelimit::RateLimiter;
use crate::postgres::{PgStore, is_postgres_url};
use crate::sqlite::SqliteStore;
use crate::store::RecordStore;
use crate::{Vault, VaultError};

pub use routes::router;

/// The largest request body accepted (the largest real message is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub vault: Arc<Vault>,
    /// Whether `/metrics` is served.
    pub metrics: bool,
    pub issuers: Arc<Issuers>,
    pub per_account: Option<Arc<RateLimiter>>,
    pub per_address: Option<Arc<RateLimiter>>,
}

impl AppState {
    pub fn new(
        vault: Vault,
        issuers: Issuers,
        per_account: Option<RateLimiter>,
        per_address: Option<RateLimiter>,
    ) -> Self {
        AppState {
            vault: Arc::new(vault),
            metrics: true,
            issuers: Arc::new(issuers),
            per_account: per_account.map(Arc::new),
            per_address: per_address.map(Arc::new),
        }
    }

    /// Runs a vault call (synchronous database work) on the blocking pool.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Vault) -> Result<T, VaultError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let vault = self.vault.clone();
        match tokio::task::spawn_blocking(move || f(&vault)).await {
            Ok(r) => r.map_err(ApiError::from),
            Err(e) => Err(ApiError::from(VaultError::Store(format!(
                "a vault task failed: {e}"
            )))),
        }
    }
}

/// Opens the record store named by `--database`: a `postgres://` (or `postgresql://`) URL, or
/// the path of a SQLite file (optionally written `sqlite:PATH`). Returns the store and a
/// description of it for the log (a URL without its password).
pub fn open_store(
    database: &str,
    config: &Config,
) -> Result<(Arc<dyn RecordStore>, String), String> {
    if is_postgres_url(database) {
        let store = PgStore::open(database, config.pg_options()?).map_err(|e| match e {
            VaultError::Store(m) => m,
            other => other.to_string(),
        })?;
        let described = store.description().to_string();
        return Ok((Arc::new(store), described));
    }
    if database.contains("://") {
        return Err(format!(
            "--database: give a postgres:// URL or the path of a SQLite file (got a URL of \
             another scheme: {})",
            database.split("://").next().unwrap_or("")
        ));
    }
    let path = database.strip_prefix("sqlite:").unwrap_or(database);
    SqliteStore::open(std::path::Path::new(path))
        .map(|s| (Arc::new(s) as Arc<dyn RecordStore>, path.to_string()))
        .map_err(|e| format!("cannot open the database {path}: {e}"))
}

/// A server ready to run: the listener is bound, so its address is known.
pub struct Server {
    database: String,
    listener: std::net::TcpListener,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
}

impl Server {
    /// Checks the config, opens the database and the vault, and binds `listen`.
    pub fn bind(listen: &str, database: &str, config: &Config) -> Result<Server, String> {
        let addr = listen
            .to_socket_addrs()
            .map_err(|e| format!("--listen {listen:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("--listen {listen:?} names no address"))?;
        let tls = match &config.tls {
            Some(t) => Some(tls::server_config(
                &config.resolve(&t.cert),
                &config.resolve(&t.key),
            )?),
            None => {
                tls::check_plain_listen(&addr)?;
                None
            }
        };
        let policy = config.policy()?;
        let issuers = config.issuers()?;
        let master = config.master_key()?;
        let (store, described) = open_store(database, config)?;
        let vault = Vault::new(store, &master, policy).map_err(|e| match e {
            VaultError::Store(m) => m,
            other => other.to_string(),
        })?;
        if config.insecure_ksf() {
            tracing::warn!(
                floor = ?vault.policy().ksf_floor,
                "the Argon2id floor is lowered for tests (insecure_test_ksf): never use this in production"
            );
        }
        let rl = &config.rate_limit;
        let mut state = AppState::new(
            vault,
            issuers,
            RateLimiter::new(rl.per_account_per_minute, rl.per_account_burst),
            RateLimiter::new(rl.per_address_per_minute, rl.per_address_burst),
        );
        state.metrics = config.metrics.enabled;
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        Ok(Server {
            database: described,
            listener,
            addr,
            tls,
            app: router(state),
        })
    }

    /// The database, as safe to log (a PostgreSQL URL without its password).
    pub fn database(&self) -> &str {
        &self.database
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Serves until SIGINT or SIGTERM, then finishes the requests in flight.
    pub async fn run(self) -> std::io::Result<()> {
        let make = self.app.into_make_service_with_connect_info::<SocketAddr>();
        let handle = axum_server::Handle::new();
        let h = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            h.graceful_shutdown(Some(SHUTDOWN_GRACE));
        });
        match self.tls {
            None => {
                let mut server = axum_server::from_tcp(self.listener)?;
                limit_slow_clients(server.http_builder());
                server
                    .handle(handle)
                    .first_request_timeout(HEADER_TIMEOUT)
                    .serve(make)
                    .await
            }
            Some(cfg) => {
                let mut server = axum_server::from_tcp_rustls(
                    self.listener,
                    axum_server::tls_rustls::RustlsConfig::from_config(cfg),
                )?;
                limit_slow_clients(server.http_builder());
                server
                    .handle(handle)
                    .first_request_timeout(HEADER_TIMEOUT)
                    .serve(make)
                    .await
            }
        }
    }
}

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long requests in flight may take to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A connection that dribbles its headers is closed, so slow clients cannot hold sockets.
fn limit_slow_clients(b: &mut hyper_util::server::conn::auto::Builder<TokioExecutor>) {
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
