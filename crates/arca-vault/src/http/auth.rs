//! Account authentication: `Authorization: Bearer <JWT>`, EdDSA (Ed25519) or HS256, verified
//! against the configured issuers. The token's `iss` must name an issuer whose key verifies it,
//! `exp` is required, and `sub` is the account the request may act for. Only the account
//! holder can therefore spend that account's guesses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, header};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::VaultError;

/// Seconds of clock difference tolerated on `exp`.
const LEEWAY: u64 = 30;

/// The claims arca reads (others are ignored).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// One configured token issuer and its key.
pub struct Issuer {
    pub name: String,
    alg: Algorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    audience: Option<String>,
}

impl Issuer {
    /// An HS256 issuer; the secret must be at least 32 bytes.
    pub fn hs256(name: &str, secret: &[u8], audience: Option<String>) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err(format!(
                "the HS256 secret of issuer {name:?} is {} bytes; use at least 32 random bytes \
                 (for example `openssl rand -base64 48`)",
                secret.len()
            ));
        }
        Ok(Issuer {
            name: name.into(),
            alg: Algorithm::HS256,
            decoding: DecodingKey::from_secret(secret),
            encoding: Some(EncodingKey::from_secret(secret)),
            audience,
        })
    }

    /// An Ed25519 issuer from a public key PEM (`BEGIN PUBLIC KEY`), and optionally its private
    /// key PEM (PKCS#8, `BEGIN PRIVATE KEY`) for `arca-vault token issue`.
    pub fn ed25519(
        name: &str,
        public_pem: &[u8],
        private_pem: Option<&[u8]>,
        audience: Option<String>,
    ) -> Result<Self, String> {
        let decoding = DecodingKey::from_ed_pem(public_pem).map_err(|e| {
            format!("the Ed25519 public key of issuer {name:?} is not a PEM public key: {e}")
        })?;
        let encoding = match private_pem {
            None => None,
            Some(pem) => Some(EncodingKey::from_ed_pem(pem).map_err(|e| {
                format!("the Ed25519 private key of issuer {name:?} is not a PKCS#8 PEM key: {e}")
            })?),
        };
        Ok(Issuer {
            name: name.into(),
            alg: Algorithm::EdDSA,
            decoding,
            encoding,
            audience,
        })
    }

    pub fn can_sign(&self) -> bool {
        self.encoding.is_some()
    }
}

/// All configured issuers.
pub struct Issuers(pub Vec<Issuer>);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The token in an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Result<&str, VaultError> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        VaultError::Unauthorized("send the account token as `Authorization: Bearer <token>`".into())
    })?;
    let value = value
        .to_str()
        .map_err(|_| VaultError::Unauthorized("the Authorization header is not text".into()))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        VaultError::Unauthorized("the Authorization header is not `Bearer <token>`".into())
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(VaultError::Unauthorized(
            "the Authorization header is not `Bearer <token>`".into(),
        ));
    }
    Ok(token.trim())
}

impl Issuers {
    /// Verifies `token` and returns its subject, the account it speaks for.
    pub fn verify(&self, token: &str) -> Result<String, VaultError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            VaultError::Unauthorized("the token is not a JWT signed with EdDSA or HS256".into())
        })?;
        let mut expired = false;
        let mut known_alg = false;
        for issuer in self.0.iter().filter(|i| i.alg == header.alg) {
            known_alg = true;
            let mut v = Validation::new(issuer.alg);
            v.set_issuer(&[&issuer.name]);
            v.set_required_spec_claims(&["exp", "sub", "iss"]);
            v.leeway = LEEWAY;
            match &issuer.audience {
                Some(aud) => v.set_audience(&[aud]),
                None => v.validate_aud = false,
            }
            match jsonwebtoken::decode::<Claims>(token, &issuer.decoding, &v) {
                Ok(data) => return Ok(data.claims.sub),
                Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => expired = true,
                Err(_) => {}
            }
        }
        Err(VaultError::Unauthorized(if expired {
            "the token has expired".into()
        } else if known_alg {
            "the token does not verify against any configured issuer".into()
        } else {
            format!("no configured issuer signs with {:?}", header.alg)
        }))
    }

    /// Issues a token for `account`, signed by the issuer named `issuer` or else the first one
    /// that holds a signing key.
    pub fn issue(
        &self,
        issuer: Option<&str>,
        account: &str,
        ttl: Duration,
    ) -> Result<String, String> {
        crate::service::check_account(account).map_err(|e| e.to_string())?;
        let signer = self
            .0
            .iter()
            .filter(|i| issuer.is_none_or(|n| n == i.name))
            .find(|i| i.can_sign())
            .ok_or_else(|| match issuer {
                Some(n) => format!("no issuer named {n:?} with a signing key is configured"),
                None => "no configured issuer has a signing key (an HS256 secret or an \
                         ed25519_private_key)"
                    .to_string(),
            })?;
        let now = unix_now();
        let claims = Claims {
            sub: account.into(),
            iss: signer.name.clone(),
            exp: now + ttl.as_secs(),
            iat: Some(now),
        };
        let key = signer.encoding.as_ref().expect("checked can_sign");
        jsonwebtoken::encode(&Header::new(signer.alg), &claims, key).map_err(|e| e.to_string())
    }
}

/// A duration such as `30d`, `12h`, `15m`, `90s` or a number of seconds.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (num, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30d, 12h, 15m or 90s"))?;
    let mult = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h, d or w")),
    };
    if n == 0 {
        return Err("the lifetime must be more than zero".into());
    }
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuers() -> Issuers {
        Issuers(vec![
            Issuer::hs256("one", &[1u8; 32], None).unwrap(),
            Issuer::hs256("two", &[2u8; 32], None).unwrap(),
        ])
    }

    #[test]
    fn issue_and_verify() {
        let i = issuers();
        let t = i.issue(None, "alice", Duration::from_secs(60)).unwrap();
        assert_eq!(i.verify(&t).unwrap(), "alice");
        let t2 = i
            .issue(Some("two"), "bob", Duration::from_secs(60))
            .unwrap();
        assert_eq!(i.verify(&t2).unwrap(), "bob");
        // a token from an issuer that is not configured
        let other = Issuers(vec![Issuer::hs256("one", &[9u8; 32], None).unwrap()]);
        let t3 = other.issue(None, "alice", Duration::from_secs(60)).unwrap();
        assert!(matches!(i.verify(&t3), Err(VaultError::Unauthorized(_))));
        // the right key under another issuer name
        let renamed = Issuers(vec![Issuer::hs256("three", &[1u8; 32], None).unwrap()]);
        let t4 = renamed
            .issue(None, "alice", Duration::from_secs(60))
            .unwrap();
        assert!(i.verify(&t4).is_err());
        assert!(i.verify("not a token").is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let i = issuers();
        let claims = Claims {
            sub: "alice".into(),
            iss: "one".into(),
            exp: unix_now() - 3600,
            iat: None,
        };
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&[1u8; 32]),
        )
        .unwrap();
        match i.verify(&t) {
            Err(VaultError::Unauthorized(m)) => assert!(m.contains("expired"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(Issuer::hs256("x", b"short", None).is_err());
    }

    #[test]
    fn ttl() {
        assert_eq!(parse_ttl("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("").is_err());
    }
}
