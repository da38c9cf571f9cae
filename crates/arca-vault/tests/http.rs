//! The real `arca-vault` binary on loopback, driven by arca-client's HTTP transport and
//! protocol functions, and by raw requests where a well-behaved client cannot go.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use arca_client::{
    ClientError, Http, Transport, change_password_with_ticket, head_mac, key_proof, recover,
    register, token_account,
};
use arca_crypto::BackupKey;
use arca_vault::VaultError;
use arca_vault::http::auth::{Issuer, Issuers};
use arca_vault::wire::*;
use common::*;
use rand_core::OsRng;

/// Generous limits so that the tests are never throttled by accident.
const LOOSE_LIMITS: &str = r#"
[rate_limit]
per_account_per_minute = 60000
per_account_burst = 10000
per_address_per_minute = 60000
per_address_burst = 10000
"#;

/// The vault on `dir/vault.db` with `dir/vault.toml`, which is written from `config` if given.
/// It logs at debug level: one test looks for the requests in the log.
fn start(dir: &Path, config: Option<&str>) -> Server {
    start_with(dir, config, LOOPBACK, &[])
        .unwrap_or_else(|e| panic!("the vault did not start: {e}"))
}

fn start_with(
    dir: &Path,
    config: Option<&str>,
    listen: &str,
    env: &[(&str, &str)],
) -> Result<Server, String> {
    if let Some(text) = config {
        std::fs::write(dir.join("vault.toml"), text).unwrap();
    }
    Server::start_with(dir, dir.join("vault.db"), "debug", listen, env)
}

#[test]
fn register_recover_count_down_and_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(&config_text(LOOSE_LIMITS)));
    let t = server.http("alice");
    assert_eq!(t.account(), "alice");
    let st = t.status().unwrap();
    assert!(!st.registered && !st.gone);

    let k = BackupKey::generate();
    let pw = b"correct horse battery staple";
    let r = register(&t, "alice", pw, &k, TEST_KSF, None, None).unwrap();
    assert_eq!((r.guess_limit, r.guesses_left), (10, 10));
    assert!(matches!(
        register(&t, "alice", pw, &k, TEST_KSF, None, None),
        Err(ClientError::Vault(VaultError::AlreadyRegistered))
    ));
    let got = recover(&t, "alice", pw, &TEST_KSF).unwrap();
    assert_eq!(got.key, k);
    assert_eq!(got.guesses_left, 10);

    // the head register
    let repo = [3u8; 16];
    assert_eq!(t.head().unwrap(), None);
    t.set_head(&Head {
        seq: 7,
        mac: head_mac(&k, &repo, 7),
    })
    .unwrap();
    assert!(matches!(
        t.set_head(&Head {
            seq: 6,
            mac: head_mac(&k, &repo, 6)
        }),
        Err(VaultError::HeadBehind { current: 7 })
    ));
    assert_eq!(t.head().unwrap().unwrap().seq, 7);

    // wrong passwords count down; a success refunds them
    assert_eq!(wrong_password(recover(&t, "alice", b"nope", &TEST_KSF)), 9);
    assert_eq!(guesses_left(&t), Some(9));
    recover(&t, "alice", pw, &TEST_KSF).unwrap();
    assert_eq!(guesses_left(&t), Some(10));
    for expected in (1..10).rev() {
        assert_eq!(
            wrong_password(recover(&t, "alice", b"wrong", &TEST_KSF)),
            expected
        );
    }
    // the 10th destroys the record, for good
    assert!(matches!(
        recover(&t, "alice", b"wrong", &TEST_KSF),
        Err(ClientError::Gone)
    ));
    assert!(matches!(
        recover(&t, "alice", pw, &TEST_KSF),
        Err(ClientError::Gone)
    ));
    let st = t.status().unwrap();
    assert!(st.gone && !st.registered, "{st:?}");
    let a = raw(
        "POST",
        &format!("{}/v1/accounts/alice/login/start", server.url),
        Some(&bearer("alice")),
        Some(&login_start_body(pw)),
    );
    assert_eq!((a.status, a.error().error.as_str()), (410, "gone"));

    // deletion at the holder's request
    let b = server.http("bob");
    register(&b, "bob", b"bob's password", &k, TEST_KSF, Some(3), None).unwrap();
    assert_eq!(b.status().unwrap().guess_limit, Some(3));
    assert!(b.delete().unwrap());
    assert!(!b.delete().unwrap());
    assert!(!b.status().unwrap().registered);

    // the other endpoints
    let doc = raw(
        "GET",
        &format!("{}/v1/openapi.json", server.url),
        None,
        None,
    );
    assert_eq!(doc.status, 200);
    let doc: serde_json::Value = serde_json::from_str(&doc.body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/v1/accounts/{account}/login/start"]["post"].is_object());
    assert_eq!(
        raw("GET", &format!("{}/healthz", server.url), None, None).status,
        200
    );
    let nf = raw("GET", &format!("{}/v1/nothing", server.url), None, None);
    assert_eq!((nf.status, nf.error().error.as_str()), (404, "not_found"));
}

