//! The messages of the vault API (`/v1`), as JSON with binary fields in unpadded base64url.
//! `docs/PROTOCOL.md` describes each message and the state transitions.

use serde::{Deserialize, Serialize};

use crate::suite::KsfParams;

/// Binary fields as unpadded base64url strings.
pub mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn encode(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
        URL_SAFE_NO_PAD.decode(s.trim_end_matches('='))
    }

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        decode(&s).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;
        pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(b) => s.serialize_some(&encode(b)),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(s) => decode(&s).map(Some).map_err(serde::de::Error::custom),
                None => Ok(None),
            }
        }
    }
}

/// `POST /v1/accounts/{account}/registration/start`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationStartRequest {
    /// OPAQUE `RegistrationRequest`.
    #[serde(with = "b64")]
    pub request: Vec<u8>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegistrationStartResponse {
    /// OPAQUE `RegistrationResponse`.
    #[serde(with = "b64")]
    pub response: Vec<u8>,
}

/// How a password change proves the right to replace the record.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ChangeProof {
    /// The `change_ticket` from a login finish made with the current password.
    Ticket(#[serde(with = "b64")] Vec<u8>),
    /// The key proof derived from K (the 64-digit key).
    KeyProof(#[serde(with = "b64")] Vec<u8>),
}

/// `POST /v1/accounts/{account}/registration/finish`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationFinishRequest {
    /// OPAQUE `RegistrationUpload`.
    #[serde(with = "b64")]
    pub upload: Vec<u8>,
    /// K sealed under a key derived from the OPAQUE export key.
    #[serde(with = "b64")]
    pub envelope: Vec<u8>,
    /// Argon2id parameters the device used.
    pub ksf: KsfParams,
    /// Wrong guesses allowed before the record is destroyed (default 10).
    #[serde(default)]
    pub guess_limit: Option<u32>,
    /// BLAKE3 of the key proof derived from K, so the 64-digit key can later change the password.
    #[serde(default, with = "b64::option")]
    pub key_proof_hash: Option<Vec<u8>>,
    /// Present to replace an existing record (password change).
    #[serde(default)]
    pub change: Option<ChangeProof>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegistrationFinishResponse {
    pub guess_limit: u32,
    pub guesses_left: u32,
}

/// `POST /v1/accounts/{account}/login/start`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginStartRequest {
    /// OPAQUE `CredentialRequest` (KE1).
    #[serde(with = "b64")]
    pub request: Vec<u8>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginStartResponse {
    /// Names this login for its finish; single use, expires.
    #[serde(with = "b64")]
    pub login_id: Vec<u8>,
    /// OPAQUE `CredentialResponse` (KE2).
    #[serde(with = "b64")]
    pub response: Vec<u8>,
    /// Guesses left after charging this one.
    pub guesses_left: u32,
    pub ksf: KsfParams,
}

/// `POST /v1/accounts/{account}/login/finish`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginFinishRequest {
    #[serde(with = "b64")]
    pub login_id: Vec<u8>,
    /// OPAQUE `CredentialFinalization` (KE3).
    #[serde(with = "b64")]
    pub finalization: Vec<u8>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginFinishResponse {
    /// The envelope, sealed under a key derived from the OPAQUE session key.
    #[serde(with = "b64")]
    pub sealed_envelope: Vec<u8>,
    /// Single-use, short-lived permission to replace the record (password change).
    #[serde(with = "b64")]
    pub change_ticket: Vec<u8>,
    pub guesses_left: u32,
}

/// `GET` / `PUT /v1/accounts/{account}/head`: the newest snapshot's sequence number and a MAC
/// over it made with a K-derived key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub seq: u64,
    #[serde(with = "b64")]
    pub mac: Vec<u8>,
}

/// `GET /v1/accounts/{account}`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccountStatus {
    pub registered: bool,
    pub gone: bool,
    pub guesses_left: Option<u32>,
    pub guess_limit: Option<u32>,
}

/// Every error answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code: `wrong_password`, `gone`, `not_registered`, `already_registered`,
    /// `login_expired`, `forbidden`, `unauthorized`, `bad_request`, `head_behind`,
    /// `rate_limited`, `unavailable`, `not_found`, `method_not_allowed`,
    /// `too_large`.
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guesses_left: Option<u32>,
    /// With `head_behind`: the sequence number the register is at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_seq: Option<u64>,
}

/// `DELETE /v1/accounts/{account}`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeleteResponse {
    /// Whether a record existed (and is now gone).
    pub deleted: bool,
}
