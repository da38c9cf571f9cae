//! The arca key vault: password-protected recovery of the backup key K over OPAQUE (RFC 9807),
//! with a guess limit and permanent lockout.
//!
//! - [`suite`]: the OPAQUE cipher suite (ristretto255, 3DH, Argon2id on the device).
//! - [`wire`]: the JSON messages of the `/v1` API, shared with the device side.
//! - [`store`]: the record-store trait; [`sqlite`] its SQLite implementation, [`postgres`] its
//!   PostgreSQL one (any number of vault nodes over one database).
//! - [`service`]: the vault's rules (guess charging, single-use logins, destruction, head
//!   register), independent of transport; the HTTP server and the embedded vault both call it.
//! - [`http`]: the HTTP API served by the `arca-vault` binary (axum, bearer tokens, rate
//!   limits, OpenAPI, TLS, health, readiness and Prometheus metrics).
//! - [`metrics`]: the Prometheus metrics.
//!
//! The vault never sees the password or K: it stores the OPAQUE password file, and an envelope
//! holding K sealed under a key only the password's OPAQUE export key can derive.

pub mod error;
pub mod http;
pub mod metrics;
pub mod postgres;
pub mod service;
pub mod setup;
pub mod sqlite;
pub mod store;
pub mod suite;
pub mod wire;

pub use error::VaultError;
pub use service::{Policy, Vault};
