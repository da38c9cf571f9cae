//! The device's half of OPAQUE, and what it does with the result.

use arca_crypto::BackupKey;
use arca_vault::VaultError;
use arca_vault::service::release_key;
use arca_vault::suite::{KsfParams, Suite};
use arca_vault::wire::*;
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, Identifiers, RegistrationResponse,
};
use rand_core::OsRng;
use zeroize::Zeroizing;

use crate::envelope::{key_proof, open_envelope, seal_envelope};
use crate::transport::Transport;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("wrong password; {guesses_left} guesses left before this password backup is destroyed")]
    WrongPassword { guesses_left: u32 },
    #[error("this password backup is gone; use the 64-digit key if you saved one")]
    Gone,
    #[error("no password backup is registered at this vault for this account")]
    NotRegistered,
    #[error("the vault asked for Argon2id parameters {0:?}, weaker than this device accepts")]
    WeakKsf(KsfParams),
    #[error("the vault asked for Argon2id parameters {0:?}, beyond what this device agrees to run")]
    CostlyKsf(KsfParams),
    #[error("the vault's answer did not verify: {0}")]
    Protocol(String),
    #[error("the vault refused: {0}")]
    Vault(VaultError),
}

impl From<VaultError> for ClientError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::WrongPassword { guesses_left } => {
                ClientError::WrongPassword { guesses_left }
            }
            VaultError::Gone => ClientError::Gone,
            VaultError::NotRegistered => ClientError::NotRegistered,
            other => ClientError::Vault(other),
        }
    }
}

fn proto(e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(e.to_string())
}

/// Registers `password` for `account`, wrapping `key` into the envelope. With `change`, replaces
/// the existing record in one step (password change).
pub fn register(
    t: &dyn Transport,
    account: &str,
    password: &[u8],
    key: &BackupKey,
    ksf: KsfParams,
    guess_limit: Option<u32>,
    change: Option<ChangeProof>,
) -> Result<RegistrationFinishResponse, ClientError> {
    let argon = ksf.argon2().map_err(ClientError::Protocol)?;
    let start = ClientRegistration::<Suite>::start(&mut OsRng, password).map_err(proto)?;
    let resp = t.registration_start(&RegistrationStartRequest {
        request: start.message.serialize().to_vec(),
    })?;
    let response = RegistrationResponse::<Suite>::deserialize(&resp.response).map_err(proto)?;
    let finish = start
        .state
        .finish(
            &mut OsRng,
            password,
            response,
            ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon)),
        )
        .map_err(proto)?;
    let export_key = Zeroizing::new(finish.export_key.to_vec());
    let proof = key_proof(key);
    Ok(t.registration_finish(&RegistrationFinishRequest {
        upload: finish.message.serialize().to_vec(),
        envelope: seal_envelope(&export_key, account, key),
        ksf,
        guess_limit,
        key_proof_hash: Some(blake3::hash(&proof[..]).as_bytes().to_vec()),
        change,
    })?)
}

/// What a verified login yields.
pub struct Recovered {
    pub key: BackupKey,
    /// Lets this device replace the password within a few minutes.
    pub change_ticket: Vec<u8>,
    pub guesses_left: u32,
}

/// Logs in with `password` and recovers K. Each call spends one guess; a success refunds them.
pub fn recover(
    t: &dyn Transport,
    account: &str,
    password: &[u8],
    ksf_floor: &KsfParams,
) -> Result<Recovered, ClientError> {
    let start = ClientLogin::<Suite>::start(&mut OsRng, password).map_err(proto)?;
    let resp = t.login_start(&LoginStartRequest {
        request: start.message.serialize().to_vec(),
    })?;
    if !resp.ksf.meets_floor(ksf_floor) {
        return Err(ClientError::WeakKsf(resp.ksf));
    }
    if !resp.ksf.within(&KsfParams::CEILING) {
        return Err(ClientError::CostlyKsf(resp.ksf));
    }
    let argon = resp.ksf.argon2().map_err(ClientError::Protocol)?;
    let response = CredentialResponse::<Suite>::deserialize(&resp.response).map_err(proto)?;
    let finished = start.state.finish(
        &mut OsRng,
        password,
        response,
        ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&argon)),
    );
    let done = match finished {
        Ok(d) => d,
        Err(_) => {
            // Tell the vault the login failed, so a used-up record is destroyed now.
            let r = t.login_finish(&LoginFinishRequest {
                login_id: resp.login_id,
                finalization: Vec::new(),
            });
            return Err(match r {
                Err(VaultError::Gone) => ClientError::Gone,
                _ if resp.guesses_left == 0 => ClientError::Gone,
                _ => ClientError::WrongPassword {
                    guesses_left: resp.guesses_left,
                },
            });
        }
    };
    let fin = t.login_finish(&LoginFinishRequest {
        login_id: resp.login_id.clone(),
        finalization: done.message.serialize().to_vec(),
    })?;
    let envelope = Zeroizing::new(
        arca_crypto::open(
            &release_key(&done.session_key),
            &resp.login_id,
            &fin.sealed_envelope,
        )
        .map_err(|_| ClientError::Protocol("the released envelope did not authenticate".into()))?,
    );
    let key = open_envelope(&done.export_key, account, &envelope).ok_or_else(|| {
        ClientError::Protocol("the envelope does not open with this password".into())
    })?;
    Ok(Recovered {
        key,
        change_ticket: fin.change_ticket,
        guesses_left: fin.guesses_left,
    })
}

