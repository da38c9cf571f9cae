//! The OpenAPI 3.1 document served at `/v1/openapi.json`, kept by hand beside the routes and the
//! wire types; tests check that it describes exactly the routes in [`ROUTES`](super::routes::ROUTES)
//! and every field of the wire types.

use std::sync::OnceLock;

use serde_json::{Value, json};

fn b64(description: &str) -> Value {
    json!({
        "type": "string",
        "contentEncoding": "base64url",
        "pattern": "^[A-Za-z0-9_-]*$",
        "description": format!("{description} (unpadded base64url)"),
    })
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
                    "properties": { "request": b64("OPAQUE RegistrationRequest") }
                },
                "RegistrationStartResponse": {
                    "type": "object", "required": ["response"],
                    "properties": { "response": b64("OPAQUE RegistrationResponse") }
                },
                "ChangeProof": {
                    "description": "How a password change proves the right to replace the record.",
                    "oneOf": [
                        { "type": "object", "required": ["ticket"], "additionalProperties": false,
                          "properties": { "ticket": b64("the change_ticket of a login finish") } },
                        { "type": "object", "required": ["key_proof"], "additionalProperties": false,
                          "properties": { "key_proof": b64("the key proof derived from K") } }
                    ]
                },
                "RegistrationFinishRequest": {
                    "type": "object", "required": ["upload", "envelope", "ksf"], "additionalProperties": false,
                    "properties": {
                        "upload": b64("OPAQUE RegistrationUpload"),
                        "envelope": b64("K sealed under a key derived from the OPAQUE export key (1-1024 bytes)"),
                        "ksf": { "$ref": "#/components/schemas/KsfParams" },
                        "guess_limit": { "type": ["integer", "null"], "description": "wrong guesses allowed (default 10, within the vault's bounds)" },
                        "key_proof_hash": { "oneOf": [b64("BLAKE3 of the key proof (32 bytes)"), { "type": "null" }] },
                        "change": { "oneOf": [{ "$ref": "#/components/schemas/ChangeProof" }, { "type": "null" }] }
                    }
                },
                "RegistrationFinishResponse": {
                    "type": "object", "required": ["guess_limit", "guesses_left"],
                    "properties": { "guess_limit": { "type": "integer" }, "guesses_left": { "type": "integer" } }
                },
                "LoginStartRequest": {
                    "type": "object", "required": ["request"], "additionalProperties": false,
                    "properties": { "request": b64("OPAQUE CredentialRequest (KE1)") }
                },
                "LoginStartResponse": {
                    "type": "object", "required": ["login_id", "response", "guesses_left", "ksf"],
                    "properties": {
                        "login_id": b64("names this login for its finish (16 bytes)"),
                        "response": b64("OPAQUE CredentialResponse (KE2)"),
                        "guesses_left": { "type": "integer", "description": "after charging this one" },
                        "ksf": { "$ref": "#/components/schemas/KsfParams" }
                    }
                },
                "LoginFinishRequest": {
                    "type": "object", "required": ["login_id", "finalization"], "additionalProperties": false,
                    "properties": {
                        "login_id": b64("from the login start"),
                        "finalization": b64("OPAQUE CredentialFinalization (KE3); empty to report a failed login")
                    }
                },
                "LoginFinishResponse": {
                    "type": "object", "required": ["sealed_envelope", "change_ticket", "guesses_left"],
                    "properties": {
                        "sealed_envelope": b64("the envelope sealed under a key derived from the session key, AAD = login_id"),
                        "change_ticket": b64("single-use permission to replace the record (32 bytes)"),
                        "guesses_left": { "type": "integer" }
                    }
                },
                "Head": {
                    "type": "object", "required": ["seq", "mac"], "additionalProperties": false,
                    "properties": {
                        "seq": { "type": "integer", "minimum": 0, "description": "the newest snapshot's sequence number" },
                        "mac": b64("MAC over the sequence number with a K-derived key (32 bytes)")
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
