//! The vault API over HTTP(S): a blocking client for an `arca-vault` server.
//!
//! Refusals come back as the [`VaultError`] the server's `ErrorBody` names (a wrong password
//! with its guesses left, `Gone`, ...); failures to reach the server, and answers that are not
//! the API, as [`VaultError::Unavailable`].

use std::sync::Arc;
use std::time::Duration;

use arca_vault::VaultError;
use arca_vault::wire::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::transport::Transport;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A vault reached over HTTP(S), acting for one account with its bearer token.
pub struct Http {
    agent: ureq::Agent,
    base: String,
    token: String,
    account: String,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Http")
            .field("base", &self.base)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// The account a token speaks for: its `sub` claim, read without verifying the signature (the
/// vault verifies; the device only needs to know which account to name).
pub fn token_account(token: &str) -> Result<String, VaultError> {
    let bad =
        || VaultError::Unauthorized("the account token is not a JWT with a `sub` claim".into());
    let mut parts = token.trim().split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let json = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad())?;
    let claims: serde_json::Value = serde_json::from_slice(&json).map_err(|_| bad())?;
    claims
        .get("sub")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(bad)
}

/// `http://` only to a loopback host: elsewhere the token would cross the network in clear.
fn check_url(base: &str) -> Result<(), VaultError> {
    let bad = |m: String| VaultError::BadRequest(m);
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| bad(format!("the vault URL {base:?} must start with https://")))?;
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.rsplit_once('@') {
        Some((_, h)) => h,
        None => authority,
    };
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    if host.is_empty() {
        return Err(bad(format!("the vault URL {base:?} names no host")));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" => {
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(bad(format!(
                    "refusing to send the account token to {host} over plain HTTP; use https://"
                )))
            }
        }
        other => Err(bad(format!(
            "the vault URL scheme {other:?} is not http(s)"
        ))),
    }
}

impl Http {
    /// A client for the vault at `base_url` (`https://host[:port]`, or `http://` to a loopback
    /// address), acting for `account` with `token`.
    pub fn new(base_url: &str, token: &str, account: &str) -> Result<Self, VaultError> {
        let base = base_url.trim().trim_end_matches('/').to_string();
        check_url(&base)?;
        arca_vault::service::check_account(account)?;
        Ok(Http {
            agent: Self::agent(None),
            base,
            token: token.trim().to_string(),
            account: account.to_string(),
        })
    }

    /// Like [`Http::new`], with the account read from the token's `sub` claim.
    pub fn from_token(base_url: &str, token: &str) -> Result<Self, VaultError> {
        let account = token_account(token)?;
        Self::new(base_url, token, &account)
    }

    /// Also trusts the CA certificates in `pem` (for a vault with a private or self-signed
    /// certificate), besides the usual web roots.
    pub fn with_root_certificates(mut self, pem: &[u8]) -> Result<Self, VaultError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| VaultError::BadRequest(format!("the CA certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(VaultError::BadRequest(
                "the CA certificate file holds no certificate".into(),
            ));
        }
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for c in certs {
            roots.add(c).map_err(|e| {
                VaultError::BadRequest(format!("the CA certificate is not usable: {e}"))
            })?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| VaultError::BadRequest(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        self.agent = Self::agent(Some(Arc::new(config)));
        Ok(self)
    }

    fn agent(tls: Option<Arc<rustls::ClientConfig>>) -> ureq::Agent {
        let mut b = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirects(0)
            .user_agent(concat!("arca/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = tls {
            b = b.tls_config(tls);
        }
        b.build()
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v1/accounts/{}{tail}", self.base, self.account)
    }

    /// Sends one request; `Ok(None)` for an empty success (204).
    fn send(
        &self,
        method: &str,
        tail: &str,
        body: Option<String>,
    ) -> Result<Option<String>, VaultError> {
        let req = self
            .agent
            .request(method, &self.url(tail))
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Accept", "application/json");
        let result = match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(&b),
            None => req.call(),
        };
        match result {
            Ok(resp) => {
                if resp.status() == 204 {
                    return Ok(None);
                }
                resp.into_string().map(Some).map_err(|e| {
                    VaultError::Unavailable(format!("reading the vault's answer failed: {e}"))
                })
            }
            Err(ureq::Error::Status(status, resp)) => {
                let retry_after = resp
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let text = resp.into_string().unwrap_or_default();
                Err(error_from(status, retry_after, &text))
            }
            Err(ureq::Error::Transport(t)) => Err(VaultError::Unavailable(format!(
                "cannot reach the vault at {}: {t}",
                self.base
            ))),
        }
    }

    fn json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: &str,
        tail: &str,
        body: Option<&Req>,
    ) -> Result<Option<Resp>, VaultError> {
        let body = body.map(|b| serde_json::to_string(b).expect("wire types serialize"));
        match self.send(method, tail, body)? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                VaultError::Unavailable(format!(
                    "the vault's answer is not what the API says ({e}); is {} an arca vault?",
                    self.base
                ))
            }),
        }
    }

    fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: &str,
        tail: &str,
        body: Option<&Req>,
    ) -> Result<Resp, VaultError> {
        self.json(method, tail, body)?.ok_or_else(|| {
            VaultError::Unavailable("the vault answered with no body where one was due".into())
        })
    }
}

