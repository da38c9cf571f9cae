//! The vault's rules, independent of transport.
//!
//! - A guess is charged when a login start is answered, atomically in the store, before the
//!   answer exists. A malformed request is refused before anything is charged.
//! - A pending login is single-use and expires; a verified finish resets the count and releases
//!   the envelope sealed under a key derived from the OPAQUE session key.
//! - When the guesses are used up, the record is destroyed for good.
//! - Unknown accounts get answers made the same way as real ones, with phantom counters.

use std::sync::Arc;

use arca_crypto::AeadKey;
use hkdf::Hkdf;
use opaque_ke::{
    CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup,
};
use rand_core::{OsRng, RngCore};
use sha2::Sha512;
use subtle::ConstantTimeEq;

use crate::VaultError;
use crate::metrics::metrics;
use crate::setup::{MasterKey, load_or_create};
use crate::store::{Charge, PendingLogin, Record, RecordStore, Status};
use crate::suite::{KsfParams, Suite};
use crate::wire::*;

/// What an operator may tune.
#[derive(Clone, Debug)]
pub struct Policy {
    pub default_guess_limit: u32,
    pub min_guess_limit: u32,
    pub max_guess_limit: u32,
    /// Seconds a login may take between start and finish.
    pub login_ttl: i64,
    /// Seconds a change ticket stays valid.
    pub ticket_ttl: i64,
    /// The weakest Argon2id parameters a registration may use.
    pub ksf_floor: KsfParams,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default_guess_limit: 10,
            min_guess_limit: 1,
            max_guess_limit: 20,
            login_ttl: 120,
            ticket_ttl: 300,
            ksf_floor: KsfParams::FLOOR,
        }
    }
}

pub struct Vault {
    store: Arc<dyn RecordStore>,
    setup: ServerSetup<Suite>,
    policy: Policy,
}

type Result<T> = std::result::Result<T, VaultError>;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The key that seals the envelope on its way out: HKDF-SHA512 of the OPAQUE session key.
pub fn release_key(session_key: &[u8]) -> AeadKey {
    let hk = Hkdf::<Sha512>::new(None, session_key);
    let mut k = [0u8; 32];
    hk.expand(b"arca v1 envelope release", &mut k)
        .expect("32 bytes is a valid HKDF output length");
    AeadKey::new(arca_crypto::BackupKey::from_bytes(k).derive("arca v1 envelope release key"))
}

/// Account ids: 1 to 128 characters from `A-Z a-z 0-9 . _ @ + -`.
pub fn check_account(account: &str) -> Result<()> {
    let ok = !account.is_empty()
        && account.len() <= 128
        && account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(VaultError::BadRequest(
            "account ids are 1-128 characters of A-Z a-z 0-9 . _ @ + -".into(),
        ))
    }
}

fn bad(what: &str) -> impl Fn(opaque_ke::errors::ProtocolError) -> VaultError + '_ {
    move |e| VaultError::BadRequest(format!("malformed {what}: {e}"))
}

