//! What a vault stores, behind a trait so SQLite and PostgreSQL serve alike. Every
//! method that changes a guess count or a record is one atomic step in the database.

use crate::VaultError;
use crate::suite::KsfParams;
use crate::wire::Head;

/// One account's registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The OPAQUE password file (`ServerRegistration`).
    pub password_file: Vec<u8>,
    pub envelope: Vec<u8>,
    pub ksf: KsfParams,
    pub guess_limit: u32,
    pub guesses_left: u32,
    pub key_proof_hash: Option<[u8; 32]>,
}

/// The outcome of charging one guess at a login start.
#[derive(Debug)]
pub enum Charge {
    /// A guess was taken; `left` remain.
    Charged { left: u32, record: Record },
    /// No guesses were left: the record has now been destroyed.
    Exhausted,
    /// The record was destroyed earlier.
    Gone,
    /// No record: a phantom counter was charged so the answer looks like a real one.
    Unknown { left: u32 },
}

/// A login between its start and finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingLogin {
    pub account: String,
    /// Serialized OPAQUE `ServerLogin` state.
    pub state: Vec<u8>,
    /// Unix seconds after which the finish is refused.
    pub expires: i64,
    /// False for a phantom login of an unknown account.
    pub known: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Active {
        guess_limit: u32,
        guesses_left: u32,
    },
    Gone,
    /// No record; `phantom_left` is the phantom counter of earlier login starts, if any.
    Unknown {
        phantom_left: Option<u32>,
    },
}

pub type Result<T> = std::result::Result<T, VaultError>;

pub trait RecordStore: Send + Sync {
    /// The sealed OPAQUE `ServerSetup`, if one was stored.
    fn server_setup(&self) -> Result<Option<Vec<u8>>>;
    /// Stores the sealed setup unless one exists; returns the one that is stored.
    fn init_server_setup(&self, sealed: &[u8]) -> Result<Vec<u8>>;

    fn status(&self, account: &str) -> Result<Status>;
    /// Inserts a new record; `AlreadyRegistered` if the account has one.
    fn insert(&self, account: &str, record: &Record) -> Result<()>;
    /// Replaces an existing record's credentials in one step (password change).
    fn replace(&self, account: &str, record: &Record) -> Result<()>;
    fn record(&self, account: &str) -> Result<Option<Record>>;
    /// Charges one guess, atomically, before any answer is made.
    fn charge(&self, account: &str, phantom_limit: u32) -> Result<Charge>;
    /// A verified login: the count goes back to the limit.
    fn reset(&self, account: &str) -> Result<()>;
    /// Overwrites and deletes the record and leaves a tombstone saying it is gone.
    fn destroy(&self, account: &str) -> Result<()>;
    /// Removes the record at its owner's request (no tombstone). Returns whether one existed.
    fn delete(&self, account: &str) -> Result<bool>;
    /// Destroys the record if its guesses are used up (after a failed or abandoned last login).
    fn destroy_if_exhausted(&self, account: &str) -> Result<bool>;

    fn put_login(&self, id: &[u8], login: &PendingLogin) -> Result<()>;
    /// Removes and returns the account's pending login `id`: each can be finished once.
    fn take_login(&self, id: &[u8], account: &str) -> Result<Option<PendingLogin>>;

    fn put_ticket(&self, hash: &[u8; 32], account: &str, expires: i64) -> Result<()>;
    /// Removes a change ticket; true if it existed for this account and had not expired.
    fn take_ticket(&self, hash: &[u8; 32], account: &str, now: i64) -> Result<bool>;

    fn head(&self, account: &str) -> Result<Option<Head>>;
    /// Moves the head forward; refuses a lower sequence number.
    fn set_head(&self, account: &str, head: &Head) -> Result<()>;

    /// Appends to the audit log (never secrets).
    fn audit(&self, account: &str, event: &str, detail: &str) -> Result<()>;

    /// Checks that the database answers (readiness).
    fn ping(&self) -> Result<()>;
}