/// The [`VaultError`] an error answer stands for. Public only for the fuzz targets.
#[doc(hidden)]
pub fn error_from(status: u16, retry_after: Option<u64>, text: &str) -> VaultError {
    let Ok(body) = serde_json::from_str::<ErrorBody>(text) else {
        return VaultError::Unavailable(format!(
            "the vault answered HTTP {status} without an error body (a proxy in between?)"
        ));
    };
    let m = body.message;
    match body.error.as_str() {
        "wrong_password" => VaultError::WrongPassword {
            guesses_left: body.guesses_left.unwrap_or(0),
        },
        "gone" => VaultError::Gone,
        "not_registered" => VaultError::NotRegistered,
        "already_registered" => VaultError::AlreadyRegistered,
        "login_expired" => VaultError::LoginExpired,
        "forbidden" => VaultError::Forbidden(strip(&m, "not allowed: ")),
        "unauthorized" => {
            VaultError::Unauthorized(strip(&m, "the vault did not accept the account token: "))
        }
        "bad_request" | "too_large" | "not_found" | "method_not_allowed" => {
            VaultError::BadRequest(strip(&m, "bad request: "))
        }
        "head_behind" => VaultError::HeadBehind {
            current: body.head_seq.unwrap_or(0),
        },
        "rate_limited" => VaultError::RateLimited {
            retry_after: retry_after.unwrap_or(1),
        },
        _ => VaultError::Unavailable(format!("HTTP {status}: {m}")),
    }
}

/// The server sends `VaultError`'s display text; keep only the detail so it is not said twice.
fn strip(message: &str, prefix: &str) -> String {
    message.strip_prefix(prefix).unwrap_or(message).to_string()
}

impl Transport for Http {
    fn registration_start(
        &self,
        req: &RegistrationStartRequest,
    ) -> Result<RegistrationStartResponse, VaultError> {
        self.call("POST", "/registration/start", Some(req))
    }
    fn registration_finish(
        &self,
        req: &RegistrationFinishRequest,
    ) -> Result<RegistrationFinishResponse, VaultError> {
        self.call("POST", "/registration/finish", Some(req))
    }
    fn login_start(&self, req: &LoginStartRequest) -> Result<LoginStartResponse, VaultError> {
        self.call("POST", "/login/start", Some(req))
    }
    fn login_finish(&self, req: &LoginFinishRequest) -> Result<LoginFinishResponse, VaultError> {
        self.call("POST", "/login/finish", Some(req))
    }
    fn status(&self) -> Result<AccountStatus, VaultError> {
        self.call::<(), _>("GET", "", None)
    }
    fn head(&self) -> Result<Option<Head>, VaultError> {
        self.json::<(), _>("GET", "/head", None)
    }
    fn set_head(&self, head: &Head) -> Result<(), VaultError> {
        self.send(
            "PUT",
            "/head",
            Some(serde_json::to_string(head).expect("wire types serialize")),
        )
        .map(|_| ())
    }
    fn delete(&self) -> Result<bool, VaultError> {
        self.call::<(), DeleteResponse>("DELETE", "", None)
            .map(|r| r.deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_subject() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"alice","iss":"x","exp":1}"#);
        assert_eq!(
            token_account(&format!("e30.{payload}.sig")).unwrap(),
            "alice"
        );
        assert!(token_account("nope").is_err());
        let no_sub = URL_SAFE_NO_PAD.encode(br#"{"iss":"x"}"#);
        assert!(token_account(&format!("e30.{no_sub}.sig")).is_err());
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1/",
            "http://[::1]:9",
            "https://vault.example.com",
            "https://10.0.0.1:8443",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://vault.example.com",
            "http://10.0.0.1:80",
            "ftp://x",
            "vault.example.com",
            "https://",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_bodies_map_back() {
        let e = error_from(
            403,
            None,
            r#"{"error":"wrong_password","message":"x","guesses_left":4}"#,
        );
        assert!(matches!(e, VaultError::WrongPassword { guesses_left: 4 }));
        assert!(matches!(
            error_from(410, None, r#"{"error":"gone","message":"x"}"#),
            VaultError::Gone
        ));
        assert!(matches!(
            error_from(429, Some(7), r#"{"error":"rate_limited","message":"x"}"#),
            VaultError::RateLimited { retry_after: 7 }
        ));
        assert!(matches!(
            error_from(
                409,
                None,
                r#"{"error":"head_behind","message":"x","head_seq":9}"#
            ),
            VaultError::HeadBehind { current: 9 }
        ));
        assert!(matches!(
            error_from(502, None, "<html>bad gateway</html>"),
            VaultError::Unavailable(_)
        ));
    }
}