impl Vault {
    pub fn new(store: Arc<dyn RecordStore>, master: &MasterKey, policy: Policy) -> Result<Self> {
        let setup = load_or_create(store.as_ref(), master)?;
        Ok(Vault {
            store,
            setup,
            policy,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn store(&self) -> &Arc<dyn RecordStore> {
        &self.store
    }

    pub fn status(&self, account: &str) -> Result<AccountStatus> {
        check_account(account)?;
        Ok(match self.store.status(account)? {
            Status::Active {
                guess_limit,
                guesses_left,
            } => AccountStatus {
                registered: true,
                gone: false,
                guesses_left: Some(guesses_left),
                guess_limit: Some(guess_limit),
            },
            Status::Gone => AccountStatus {
                registered: false,
                gone: true,
                guesses_left: Some(0),
                guess_limit: None,
            },
            Status::Unknown { .. } => AccountStatus {
                registered: false,
                gone: false,
                guesses_left: None,
                guess_limit: None,
            },
        })
    }

    pub fn registration_start(
        &self,
        account: &str,
        req: &RegistrationStartRequest,
    ) -> Result<RegistrationStartResponse> {
        check_account(account)?;
        let request = RegistrationRequest::<Suite>::deserialize(&req.request)
            .map_err(bad("registration request"))?;
        let result = ServerRegistration::<Suite>::start(&self.setup, request, account.as_bytes())
            .map_err(bad("registration request"))?;
        Ok(RegistrationStartResponse {
            response: result.message.serialize().to_vec(),
        })
    }

    pub fn registration_finish(
        &self,
        account: &str,
        req: &RegistrationFinishRequest,
    ) -> Result<RegistrationFinishResponse> {
        check_account(account)?;
        let upload = RegistrationUpload::<Suite>::deserialize(&req.upload)
            .map_err(bad("registration upload"))?;
        let limit = req.guess_limit.unwrap_or(self.policy.default_guess_limit);
        if !(self.policy.min_guess_limit..=self.policy.max_guess_limit).contains(&limit) {
            return Err(VaultError::BadRequest(format!(
                "the guess limit must be between {} and {}",
                self.policy.min_guess_limit, self.policy.max_guess_limit
            )));
        }
        if !req.ksf.meets_floor(&self.policy.ksf_floor) || req.ksf.argon2().is_err() {
            return Err(VaultError::BadRequest(format!(
                "Argon2id parameters {:?} are weaker than this vault accepts ({:?})",
                req.ksf, self.policy.ksf_floor
            )));
        }
        if req.envelope.is_empty() || req.envelope.len() > 1024 {
            return Err(VaultError::BadRequest(
                "the envelope must be 1 to 1024 bytes".into(),
            ));
        }
        let key_proof_hash =
            match &req.key_proof_hash {
                None => None,
                Some(h) => Some(<[u8; 32]>::try_from(h.as_slice()).map_err(|_| {
                    VaultError::BadRequest("key_proof_hash must be 32 bytes".into())
                })?),
            };
        let record = Record {
            password_file: ServerRegistration::<Suite>::finish(upload)
                .serialize()
                .to_vec(),
            envelope: req.envelope.clone(),
            ksf: req.ksf,
            guess_limit: limit,
            guesses_left: limit,
            key_proof_hash,
        };
        match &req.change {
            None => self.store.insert(account, &record)?,
            Some(ChangeProof::Ticket(ticket)) => {
                let hash = blake3::hash(ticket);
                if !self.store.take_ticket(hash.as_bytes(), account, now())? {
                    return Err(VaultError::Forbidden(
                        "the change ticket is unknown, used or expired; log in again".into(),
                    ));
                }
                self.store.replace(account, &record)?;
            }
            Some(ChangeProof::KeyProof(proof)) => {
                let current = self
                    .store
                    .record(account)?
                    .ok_or(VaultError::NotRegistered)?;
                let ok = current
                    .key_proof_hash
                    .is_some_and(|h| bool::from(h.ct_eq(blake3::hash(proof).as_bytes())));
                if !ok {
                    self.store
                        .audit(account, "password change", "refused: wrong key proof")?;
                    return Err(VaultError::Forbidden(
                        "the 64-digit key does not match this password backup".into(),
                    ));
                }
                self.store.replace(account, &record)?;
            }
        }
        Ok(RegistrationFinishResponse {
            guess_limit: limit,
            guesses_left: limit,
        })
    }

    pub fn login_start(
        &self,
        account: &str,
        req: &LoginStartRequest,
    ) -> Result<LoginStartResponse> {
        check_account(account)?;
        // Parse before charging: a malformed request costs no guess.
        let request = CredentialRequest::<Suite>::deserialize(&req.request)
            .map_err(bad("credential request"))?;
        let (left, file, ksf, known) = match self
            .store
            .charge(account, self.policy.default_guess_limit)?
        {
            Charge::Charged { left, record } => {
                metrics()
                    .guesses_charged
                    .with_label_values(&["record"])
                    .inc();
                let file = ServerRegistration::<Suite>::deserialize(&record.password_file)
                    .map_err(|e| {
                        VaultError::Store(format!("stored password file is damaged: {e}"))
                    })?;
                (left, Some(file), record.ksf, true)
            }
            Charge::Exhausted => {
                metrics().records_destroyed.inc();
                return Err(VaultError::Gone);
            }
            Charge::Gone => return Err(VaultError::Gone),
            Charge::Unknown { left } => {
                metrics()
                    .guesses_charged
                    .with_label_values(&["unknown"])
                    .inc();
                (left, None, KsfParams::default(), false)
            }
        };
        let result = ServerLogin::start(
            &mut OsRng,
            &self.setup,
            file,
            request,
            account.as_bytes(),
            ServerLoginParameters::default(),
        )
        .map_err(bad("credential request"))?;
        let mut login_id = vec![0u8; 16];
        OsRng.fill_bytes(&mut login_id);
        self.store.put_login(
            &login_id,
            &PendingLogin {
                account: account.to_string(),
                state: result.state.serialize().to_vec(),
                expires: now() + self.policy.login_ttl,
                known,
            },
        )?;
        Ok(LoginStartResponse {
            login_id,
            response: result.message.serialize().to_vec(),
            guesses_left: left,
            ksf,
        })
    }

    pub fn login_finish(
        &self,
        account: &str,
        req: &LoginFinishRequest,
    ) -> Result<LoginFinishResponse> {
        check_account(account)?;
        let Some(pending) = self.store.take_login(&req.login_id, account)? else {
            return Err(VaultError::LoginExpired);
        };
        if pending.expires < now() {
            if self.store.destroy_if_exhausted(account)? {
                metrics().records_destroyed.inc();
            }
            return Err(VaultError::LoginExpired);
        }
        let verified = CredentialFinalization::<Suite>::deserialize(&req.finalization)
            .ok()
            .and_then(|fin| {
                let state = ServerLogin::<Suite>::deserialize(&pending.state).ok()?;
                state.finish(fin, ServerLoginParameters::default()).ok()
            });
        match verified {
            Some(done) if pending.known => {
                self.store.reset(account)?;
                metrics()
                    .logins_finished
                    .with_label_values(&["success"])
                    .inc();
                let record = self.store.record(account)?.ok_or(VaultError::Gone)?;
                let sealed_envelope = arca_crypto::seal(
                    &release_key(&done.session_key),
                    &req.login_id,
                    &record.envelope,
                );
                let mut ticket = vec![0u8; 32];
                OsRng.fill_bytes(&mut ticket);
                self.store.put_ticket(
                    blake3::hash(&ticket).as_bytes(),
                    account,
                    now() + self.policy.ticket_ttl,
                )?;
                Ok(LoginFinishResponse {
                    sealed_envelope,
                    change_ticket: ticket,
                    guesses_left: record.guesses_left,
                })
            }
            _ => {
                self.store.audit(account, "login finish", "failure")?;
                metrics()
                    .logins_finished
                    .with_label_values(&["failure"])
                    .inc();
                if pending.known && self.store.destroy_if_exhausted(account)? {
                    metrics().records_destroyed.inc();
                    return Err(VaultError::Gone);
                }
                match self.store.status(account)? {
                    Status::Active { guesses_left, .. } => {
                        Err(VaultError::WrongPassword { guesses_left })
                    }
                    Status::Unknown { phantom_left } => Err(VaultError::WrongPassword {
                        guesses_left: phantom_left.unwrap_or(self.policy.default_guess_limit),
                    }),
                    Status::Gone => Err(VaultError::Gone),
                }
            }
        }
    }

    pub fn head(&self, account: &str) -> Result<Option<Head>> {
        check_account(account)?;
        self.store.head(account)
    }

    pub fn set_head(&self, account: &str, head: &Head) -> Result<()> {
        check_account(account)?;
        if head.mac.len() != 32 {
            return Err(VaultError::BadRequest(
                "the head MAC must be 32 bytes".into(),
            ));
        }
        // The stores keep the sequence number as a signed 64-bit integer: a larger one would be
        // stored negative, and the register could then be moved back.
        if i64::try_from(head.seq).is_err() {
            return Err(VaultError::BadRequest(format!(
                "the head sequence number must be at most {}",
                i64::MAX
            )));
        }
        self.store.set_head(account, head)
    }

    /// Deletes the account's record and head at the account holder's request.
    pub fn delete(&self, account: &str) -> Result<bool> {
        check_account(account)?;
        self.store.delete(account)
    }
}