#[test]
fn fifty_concurrent_wrong_login_starts_get_at_most_ten_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(&config_text(LOOSE_LIMITS)));
    let t = server.http("race");
    let k = BackupKey::generate();
    register(&t, "race", b"the right one", &k, TEST_KSF, Some(10), None).unwrap();

    let (answered, gone) = racing_wrong_starts(50, |_| server.http("race"));
    assert!(answered <= 10, "{answered} OPAQUE responses for 10 guesses");
    assert_eq!(answered, 10, "every guess was answered once");
    assert_eq!(gone, 40);
    assert!(t.status().unwrap().gone);
    assert!(matches!(
        recover(&t, "race", b"the right one", &TEST_KSF),
        Err(ClientError::Gone)
    ));
}

#[test]
fn a_login_survives_a_vault_restart_and_finishes_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(&config_text(LOOSE_LIMITS)));
    let k = BackupKey::generate();
    let pw = b"restart-proof password";
    let t = server.http("erin");
    register(&t, "erin", pw, &k, TEST_KSF, None, None).unwrap();
    let (state, resp) = start_login(&t, pw);
    assert_eq!(resp.guesses_left, 9);
    server.kill();

    let server = start(dir.path(), None);
    let t = server.http("erin");
    let done = client_finish(state, pw, &resp);
    let fin_req = LoginFinishRequest {
        login_id: resp.login_id.clone(),
        finalization: done.message.serialize().to_vec(),
    };
    let fin = t.login_finish(&fin_req).unwrap();
    assert_eq!(fin.guesses_left, 10);
    assert_eq!(open_released("erin", &done, &resp.login_id, &fin), k);

    // replaying the finish is refused, and costs nothing further
    assert!(matches!(
        t.login_finish(&fin_req),
        Err(VaultError::LoginExpired)
    ));
    let a = raw(
        "POST",
        &format!("{}/v1/accounts/erin/login/finish", server.url),
        Some(&bearer("erin")),
        Some(serde_json::to_string(&fin_req).unwrap().as_bytes()),
    );
    assert_eq!((a.status, a.error().error.as_str()), (409, "login_expired"));
    assert_eq!(guesses_left(&t), Some(10));
}

