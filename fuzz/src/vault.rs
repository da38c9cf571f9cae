//! The vault and client harnesses.
//!
//! [`Harness`] is built once per process: a vault whose OPAQUE setup and whose account `alice`
//! (password `pw`, a tiny Argon2id so a target runs fast) were made by the real client and
//! server code. Every [`Harness::app`] call then makes a *fresh* in-memory vault holding that
//! same setup and record, so one input's effects (charged guesses, replaced records) never leak
//! into the next and a crash reproduces from its input alone. Requests go through the real axum
//! router (`arca_vault::http::router`) with a valid bearer token, as a server would see them.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arca_client::{Embedded, Transport};
use arca_vault::http::AppState;
use arca_vault::http::auth::{Issuer, Issuers};
use arca_vault::setup::MasterKey;
use arca_vault::sqlite::SqliteStore;
use arca_vault::store::{Record, RecordStore};
use arca_vault::suite::{KsfParams, Suite};
use arca_vault::wire::*;
use arca_vault::{Policy, Vault, VaultError};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, Identifiers, RegistrationResponse,
};
use rand_core::OsRng;
use tower::ServiceExt;

/// The Argon2id parameters of the harness's account: the smallest Argon2id allows.
pub const TINY_KSF: KsfParams = KsfParams {
    m_kib: 8,
    t: 1,
    p: 1,
};
pub const PASSWORD: &[u8] = b"pw";
const MASTER_HEX: &str = "abababababababababababababababababababababababababababababababab";
const JWT_SECRET: [u8; 32] = [7; 32];

fn policy() -> Policy {
    Policy {
        ksf_floor: TINY_KSF,
        ..Policy::default()
    }
}

fn issuers() -> Issuers {
    Issuers(vec![Issuer::hs256("fuzz", &JWT_SECRET, None).unwrap()])
}

pub struct Harness {
    rt: tokio::runtime::Runtime,
    sealed_setup: Vec<u8>,
    record: Record,
    tokens: [String; 2],
}

/// The two accounts a request can name: `alice` is registered, `bob` is not.
pub const ACCOUNTS: [&str; 2] = ["alice", "bob"];

impl Harness {
    pub fn get() -> &'static Harness {
        static H: OnceLock<Harness> = OnceLock::new();
        H.get_or_init(|| {
            let store = Arc::new(SqliteStore::in_memory().unwrap());
            let master = MasterKey::from_hex(MASTER_HEX).unwrap();
            let vault = Vault::new(store.clone(), &master, policy()).unwrap();
            let t = Embedded {
                vault,
                account: "alice".into(),
            };
            arca_client::register(
                &t,
                "alice",
                PASSWORD,
                &crate::test_key(),
                TINY_KSF,
                Some(20),
                None,
            )
            .unwrap();
            let sealed_setup = store.server_setup().unwrap().unwrap();
            let record = store.record("alice").unwrap().unwrap();
            let iss = issuers();
            let day = Duration::from_secs(86_400);
            let tokens = ACCOUNTS.map(|a| iss.issue(None, a, day).unwrap());
            Harness {
                rt: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap(),
                sealed_setup,
                record,
                tokens,
            }
        })
    }

    /// A fresh vault holding the harness's setup and `alice`.
    pub fn vault(&self) -> Vault {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        store.init_server_setup(&self.sealed_setup).unwrap();
        store.insert("alice", &self.record).unwrap();
        Vault::new(store, &MasterKey::from_hex(MASTER_HEX).unwrap(), policy()).unwrap()
    }

    /// The real router over a fresh vault.
    pub fn app(&self) -> axum::Router {
        arca_vault::http::router(AppState::new(self.vault(), issuers(), None, None))
    }

    /// Sends one request to `app` as account `ACCOUNTS[who]`; returns the status and body.
    /// A 500 answer fails the target: nothing an input says may break the server.
    pub fn send(
        &self,
        app: &axum::Router,
        who: usize,
        method: &str,
        tail: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let account = ACCOUNTS[who];
        let req = Request::builder()
            .method(method)
            .uri(format!("/v1/accounts/{account}{tail}"))
            .header("Authorization", format!("Bearer {}", self.tokens[who]))
            .header("Content-Type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, bytes) = self.rt.block_on(async {
            let res = app.clone().oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, bytes.to_vec())
        });
        assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{method} {tail}: {}",
            String::from_utf8_lossy(&bytes)
        );
        // Every answer with a body is JSON, and every refusal is an ErrorBody.
        if !bytes.is_empty() {
            serde_json::from_slice::<serde_json::Value>(&bytes).expect("the answer is JSON");
        }
        if !status.is_success() {
            serde_json::from_slice::<ErrorBody>(&bytes).expect("a refusal is an ErrorBody");
        }
        (status, bytes)
    }

    /// Runs a real OPAQUE login start for `alice` on `app`; returns the login id and a real KE3.
    pub fn login(&self, app: &axum::Router) -> (Vec<u8>, Vec<u8>) {
        let start = ClientLogin::<Suite>::start(&mut OsRng, PASSWORD).unwrap();
        let body = serde_json::to_vec(&LoginStartRequest {
            request: start.message.serialize().to_vec(),
        })
        .unwrap();
        let (status, bytes) = self.send(app, 0, "POST", "/login/start", body);
        assert!(status.is_success());
        let resp: LoginStartResponse = serde_json::from_slice(&bytes).unwrap();
        let argon = resp.ksf.argon2().unwrap();
        let response = CredentialResponse::<Suite>::deserialize(&resp.response).unwrap();
        let done = start
            .state
            .finish(
                &mut OsRng,
                PASSWORD,
                response,
                ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&argon)),
            )
            .unwrap();
        (resp.login_id, done.message.serialize().to_vec())
    }

    /// A real OPAQUE registration upload for `ACCOUNTS[who]`, made against `app`.
    pub fn upload(&self, app: &axum::Router, who: usize) -> Vec<u8> {
        let start = ClientRegistration::<Suite>::start(&mut OsRng, PASSWORD).unwrap();
        let body = serde_json::to_vec(&RegistrationStartRequest {
            request: start.message.serialize().to_vec(),
        })
        .unwrap();
        let (status, bytes) = self.send(app, who, "POST", "/registration/start", body);
        assert!(status.is_success());
        let resp: RegistrationStartResponse = serde_json::from_slice(&bytes).unwrap();
        let argon = TINY_KSF.argon2().unwrap();
        let finish = start
            .state
            .finish(
                &mut OsRng,
                PASSWORD,
                RegistrationResponse::<Suite>::deserialize(&resp.response).unwrap(),
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon)),
            )
            .unwrap();
        finish.message.serialize().to_vec()
    }
}

