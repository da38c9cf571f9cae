//! The whole password flow against the vault code in-process, with its SQLite store.

use std::sync::Arc;

use arca_client::*;
use arca_crypto::BackupKey;
use arca_vault::setup::MasterKey;
use arca_vault::sqlite::SqliteStore;
use arca_vault::suite::KsfParams;
use arca_vault::wire::Head;
use arca_vault::{Policy, Vault};

/// Cheap Argon2id for tests only; real use keeps the 19 MiB floor.
const TEST_KSF: KsfParams = KsfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

fn vault(dir: &std::path::Path) -> Vault {
    let store = Arc::new(SqliteStore::open(&dir.join("vault.db")).unwrap());
    let master = MasterKey::from_file(&dir.join("master.key"), true).unwrap();
    let policy = Policy {
        ksf_floor: TEST_KSF,
        ..Policy::default()
    };
    Vault::new(store, &master, policy).unwrap()
}

fn embedded(dir: &std::path::Path, account: &str) -> Embedded {
    Embedded {
        vault: vault(dir),
        account: account.into(),
    }
}

#[test]
fn register_recover_count_down_and_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let t = embedded(dir.path(), "alice");
    let k = BackupKey::generate();
    let r = register(
        &t,
        "alice",
        b"correct horse battery staple",
        &k,
        TEST_KSF,
        None,
        None,
    )
    .unwrap();
    assert_eq!(r.guesses_left, 10);
    let got = recover(&t, "alice", b"correct horse battery staple", &TEST_KSF).unwrap();
    assert_eq!(got.key, k);

    for expected in (1..10).rev() {
        match recover(&t, "alice", b"wrong", &TEST_KSF) {
            Err(ClientError::WrongPassword { guesses_left }) => assert_eq!(guesses_left, expected),
            other => panic!("expected wrong password, got {:?}", other.map(|_| ())),
        }
    }
    // a success in between refunds the guesses
    assert!(recover(&t, "alice", b"correct horse battery staple", &TEST_KSF).is_ok());
    for _ in 0..9 {
        assert!(matches!(
            recover(&t, "alice", b"nope", &TEST_KSF),
            Err(ClientError::WrongPassword { .. })
        ));
    }
    // the 10th wrong guess destroys the record
    assert!(matches!(
        recover(&t, "alice", b"nope", &TEST_KSF),
        Err(ClientError::Gone)
    ));
    assert!(matches!(
        recover(&t, "alice", b"correct horse battery staple", &TEST_KSF),
        Err(ClientError::Gone)
    ));
    let st = t.status().unwrap();
    assert!(st.gone && !st.registered, "{st:?}");
    // registering again after destruction starts a new record
    register(
        &t,
        "alice",
        b"a brand new password",
        &k,
        TEST_KSF,
        None,
        None,
    )
    .unwrap();
    assert_eq!(
        recover(&t, "alice", b"a brand new password", &TEST_KSF)
            .unwrap()
            .key,
        k
    );
}