#[test]
fn altered_and_foreign_finishes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(&config_text(LOOSE_LIMITS)));
    let k = BackupKey::generate();
    let pw = b"frank's password";
    let frank = server.http("frank");
    register(&frank, "frank", pw, &k, TEST_KSF, None, None).unwrap();
    register(
        &server.http("grace"),
        "grace",
        b"grace's password",
        &BackupKey::generate(),
        TEST_KSF,
        None,
        None,
    )
    .unwrap();

    // an altered finish is a failed guess, and uses the login up
    let (state, resp) = start_login(&frank, pw);
    let done = client_finish(state, pw, &resp);
    let mut altered = done.message.serialize().to_vec();
    altered[5] ^= 0x40;
    match frank.login_finish(&LoginFinishRequest {
        login_id: resp.login_id.clone(),
        finalization: altered,
    }) {
        Err(VaultError::WrongPassword { guesses_left }) => assert_eq!(guesses_left, 9),
        other => panic!("{:?}", other.map(|_| ())),
    }
    let a = raw(
        "POST",
        &format!("{}/v1/accounts/frank/login/finish", server.url),
        Some(&bearer("frank")),
        Some(
            serde_json::to_string(&LoginFinishRequest {
                login_id: resp.login_id.clone(),
                finalization: done.message.serialize().to_vec(),
            })
            .unwrap()
            .as_bytes(),
        ),
    );
    assert_eq!((a.status, a.error().error.as_str()), (409, "login_expired"));
    assert_eq!(guesses_left(&frank), Some(9));

    // a wrong password's finish: 403 wrong_password with the count
    let (state, resp) = start_login(&frank, b"not it");
    assert_eq!(resp.guesses_left, 8);
    let _ = state;
    let a = raw(
        "POST",
        &format!("{}/v1/accounts/frank/login/finish", server.url),
        Some(&bearer("frank")),
        Some(
            serde_json::to_string(&LoginFinishRequest {
                login_id: resp.login_id.clone(),
                finalization: Vec::new(),
            })
            .unwrap()
            .as_bytes(),
        ),
    );
    assert_eq!(a.status, 403);
    let e = a.error();
    assert_eq!(
        (e.error.as_str(), e.guesses_left),
        ("wrong_password", Some(8))
    );

    // frank's login finished with grace's token: 403 on frank's path...
    let (state, resp) = start_login(&frank, pw);
    assert_eq!(resp.guesses_left, 7);
    let done = client_finish(state, pw, &resp);
    let fin_req = LoginFinishRequest {
        login_id: resp.login_id.clone(),
        finalization: done.message.serialize().to_vec(),
    };
    let as_grace_on_frank = Http::new(&server.url, &token("grace"), "frank").unwrap();
    assert!(matches!(
        as_grace_on_frank.login_finish(&fin_req),
        Err(VaultError::Forbidden(_))
    ));
    let a = raw(
        "POST",
        &format!("{}/v1/accounts/frank/login/finish", server.url),
        Some(&bearer("grace")),
        Some(serde_json::to_string(&fin_req).unwrap().as_bytes()),
    );
    assert_eq!((a.status, a.error().error.as_str()), (403, "forbidden"));
    // ...and unknown on grace's own path (someone else's login id)
    let a = raw(
        "POST",
        &format!("{}/v1/accounts/grace/login/finish", server.url),
        Some(&bearer("grace")),
        Some(serde_json::to_string(&fin_req).unwrap().as_bytes()),
    );
    assert_eq!((a.status, a.error().error.as_str()), (409, "login_expired"));
    assert_eq!(guesses_left(&server.http("grace")), Some(10));
    // none of that consumed frank's login: he finishes it and the count is reset
    let fin = frank.login_finish(&fin_req).unwrap();
    assert_eq!(fin.guesses_left, 10);
    assert_eq!(open_released("frank", &done, &resp.login_id, &fin), k);
    // other routes with another account's token
    for (method, tail) in [("GET", ""), ("GET", "/head"), ("DELETE", "")] {
        let a = raw(
            method,
            &format!("{}/v1/accounts/frank{tail}", server.url),
            Some(&bearer("grace")),
            None,
        );
        assert_eq!(a.status, 403, "{method} {tail}");
    }
    assert!(frank.status().unwrap().registered);
}