/// Replaces each `placeholder` in `body` with the unpadded base64url of `value`, so a seed can
/// carry a login id or an OPAQUE message that is only known at run time.
pub fn fill(body: &[u8], placeholder: &[u8], value: &[u8]) -> Vec<u8> {
    let b64 = arca_vault::wire::b64::encode(value);
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(placeholder) {
            out.extend_from_slice(b64.as_bytes());
            i += placeholder.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

/// Decodes a vault answer as the HTTP client does (`serde_json::from_str` on the body text).
pub fn client_decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let text = std::str::from_utf8(bytes).ok()?;
    serde_json::from_str(text).ok()
}

/// A transport that answers with scripted responses; a missing one answers `LoginExpired`.
/// Other calls go to `inner` when there is one (a real vault), else answer `Unavailable`.
#[derive(Default)]
pub struct Scripted {
    pub inner: Option<Embedded>,
    pub registration_start: Option<RegistrationStartResponse>,
    pub login_start: Option<LoginStartResponse>,
    pub login_finish: Option<LoginFinishResponse>,
}

fn missing<T>() -> Result<T, VaultError> {
    Err(VaultError::LoginExpired)
}

impl Transport for Scripted {
    fn registration_start(
        &self,
        req: &RegistrationStartRequest,
    ) -> Result<RegistrationStartResponse, VaultError> {
        match (&self.registration_start, &self.inner) {
            (Some(r), _) => Ok(r.clone()),
            (None, Some(v)) => v.registration_start(req),
            _ => missing(),
        }
    }
    fn registration_finish(
        &self,
        _req: &RegistrationFinishRequest,
    ) -> Result<RegistrationFinishResponse, VaultError> {
        Ok(RegistrationFinishResponse {
            guess_limit: 10,
            guesses_left: 10,
        })
    }
    fn login_start(&self, req: &LoginStartRequest) -> Result<LoginStartResponse, VaultError> {
        match (&self.login_start, &self.inner) {
            (Some(r), _) => Ok(r.clone()),
            (None, Some(v)) => v.login_start(req),
            _ => missing(),
        }
    }
    fn login_finish(&self, req: &LoginFinishRequest) -> Result<LoginFinishResponse, VaultError> {
        // The real vault sees the finish (so its pending login is spent), then the script answers.
        let real = self.inner.as_ref().map(|v| v.login_finish(req));
        match (&self.login_finish, real) {
            (Some(r), _) => Ok(r.clone()),
            (None, Some(r)) => r,
            _ => missing(),
        }
    }
    fn status(&self) -> Result<AccountStatus, VaultError> {
        missing()
    }
    fn head(&self) -> Result<Option<Head>, VaultError> {
        missing()
    }
    fn set_head(&self, _head: &Head) -> Result<(), VaultError> {
        missing()
    }
    fn delete(&self) -> Result<bool, VaultError> {
        missing()
    }
}
