//! The OpenAPI 3.1 document served at `/v1/openapi.json`, kept by hand beside the routes and the
//! wire types; tests check that it describes exactly the routes in [`ROUTES`](super::routes::ROUTES)
//! and every field of the wire types.

use std::sync::OnceLock;

use serde_json::{Value, json};

/// Unpadded base64url as the server decodes it: whole groups of four characters, then two or
/// three more whose unused low bits are zero (a length of 4n + 1 is never base64).
pub const B64_PATTERN: &str =
    "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$";

/// The length of `n` bytes in unpadded base64.
const fn b64_chars(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

fn b64(description: &str) -> Value {
    json!({
        "type": "string",
        "contentEncoding": "base64url",
        "pattern": B64_PATTERN,
        "description": format!("{description} (unpadded base64url)"),
    })
}

/// Binary of exactly `n` bytes.
fn b64_exact(description: &str, n: usize) -> Value {
    let mut v = b64(&format!("{description}, {n} bytes"));
    v["minLength"] = json!(b64_chars(n));
    v["maxLength"] = json!(b64_chars(n));
    v
}

/// Binary of `min..=max` bytes.
fn b64_range(description: &str, min: usize, max: usize) -> Value {
    let mut v = b64(&format!("{description}, {min} to {max} bytes"));
    v["minLength"] = json!(b64_chars(min));
    v["maxLength"] = json!(b64_chars(max));
    v
}

/// The sizes of the OPAQUE messages of the vault's suite (ristretto255, SHA-512), checked
/// against real messages by a test.
pub mod sizes {
    pub const REGISTRATION_REQUEST: usize = 32;
    pub const REGISTRATION_RESPONSE: usize = 64;
    pub const REGISTRATION_UPLOAD: usize = 192;
    pub const CREDENTIAL_REQUEST: usize = 96;
    pub const CREDENTIAL_RESPONSE: usize = 320;
    pub const CREDENTIAL_FINALIZATION: usize = 64;
    pub const LOGIN_ID: usize = 16;
    pub const CHANGE_TICKET: usize = 32;
    pub const KEY_PROOF: usize = 32;
    pub const HEAD_MAC: usize = 32;
    pub const ENVELOPE_MAX: usize = 1024;
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
    })
}