#[test]
fn missing_or_bad_tokens_are_401_and_charge_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(&config_text(LOOSE_LIMITS)));
    let t = server.http("gina");
    register(
        &t,
        "gina",
        b"gina's password",
        &BackupKey::generate(),
        TEST_KSF,
        None,
        None,
    )
    .unwrap();
    let body = login_start_body(b"guess");
    let url = format!("{}/v1/accounts/gina/login/start", server.url);

    let wrong_key = Issuers(vec![Issuer::hs256(ISSUER, &[0x55; 40], None).unwrap()])
        .issue(None, "gina", Duration::from_secs(600))
        .unwrap();
    let wrong_issuer = Issuers(vec![
        Issuer::hs256("someone-else", SECRET.as_bytes(), None).unwrap(),
    ])
    .issue(None, "gina", Duration::from_secs(600))
    .unwrap();
    let expired = expired_token();
    let good = token("gina");
    let mut tampered = good.clone();
    tampered.insert(good.len() - 3, 'A');
    tampered.truncate(good.len());
    let cases: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some(format!("Basic {good}")),
        Some("Bearer not.a.jwt".into()),
        Some(format!("Bearer {wrong_key}")),
        Some(format!("Bearer {wrong_issuer}")),
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {tampered}")),
    ];
    for auth in &cases {
        let a = raw("POST", &url, auth.as_deref(), Some(&body));
        assert_eq!(a.status, 401, "{auth:?}: {}", a.body);
        assert_eq!(a.error().error, "unauthorized");
        assert!(a.www_authenticate.unwrap().starts_with("Bearer"));
    }
    assert_eq!(guesses_left(&t), Some(10), "no guess was charged");
    // through the client: the error says what is wrong
    let bad = Http::new(&server.url, &wrong_key, "gina").unwrap();
    assert!(matches!(bad.status(), Err(VaultError::Unauthorized(_))));
    // and a good token works
    let a = raw("POST", &url, Some(&format!("Bearer {good}")), Some(&body));
    assert_eq!(a.status, 200);
    assert_eq!(guesses_left(&t), Some(9));
}