#[test]
fn concurrent_wrong_guesses_never_exceed_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let v = Arc::new(vault(dir.path()));
    let k = BackupKey::generate();
    let t = Embedded {
        vault: vault(dir.path()),
        account: "bob".into(),
    };
    register(&t, "bob", b"right password", &k, TEST_KSF, Some(10), None).unwrap();
    let answered = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..50 {
            let v = v.clone();
            let answered = &answered;
            s.spawn(move || {
                let start = opaque_ke::ClientLogin::<arca_vault::suite::Suite>::start(
                    &mut rand_core::OsRng,
                    b"guess",
                )
                .unwrap();
                let req = arca_vault::wire::LoginStartRequest {
                    request: start.message.serialize().to_vec(),
                };
                if v.login_start("bob", &req).is_ok() {
                    answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(
        answered.into_inner(),
        10,
        "exactly the limit's worth of OPAQUE responses"
    );
    assert!(matches!(
        recover(&t, "bob", b"right password", &TEST_KSF),
        Err(ClientError::Gone)
    ));
}

#[test]
fn change_password_with_the_old_one_or_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let t = embedded(dir.path(), "carol");
    let k = BackupKey::generate();
    register(&t, "carol", b"first password", &k, TEST_KSF, None, None).unwrap();
    let got = recover(&t, "carol", b"first password", &TEST_KSF).unwrap();
    change_password_with_ticket(&t, "carol", &got, b"second password", TEST_KSF, None).unwrap();
    assert!(matches!(
        recover(&t, "carol", b"first password", &TEST_KSF),
        Err(ClientError::WrongPassword { .. })
    ));
    assert_eq!(
        recover(&t, "carol", b"second password", &TEST_KSF)
            .unwrap()
            .key,
        k
    );
    // a ticket works once
    assert!(change_password_with_ticket(&t, "carol", &got, b"third", TEST_KSF, None).is_err());
    // the 64-digit key can replace a forgotten password; another key cannot
    assert!(
        change_password_with_key(&t, "carol", &BackupKey::generate(), b"evil", TEST_KSF, None)
            .is_err()
    );
    change_password_with_key(&t, "carol", &k, b"third password", TEST_KSF, None).unwrap();
    assert_eq!(
        recover(&t, "carol", b"third password", &TEST_KSF)
            .unwrap()
            .key,
        k
    );
}

#[test]
fn unknown_accounts_answer_like_real_ones() {
    let dir = tempfile::tempdir().unwrap();
    let t = embedded(dir.path(), "nobody");
    for expected in (1..10).rev() {
        match recover(&t, "nobody", b"guess", &TEST_KSF) {
            Err(ClientError::WrongPassword { guesses_left }) => assert_eq!(guesses_left, expected),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
    assert!(matches!(
        recover(&t, "nobody", b"guess", &TEST_KSF),
        Err(ClientError::Gone)
    ));
}

#[test]
fn head_register_only_moves_forward_and_is_authenticated() {
    let dir = tempfile::tempdir().unwrap();
    let t = embedded(dir.path(), "dave");
    let k = BackupKey::generate();
    let repo = [7u8; 16];
    assert_eq!(t.head().unwrap(), None);
    t.set_head(&Head {
        seq: 5,
        mac: head_mac(&k, &repo, 5),
    })
    .unwrap();
    assert!(
        t.set_head(&Head {
            seq: 4,
            mac: head_mac(&k, &repo, 4)
        })
        .is_err()
    );
    let h = t.head().unwrap().unwrap();
    assert_eq!(h.seq, 5);
    assert!(verify_head(&k, &repo, &h));
    assert!(!verify_head(&BackupKey::generate(), &repo, &h));
    assert!(!verify_head(
        &k,
        &repo,
        &Head {
            seq: 6,
            mac: h.mac.clone()
        }
    ));
}

#[test]
fn a_vault_restart_between_start_and_finish_keeps_the_login() {
    let dir = tempfile::tempdir().unwrap();
    let k = BackupKey::generate();
    {
        let t = embedded(dir.path(), "erin");
        register(&t, "erin", b"pw pw pw pw", &k, TEST_KSF, None, None).unwrap();
    }
    let start = opaque_ke::ClientLogin::<arca_vault::suite::Suite>::start(
        &mut rand_core::OsRng,
        b"pw pw pw pw",
    )
    .unwrap();
    let resp = vault(dir.path())
        .login_start(
            "erin",
            &arca_vault::wire::LoginStartRequest {
                request: start.message.serialize().to_vec(),
            },
        )
        .unwrap();
    // new process, same database
    let v2 = vault(dir.path());
    let argon = TEST_KSF.argon2().unwrap();
    let done = start
        .state
        .finish(
            &mut rand_core::OsRng,
            b"pw pw pw pw",
            opaque_ke::CredentialResponse::deserialize(&resp.response).unwrap(),
            opaque_ke::ClientLoginFinishParameters::new(
                None,
                opaque_ke::Identifiers::default(),
                Some(&argon),
            ),
        )
        .unwrap();
    let fin = arca_vault::wire::LoginFinishRequest {
        login_id: resp.login_id.clone(),
        finalization: done.message.serialize().to_vec(),
    };
    assert!(v2.login_finish("erin", &fin).is_ok());
    // replaying the same finish is refused: logins are single-use
    assert!(matches!(
        v2.login_finish("erin", &fin),
        Err(arca_vault::VaultError::LoginExpired)
    ));
}