/// Replaces the password after a login with the current one.
pub fn change_password_with_ticket(
    t: &dyn Transport,
    account: &str,
    recovered: &Recovered,
    new_password: &[u8],
    ksf: KsfParams,
    guess_limit: Option<u32>,
) -> Result<RegistrationFinishResponse, ClientError> {
    register(
        t,
        account,
        new_password,
        &recovered.key,
        ksf,
        guess_limit,
        Some(ChangeProof::Ticket(recovered.change_ticket.clone())),
    )
}

/// Replaces the password with the 64-digit key as proof.
pub fn change_password_with_key(
    t: &dyn Transport,
    account: &str,
    key: &BackupKey,
    new_password: &[u8],
    ksf: KsfParams,
    guess_limit: Option<u32>,
) -> Result<RegistrationFinishResponse, ClientError> {
    let proof = key_proof(key);
    register(
        t,
        account,
        new_password,
        key,
        ksf,
        guess_limit,
        Some(ChangeProof::KeyProof(proof.to_vec())),
    )
}

/// The MAC over a repository's newest sequence number kept in the head register.
pub fn head_mac(key: &BackupKey, repo_id: &[u8; 16], seq: u64) -> Vec<u8> {
    let mut msg = b"arca head v1".to_vec();
    msg.extend_from_slice(repo_id);
    msg.extend_from_slice(&seq.to_le_bytes());
    key.derived().head_mac.mac(&msg).to_vec()
}

/// Checks a head read from the vault: its MAC must be ours.
pub fn verify_head(key: &BackupKey, repo_id: &[u8; 16], head: &Head) -> bool {
    let mut msg = b"arca head v1".to_vec();
    msg.extend_from_slice(repo_id);
    msg.extend_from_slice(&head.seq.to_le_bytes());
    key.derived().head_mac.verify(&msg, &head.mac)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arca_vault::setup::MasterKey;
    use arca_vault::sqlite::SqliteStore;
    use arca_vault::{Policy, Vault};

    use super::*;
    use crate::transport::Embedded;

    const TINY: KsfParams = KsfParams {
        m_kib: 8,
        t: 1,
        p: 1,
    };

    /// A vault that answers every login start with its own Argon2id parameters.
    struct AsksFor(Embedded, KsfParams);

    impl Transport for AsksFor {
        fn registration_start(
            &self,
            r: &RegistrationStartRequest,
        ) -> Result<RegistrationStartResponse, VaultError> {
            self.0.registration_start(r)
        }
        fn registration_finish(
            &self,
            r: &RegistrationFinishRequest,
        ) -> Result<RegistrationFinishResponse, VaultError> {
            self.0.registration_finish(r)
        }
        fn login_start(&self, r: &LoginStartRequest) -> Result<LoginStartResponse, VaultError> {
            let mut resp = self.0.login_start(r)?;
            resp.ksf = self.1;
            Ok(resp)
        }
        fn login_finish(&self, r: &LoginFinishRequest) -> Result<LoginFinishResponse, VaultError> {
            self.0.login_finish(r)
        }
        fn status(&self) -> Result<AccountStatus, VaultError> {
            self.0.status()
        }
        fn head(&self) -> Result<Option<Head>, VaultError> {
            self.0.head()
        }
        fn set_head(&self, h: &Head) -> Result<(), VaultError> {
            self.0.set_head(h)
        }
        fn delete(&self) -> Result<bool, VaultError> {
            self.0.delete()
        }
    }

    fn registered() -> Embedded {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let master = MasterKey::from_hex(&"ab".repeat(32)).unwrap();
        let policy = Policy {
            ksf_floor: TINY,
            ..Policy::default()
        };
        let t = Embedded {
            vault: Vault::new(store, &master, policy).unwrap(),
            account: "alice".into(),
        };
        let key = BackupKey::from_bytes([3; 32]);
        register(&t, "alice", b"pw", &key, TINY, None, None).unwrap();
        t
    }

    /// Found while building the `client_response_login_start` fuzz target: a vault (or anyone
    /// answering in its place) could name Argon2id parameters without bound, and the device stretched the
    /// password with them before OPAQUE had authenticated the vault: 256 GiB of memory (an
    /// allocation failure aborts the process) or 2^32 passes (a hang).
    #[test]
    fn a_vault_cannot_ask_for_unbounded_argon2id_parameters() {
        for asked in [
            KsfParams {
                m_kib: (1 << 28) - 1,
                t: 1,
                p: 1,
            },
            KsfParams {
                m_kib: 8,
                t: u32::MAX,
                p: 1,
            },
            KsfParams {
                m_kib: 1 << 20,
                t: 1,
                p: 1 << 20,
            },
        ] {
            let t = AsksFor(registered(), asked);
            match recover(&t, "alice", b"pw", &TINY) {
                Err(ClientError::CostlyKsf(k)) => assert_eq!(k, asked),
                Err(other) => panic!("{asked:?}: {other}"),
                Ok(_) => panic!("{asked:?} was run"),
            }
        }
        // Parameters inside the ceiling still log in.
        let t = AsksFor(registered(), TINY);
        assert!(recover(&t, "alice", b"pw", &TINY).is_ok());
    }
}