/// An HS256 token from the configured issuer that expired an hour ago.
fn expired_token() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = arca_vault::http::auth::Claims {
        sub: "gina".into(),
        iss: ISSUER.into(),
        exp: now - 3600,
        iat: None,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[test]
fn malformed_bodies_are_400_and_charge_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(&config_text(LOOSE_LIMITS)));
    let t = server.http("hank");
    register(
        &t,
        "hank",
        b"hank's password",
        &BackupKey::generate(),
        TEST_KSF,
        None,
        None,
    )
    .unwrap();
    let auth = bearer("hank");
    let start = format!("{}/v1/accounts/hank/login/start", server.url);
    let finish = format!("{}/v1/accounts/hank/login/finish", server.url);
    let head = format!("{}/v1/accounts/hank/head", server.url);
    let reg = format!("{}/v1/accounts/hank/registration/finish", server.url);
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("POST", &start, b"".to_vec()),
        ("POST", &start, b"not json".to_vec()),
        ("POST", &start, b"{}".to_vec()),
        ("POST", &start, b"[]".to_vec()),
        ("POST", &start, br#"{"request": 5}"#.to_vec()),
        ("POST", &start, br#"{"request": "!!not base64!!"}"#.to_vec()),
        ("POST", &start, br#"{"request": "AAAA"}"#.to_vec()),
        (
            "POST",
            &start,
            br#"{"request": "AAAA", "extra": 1}"#.to_vec(),
        ),
        ("POST", &start, vec![0xff, 0xfe, 0x00]),
        (
            "POST",
            &finish,
            br#"{"login_id": "%%%", "finalization": ""}"#.to_vec(),
        ),
        ("POST", &finish, br#"{"login_id": "AAAA"}"#.to_vec()),
        ("PUT", &head, br#"{"seq": -1, "mac": "AAAA"}"#.to_vec()),
        ("PUT", &head, br#"{"seq": 1, "mac": "AAAA"}"#.to_vec()),
        (
            "POST",
            &reg,
            br#"{"upload": "AAAA", "envelope": "AAAA", "ksf": {"m_kib": 64, "t": 1, "p": 1}}"#
                .to_vec(),
        ),
    ];
    for (method, url, body) in &cases {
        let a = raw(method, url, Some(&auth), Some(body));
        assert_eq!(
            a.status,
            400,
            "{method} {url} {:?}: {}",
            String::from_utf8_lossy(body),
            a.body
        );
        assert_eq!(a.error().error, "bad_request");
    }
    // too large: 413, still a JSON error. The server answers before reading the whole body
    // and closes the connection, so the client may see its write fail instead.
    let big = format!(r#"{{"request": "{}"}}"#, "A".repeat(100 * 1024));
    match try_raw("POST", &start, Some(&auth), Some(big.as_bytes())) {
        Ok(a) => assert_eq!((a.status, a.error().error.as_str()), (413, "too_large")),
        Err(e) => assert_eq!(e.kind(), ureq::ErrorKind::Io, "{e}"),
    }
    // an account id the vault does not accept
    let a = raw(
        "GET",
        &format!("{}/v1/accounts/has%20space", server.url),
        Some(&bearer("hank")),
        None,
    );
    assert_eq!(a.status, 403);
    assert_eq!(guesses_left(&t), Some(10), "no guess was charged");
    assert_eq!(t.head().unwrap(), None);
}

#[test]
fn secrets_never_reach_the_database_or_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(&config_text(LOOSE_LIMITS)));
    let account = "ivy";
    let t = server.http(account);
    let pw1 = b"Pw1-zebra-quartz-umbrella-4471".to_vec();
    let pw2 = b"Pw2-violet-harbor-lantern-9902".to_vec();
    let k = BackupKey::generate();
    register(&t, account, &pw1, &k, TEST_KSF, None, None).unwrap();
    let got = recover(&t, account, &pw1, &TEST_KSF).unwrap();
    assert_eq!(got.key, k);
    wrong_password(recover(&t, account, &pw2, &TEST_KSF));
    change_password_with_ticket(&t, account, &got, &pw2, TEST_KSF, None).unwrap();
    assert_eq!(recover(&t, account, &pw2, &TEST_KSF).unwrap().key, k);
    let tok = token(account);
    let logs = server.kill();
    assert!(
        String::from_utf8_lossy(&logs).contains("request"),
        "the server logged its requests"
    );

    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let std64 = base64::engine::general_purpose::STANDARD;
    let proof = key_proof(&k);
    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("password 1".into(), pw1.clone()),
        ("password 2".into(), pw2.clone()),
        ("K".into(), k.expose().to_vec()),
        ("K (hex)".into(), hex(k.expose()).into_bytes()),
        ("K (base64url)".into(), b64.encode(k.expose()).into_bytes()),
        ("K (base64)".into(), std64.encode(k.expose()).into_bytes()),
        ("the key proof".into(), proof.to_vec()),
        ("the token".into(), tok.clone().into_bytes()),
        (
            "the token's signature".into(),
            tok.rsplit('.').next().unwrap().as_bytes().to_vec(),
        ),
    ];
    for (name, pw) in [("password 1", &pw1), ("password 2", &pw2)] {
        secrets.push((format!("{name} (base64url)"), b64.encode(pw).into_bytes()));
        secrets.push((format!("{name} (hex)"), hex(pw).into_bytes()));
    }
    let mut files = vec![("the server's log".to_string(), logs)];
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p: PathBuf = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("vault.db") {
            files.push((name, std::fs::read(&p).unwrap()));
        }
    }
    assert!(files.len() >= 2, "the database files are there");
    for (fname, data) in &files {
        for (sname, secret) in &secrets {
            assert!(
                !data.windows(secret.len()).any(|w| w == secret.as_slice()),
                "{sname} found in {fname}"
            );
        }
    }
}

#[test]
fn an_expired_login_cannot_finish() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        Some(&config_text(&format!("login_ttl_secs = 1\n{LOOSE_LIMITS}"))),
    );
    let t = server.http("jo");
    let pw = b"jo's password";
    register(&t, "jo", pw, &BackupKey::generate(), TEST_KSF, None, None).unwrap();
    let (state, resp) = start_login(&t, pw);
    let done = client_finish(state, pw, &resp);
    std::thread::sleep(Duration::from_millis(2100));
    assert!(matches!(
        t.login_finish(&LoginFinishRequest {
            login_id: resp.login_id,
            finalization: done.message.serialize().to_vec(),
        }),
        Err(VaultError::LoginExpired)
    ));
    assert_eq!(guesses_left(&t), Some(9), "the guess stays charged");
}