fn ok(schema: &str, description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn body(schema: &str) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

/// The refusals any account route can give, before the vault looks at the request.
fn common(mut responses: Value) -> Value {
    let extra = json!({
        "400": error("`bad_request`: malformed JSON, base64, account id or protocol message; nothing is charged"),
        "401": error("`unauthorized`: missing, malformed, expired or unknown bearer token; nothing is charged"),
        "403": error("`forbidden`: the token is for another account (or, where listed, `wrong_password`)"),
        "413": error("`too_large`: the body is over 64 KiB"),
        "429": error("`rate_limited`: too many requests for this account or from this address; see `Retry-After`"),
        "503": error("`unavailable`: the vault's storage failed; nothing was answered; see `Retry-After`"),
    });
    for (k, v) in extra.as_object().expect("object") {
        responses
            .as_object_mut()
            .expect("object")
            .entry(k.clone())
            .or_insert(v.clone());
    }
    responses
}

fn op(summary: &str, description: &str, request: Option<&str>, responses: Value) -> Value {
    let mut o = json!({
        "summary": summary,
        "description": description,
        "parameters": [{ "$ref": "#/components/parameters/account" }],
        "security": [{ "bearer": [] }],
        "responses": common(responses),
    });
    if let Some(r) = request {
        o["requestBody"] = body(r);
    }
    o
}

fn build() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "arca key vault",
            "version": "1",
            "description": "Password-protected recovery of an arca backup key over OPAQUE (RFC 9807) with a guess limit. \
                Binary fields are unpadded base64url. Every account route needs `Authorization: Bearer <JWT>` whose `sub` \
                is the account. See docs/PROTOCOL.md for the state transitions."
        },
        "paths": {
            "/v1/accounts/{account}/registration/start": {
                "post": op("Start registering a password (OPAQUE registration, step 1)",
                    "Stateless: returns the OPAQUE RegistrationResponse for the account's own OPRF key.",
                    Some("RegistrationStartRequest"),
                    json!({ "200": ok("RegistrationStartResponse", "the OPAQUE RegistrationResponse") }))
            },
            "/v1/accounts/{account}/registration/finish": {
                "post": op("Store the password file and key envelope (OPAQUE registration, step 2)",
                    "Without `change`, creates the record (409 `already_registered` if one exists). With `change`, \
                     replaces it in one step, proven by a change ticket or the key proof.",
                    Some("RegistrationFinishRequest"),
                    json!({
                        "200": ok("RegistrationFinishResponse", "the record is stored"),
                        "403": error("`forbidden`: the change ticket or key proof is not accepted"),
                        "404": error("`not_registered`: a change for an account with no record"),
                        "409": error("`already_registered`: the account already has a record"),
                    }))
            },
            "/v1/accounts/{account}/login/start": {
                "post": op("Start a login (OPAQUE KE1 → KE2); charges one guess",
                    "The guess is charged atomically before the answer exists. Unknown accounts get an answer made the \
                     same way. When no guess is left the record is destroyed and the answer is 410.",
                    Some("LoginStartRequest"),
                    json!({
                        "200": ok("LoginStartResponse", "KE2, the login id, and the guesses left after this one"),
                        "410": error("`gone`: the guesses are used up and the record was destroyed"),
                    }))
            },
            "/v1/accounts/{account}/login/finish": {
                "post": op("Finish a login (OPAQUE KE3); releases the sealed envelope",
                    "Single use. On success the guess count is reset and the envelope is released sealed under a key \
                     derived from the OPAQUE session key. A finish that does not verify (including an empty one, which \
                     a client sends when its own check of KE2 failed) is a failed guess.",
                    Some("LoginFinishRequest"),
                    json!({
                        "200": ok("LoginFinishResponse", "the sealed envelope and a change ticket"),
                        "403": error("`wrong_password` (with `guesses_left`), or `forbidden` for another account's token"),
                        "409": error("`login_expired`: unknown, used, or expired login id"),
                        "410": error("`gone`: that was the last guess; the record is destroyed"),
                    }))
            },
            "/v1/accounts/{account}": {
                "get": op("The account's status", "Whether a record exists or was destroyed, and the guesses left.",
                    None, json!({ "200": ok("AccountStatus", "the status") })),
                "delete": op("Delete the account's record and head register",
                    "At the account holder's request; leaves no tombstone.",
                    None, json!({ "200": ok("DeleteResponse", "whether a record existed") }))
            },
            "/v1/accounts/{account}/head": {
                "get": op("Read the backup head register", "The newest snapshot's sequence number and its MAC.",
                    None, json!({
                        "200": ok("Head", "the head"),
                        "204": { "description": "no head has been set" },
                    })),
                "put": op("Advance the backup head register", "Only moves forward (an equal sequence number is accepted).",
                    Some("Head"), json!({
                        "204": { "description": "stored" },
                        "409": error("`head_behind`: the register is ahead (its sequence number is in `head_seq`)"),
                    }))
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": { "200": { "description": "the OpenAPI document", "content": { "application/json": {} } } }
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": { "200": { "description": "the server is up", "content": { "application/json": {
                        "schema": { "type": "object", "properties": { "status": { "const": "ok" } } } } } } }
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: the database answers",
                    "security": [],
                    "responses": {
                        "200": { "description": "the database answers", "content": { "application/json": {
                            "schema": { "type": "object", "properties": { "status": { "const": "ready" } } } } } },
                        "503": error("the database does not answer (`unavailable`, with `Retry-After`)")
                    }
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text format); 404 when turned off in the config",
                    "security": [],
                    "responses": { "200": { "description": "the metrics", "content": { "text/plain": {} } } }
                }
            }
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "EdDSA (Ed25519) or HS256; `iss` names a configured issuer, `exp` is required, `sub` is the account."
                }
            },
            "parameters": {
                "account": {
                    "name": "account", "in": "path", "required": true,
                    "description": "The account id: 1-128 characters of A-Z a-z 0-9 . _ @ + -; must equal the token's `sub`.",
                    "schema": { "type": "string", "pattern": "^[A-Za-z0-9._@+-]{1,128}$" }
                }
            },
            "schemas": {
                "KsfParams": {
                    "type": "object", "required": ["m_kib", "t", "p"],
                    "description": "Argon2id parameters the device stretches the password with.",
                    "properties": {
                        "m_kib": { "type": "integer", "minimum": 8, "description": "memory in KiB" },
                        "t": { "type": "integer", "minimum": 1, "description": "passes" },
                        "p": { "type": "integer", "minimum": 1, "description": "lanes" }
                    }
                },
                "RegistrationStartRequest": {
                    "type": "object", "required": ["request"], "additionalProperties": false,
                    "properties": { "request": b64_exact("OPAQUE RegistrationRequest", sizes::REGISTRATION_REQUEST) }
                },
                "RegistrationStartResponse": {
                    "type": "object", "required": ["response"],
                    "properties": { "response": b64_exact("OPAQUE RegistrationResponse", sizes::REGISTRATION_RESPONSE) }
                },
                "ChangeProof": {
                    "description": "How a password change proves the right to replace the record.",
                    "oneOf": [
                        { "type": "object", "required": ["ticket"], "additionalProperties": false,
                          "properties": { "ticket": b64_exact("the change_ticket of a login finish", sizes::CHANGE_TICKET) } },
                        { "type": "object", "required": ["key_proof"], "additionalProperties": false,
                          "properties": { "key_proof": b64_exact("the key proof derived from K", sizes::KEY_PROOF) } }
                    ]
                },
                "RegistrationFinishRequest": {
                    "type": "object", "required": ["upload", "envelope", "ksf"], "additionalProperties": false,
                    "properties": {
                        "upload": b64_exact("OPAQUE RegistrationUpload", sizes::REGISTRATION_UPLOAD),
                        "envelope": b64_range("K sealed under a key derived from the OPAQUE export key", 1, sizes::ENVELOPE_MAX),
                        "ksf": { "$ref": "#/components/schemas/KsfParams" },
                        "guess_limit": { "type": ["integer", "null"], "description": "wrong guesses allowed (default 10, within the vault's bounds)" },
                        "key_proof_hash": { "oneOf": [b64_exact("BLAKE3 of the key proof", 32), { "type": "null" }] },
                        "change": { "oneOf": [{ "$ref": "#/components/schemas/ChangeProof" }, { "type": "null" }] }
                    }
                },
                "RegistrationFinishResponse": {
                    "type": "object", "required": ["guess_limit", "guesses_left"],
                    "properties": { "guess_limit": { "type": "integer" }, "guesses_left": { "type": "integer" } }
                },
                "LoginStartRequest": {
                    "type": "object", "required": ["request"], "additionalProperties": false,
                    "properties": { "request": b64_exact("OPAQUE CredentialRequest (KE1)", sizes::CREDENTIAL_REQUEST) }
                },
                "LoginStartResponse": {
                    "type": "object", "required": ["login_id", "response", "guesses_left", "ksf"],
                    "properties": {
                        "login_id": b64_exact("names this login for its finish", sizes::LOGIN_ID),
                        "response": b64_exact("OPAQUE CredentialResponse (KE2)", sizes::CREDENTIAL_RESPONSE),
                        "guesses_left": { "type": "integer", "description": "after charging this one" },
                        "ksf": { "$ref": "#/components/schemas/KsfParams" }
                    }
                },
                "LoginFinishRequest": {
                    "type": "object", "required": ["login_id", "finalization"], "additionalProperties": false,
                    "properties": {
                        "login_id": b64_exact("from the login start", sizes::LOGIN_ID),
                        "finalization": { "oneOf": [
                            b64_exact("OPAQUE CredentialFinalization (KE3)", sizes::CREDENTIAL_FINALIZATION),
                            { "const": "", "description": "empty, to report a login the device could not finish (a failed guess)" }
                        ] }
                    }
                },
                "LoginFinishResponse": {
                    "type": "object", "required": ["sealed_envelope", "change_ticket", "guesses_left"],
                    "properties": {
                        "sealed_envelope": b64("the envelope sealed under a key derived from the session key, AAD = login_id"),
                        "change_ticket": b64_exact("single-use permission to replace the record", sizes::CHANGE_TICKET),
                        "guesses_left": { "type": "integer" }
                    }
                },
                "Head": {
                    "type": "object", "required": ["seq", "mac"], "additionalProperties": false,
                    "properties": {
                        "seq": { "type": "integer", "minimum": 0, "maximum": 9223372036854775807_i64, "description": "the newest snapshot's sequence number" },
                        "mac": b64_exact("MAC over the sequence number with a K-derived key", sizes::HEAD_MAC)
                    }
                },
                "AccountStatus": {
                    "type": "object", "required": ["registered", "gone"],
                    "properties": {
                        "registered": { "type": "boolean" },
                        "gone": { "type": "boolean", "description": "the record was destroyed when its guesses ran out" },
                        "guesses_left": { "type": ["integer", "null"] },
                        "guess_limit": { "type": ["integer", "null"] }
                    }
                },
                "DeleteResponse": {
                    "type": "object", "required": ["deleted"],
                    "properties": { "deleted": { "type": "boolean" } }
                },
                "ErrorBody": {
                    "type": "object", "required": ["error", "message"],
                    "properties": {
                        "error": { "type": "string", "enum": [
                            "wrong_password", "gone", "not_registered", "already_registered", "login_expired",
                            "forbidden", "unauthorized", "bad_request", "head_behind", "rate_limited",
                            "unavailable", "not_found", "method_not_allowed", "too_large"
                        ] },
                        "message": { "type": "string", "description": "for people" },
                        "guesses_left": { "type": "integer", "description": "with wrong_password and gone" },
                        "head_seq": { "type": "integer", "description": "with head_behind" }
                    }
                }
            }
        }
    })
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::ROUTES;
    use crate::suite::KsfParams;
    use crate::wire::*;

    #[test]
    fn documents_exactly_the_routes() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        for (method, path) in ROUTES {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} is served but not documented"
            );
        }
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                assert!(
                    ROUTES.contains(&(method.as_str(), path.as_str())),
                    "{method} {path} is documented but not served"
                );
            }
        }
    }

    /// The lengths the document gives are those of real messages, and real messages match the
    /// base64url pattern.
    #[test]
    fn sizes_are_those_of_real_messages() {
        use opaque_ke::{
            ClientLogin, ClientLoginFinishParameters, ClientRegistration,
            ClientRegistrationFinishParameters, Identifiers, ServerLogin, ServerLoginParameters,
            ServerRegistration, ServerSetup,
        };
        use rand_core::OsRng;

        use crate::suite::Suite;

        let argon = KsfParams {
            m_kib: 8,
            t: 1,
            p: 1,
        }
        .argon2()
        .unwrap();
        let setup = ServerSetup::<Suite>::new(&mut OsRng);
        let reg = ClientRegistration::<Suite>::start(&mut OsRng, b"pw").unwrap();
        let resp = ServerRegistration::<Suite>::start(&setup, reg.message.clone(), b"a").unwrap();
        let fin = reg
            .state
            .finish(
                &mut OsRng,
                b"pw",
                resp.message.clone(),
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon)),
            )
            .unwrap();
        let file = ServerRegistration::<Suite>::finish(fin.message.clone());
        let login = ClientLogin::<Suite>::start(&mut OsRng, b"pw").unwrap();
        let ke2 = ServerLogin::start(
            &mut OsRng,
            &setup,
            Some(file),
            login.message.clone(),
            b"a",
            ServerLoginParameters::default(),
        )
        .unwrap();
        let ke3 = login
            .state
            .finish(
                &mut OsRng,
                b"pw",
                ke2.message.clone(),
                ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&argon)),
            )
            .unwrap();
        let real = [
            (reg.message.serialize().len(), sizes::REGISTRATION_REQUEST),
            (resp.message.serialize().len(), sizes::REGISTRATION_RESPONSE),
            (fin.message.serialize().len(), sizes::REGISTRATION_UPLOAD),
            (login.message.serialize().len(), sizes::CREDENTIAL_REQUEST),
            (ke2.message.serialize().len(), sizes::CREDENTIAL_RESPONSE),
            (
                ke3.message.serialize().len(),
                sizes::CREDENTIAL_FINALIZATION,
            ),
        ];
        for (got, documented) in real {
            assert_eq!(got, documented);
        }
        let pattern = B64_PATTERN;
        // No regex engine here: check the pattern's rules by hand on encodings of every length
        // mod 3, and that the document uses the constant.
        for n in 0..8 {
            let text = crate::wire::b64::encode(&vec![0xffu8; n]);
            assert_eq!(text.len(), b64_chars(n));
            let tail = &text[text.len() - text.len() % 4..];
            match tail.len() {
                0 => {}
                2 => assert!("AQgw".contains(&tail[1..])),
                3 => assert!("AEIMQUYcgkosw048".contains(&tail[2..])),
                other => panic!("a tail of {other}"),
            }
        }
        assert_eq!(
            document()["components"]["schemas"]["Head"]["properties"]["mac"]["pattern"],
            pattern
        );
        assert_eq!(
            document()["components"]["schemas"]["Head"]["properties"]["mac"]["maxLength"],
            43
        );
    }

    /// Every field a wire type serializes is a documented property of its schema.
    #[test]
    fn schemas_name_every_field() {
        let ksf = KsfParams::default();
        let samples: Vec<(&str, serde_json::Value)> = vec![
            ("KsfParams", serde_json::to_value(ksf).unwrap()),
            (
                "RegistrationStartRequest",
                serde_json::to_value(RegistrationStartRequest { request: vec![1] }).unwrap(),
            ),
            (
                "RegistrationStartResponse",
                serde_json::to_value(RegistrationStartResponse { response: vec![1] }).unwrap(),
            ),
            (
                "RegistrationFinishRequest",
                serde_json::to_value(RegistrationFinishRequest {
                    upload: vec![1],
                    envelope: vec![1],
                    ksf,
                    guess_limit: Some(3),
                    key_proof_hash: Some(vec![1]),
                    change: Some(ChangeProof::Ticket(vec![1])),
                })
                .unwrap(),
            ),
            (
                "RegistrationFinishResponse",
                serde_json::to_value(RegistrationFinishResponse {
                    guess_limit: 1,
                    guesses_left: 1,
                })
                .unwrap(),
            ),
            (
                "LoginStartRequest",
                serde_json::to_value(LoginStartRequest { request: vec![1] }).unwrap(),
            ),
            (
                "LoginStartResponse",
                serde_json::to_value(LoginStartResponse {
                    login_id: vec![1],
                    response: vec![1],
                    guesses_left: 1,
                    ksf,
                })
                .unwrap(),
            ),
            (
                "LoginFinishRequest",
                serde_json::to_value(LoginFinishRequest {
                    login_id: vec![1],
                    finalization: vec![1],
                })
                .unwrap(),
            ),
            (
                "LoginFinishResponse",
                serde_json::to_value(LoginFinishResponse {
                    sealed_envelope: vec![1],
                    change_ticket: vec![1],
                    guesses_left: 1,
                })
                .unwrap(),
            ),
            (
                "Head",
                serde_json::to_value(Head {
                    seq: 1,
                    mac: vec![1],
                })
                .unwrap(),
            ),
            (
                "AccountStatus",
                serde_json::to_value(AccountStatus {
                    registered: true,
                    gone: false,
                    guesses_left: Some(1),
                    guess_limit: Some(1),
                })
                .unwrap(),
            ),
            (
                "DeleteResponse",
                serde_json::to_value(DeleteResponse { deleted: true }).unwrap(),
            ),
            (
                "ErrorBody",
                serde_json::to_value(ErrorBody {
                    error: "gone".into(),
                    message: "m".into(),
                    guesses_left: Some(0),
                    head_seq: Some(1),
                })
                .unwrap(),
            ),
        ];
        let schemas = &document()["components"]["schemas"];
        for (name, sample) in samples {
            let props = schemas[name]["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("no schema {name}"));
            for field in sample.as_object().unwrap().keys() {
                assert!(
                    props.contains_key(field),
                    "{name}.{field} is not documented"
                );
            }
            for field in props.keys() {
                assert!(
                    sample.as_object().unwrap().contains_key(field),
                    "{name}.{field} is documented but not a field"
                );
            }
        }
    }
}