#[test]
fn rate_limits_answer_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        Some(&config_text(
            r#"
[rate_limit]
per_account_per_minute = 1
per_account_burst = 3
per_address_per_minute = 60000
per_address_burst = 10000
"#,
        )),
    );
    let t = server.http("kim");
    for _ in 0..3 {
        t.status().unwrap();
    }
    match t.status() {
        Err(VaultError::RateLimited { retry_after }) => assert!(retry_after >= 1),
        other => panic!("{other:?}"),
    }
    let a = raw(
        "GET",
        &format!("{}/v1/accounts/kim", server.url),
        Some(&bearer("kim")),
        None,
    );
    assert_eq!((a.status, a.error().error.as_str()), (429, "rate_limited"));
    assert!(a.retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    // another account is not held back
    server.http("lee").status().unwrap();

    // per address: a separate server whose address limit is tight
    let dir2 = tempfile::tempdir().unwrap();
    let server2 = start(
        dir2.path(),
        Some(&config_text(
            r#"
[rate_limit]
per_account_per_minute = 60000
per_account_burst = 10000
per_address_per_minute = 1
per_address_burst = 2
"#,
        )),
    );
    server2.http("a1").status().unwrap();
    server2.http("a2").status().unwrap();
    // even without a token, the address is throttled first
    let a = raw(
        "GET",
        &format!("{}/v1/accounts/a3", server2.url),
        None,
        None,
    );
    assert_eq!(a.status, 429);
}

#[test]
fn eddsa_tokens_and_token_issue() {
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let dir = tempfile::tempdir().unwrap();
    let sk = ed25519_dalek::SigningKey::generate(&mut OsRng);
    std::fs::write(
        dir.path().join("issuer.pem"),
        sk.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("issuer.pub.pem"),
        sk.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    let config = format!(
        r#"
master_key_env = "TEST_ARCA_MASTER"

[[issuer]]
name = "ed-issuer"
ed25519_public_key = "issuer.pub.pem"
ed25519_private_key = "issuer.pem"

[policy]
ksf_floor = {{ m_kib = 64, t = 1, p = 1 }}
insecure_test_ksf = true
{LOOSE_LIMITS}"#
    );
    std::fs::write(dir.path().join("vault.toml"), &config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_arca-vault"))
        .args([
            "token",
            "issue",
            "--account",
            "mo",
            "--ttl",
            "1h",
            "--config",
        ])
        .arg(dir.path().join("vault.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tok = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(token_account(&tok).unwrap(), "mo");

    let master = "5a".repeat(32);
    let server = start_with(
        dir.path(),
        None,
        "127.0.0.1:0",
        &[("TEST_ARCA_MASTER", &master)],
    )
    .unwrap();
    let t = Http::from_token(&server.url, &tok).unwrap();
    let k = BackupKey::generate();
    register(&t, "mo", b"mo's password", &k, TEST_KSF, None, None).unwrap();
    assert_eq!(
        recover(&t, "mo", b"mo's password", &TEST_KSF).unwrap().key,
        k
    );
    // an HS256 token is not accepted by this vault
    let h = Http::new(&server.url, &token("mo"), "mo").unwrap();
    assert!(matches!(h.status(), Err(VaultError::Unauthorized(_))));
}

#[test]
fn tls_when_a_certificate_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    let config = config_text(&format!(
        "{LOOSE_LIMITS}\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n"
    ));
    let server = start(dir.path(), Some(&config));
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let t = Http::new(&server.url, &token("nia"), "nia")
        .unwrap()
        .with_root_certificates(cert.cert.pem().as_bytes())
        .unwrap();
    let k = BackupKey::generate();
    register(&t, "nia", b"nia's password", &k, TEST_KSF, None, None).unwrap();
    assert_eq!(
        recover(&t, "nia", b"nia's password", &TEST_KSF)
            .unwrap()
            .key,
        k
    );
    // a client that does not trust the certificate cannot reach it
    let untrusting = server.http("nia");
    assert!(matches!(
        untrusting.status(),
        Err(VaultError::Unavailable(_))
    ));
    // nor does plain HTTP reach the TLS port
    let plain = Http::new(
        &server.url.replace("https://", "http://"),
        &token("nia"),
        "nia",
    )
    .unwrap();
    assert!(matches!(plain.status(), Err(VaultError::Unavailable(_))));
}

#[test]
fn startup_refuses_what_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_text("");
    let e = start_with(dir.path(), Some(&config), "0.0.0.0:0", &[])
        .err()
        .expect("plain HTTP on every address is refused");
    assert!(e.contains("loopback"), "{e}");

    let out = Command::new(env!("CARGO_BIN_EXE_arca-vault"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--database", "postgres://vault@localhost/vault", "--config"])
        .arg(dir.path().join("vault.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("PostgreSQL"), "{e}");

    let weak = config_text("").replace("insecure_test_ksf = true", "");
    let e = start_with(dir.path(), Some(&weak), "127.0.0.1:0", &[])
        .err()
        .expect("a lowered Argon2 floor needs the test switch");
    assert!(e.contains("insecure_test_ksf"), "{e}");

    let wrong_master = config_text("");
    let server = start(dir.path(), Some(&wrong_master));
    drop(server);
    std::fs::write(dir.path().join("master.key"), "00".repeat(32)).unwrap();
    let e = start_with(dir.path(), None, "127.0.0.1:0", &[])
        .err()
        .expect("another master key does not open the vault");
    assert!(e.contains("master key"), "{e}");
}

/// Found while reading the code for the schemathesis campaign (docs/RELIABILITY.md): the stores
/// keep the head's sequence number as a signed 64-bit integer, so a sequence number of 2^63 or
/// more was stored negative, and a lower one was then accepted: the register moved back.
#[test]
fn a_head_sequence_number_beyond_i64_is_refused_and_cannot_move_the_register_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(&config_text(LOOSE_LIMITS)));
    let t = server.http("olga");
    let k = BackupKey::generate();
    let repo = [9u8; 16];
    t.set_head(&Head {
        seq: 7,
        mac: head_mac(&k, &repo, 7),
    })
    .unwrap();
    for seq in [1u64 << 63, u64::MAX] {
        let body = serde_json::to_vec(&Head {
            seq,
            mac: head_mac(&k, &repo, seq),
        })
        .unwrap();
        let a = raw(
            "PUT",
            &format!("{}/v1/accounts/olga/head", server.url),
            Some(&bearer("olga")),
            Some(&body),
        );
        assert_eq!((a.status, a.error().error.as_str()), (400, "bad_request"));
        assert_eq!(t.head().unwrap().unwrap().seq, 7);
    }
    // the register still refuses to move back
    assert!(matches!(
        t.set_head(&Head {
            seq: 6,
            mac: head_mac(&k, &repo, 6),
        }),
        Err(VaultError::HeadBehind { current: 7 })
    ));
    // the largest sequence number the document allows is stored and read back as given
    let max = i64::MAX as u64;
    t.set_head(&Head {
        seq: max,
        mac: head_mac(&k, &repo, max),
    })
    .unwrap();
    assert_eq!(t.head().unwrap().unwrap().seq, max);
    assert!(matches!(
        t.set_head(&Head {
            seq: 8,
            mac: head_mac(&k, &repo, 8),
        }),
        Err(VaultError::HeadBehind { current }) if current == max
    ));
}
