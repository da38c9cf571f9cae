/// What the vault answers instead of a result. Each maps to one HTTP status in the API.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("wrong password; {guesses_left} guesses left")]
    WrongPassword { guesses_left: u32 },
    #[error("this password backup is gone: its guesses were used up and the vault destroyed it")]
    Gone,
    #[error("no password is registered for this account")]
    NotRegistered,
    #[error("a password is already registered for this account")]
    AlreadyRegistered,
    #[error("the login is unknown, already used, or expired; start again")]
    LoginExpired,
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the head register only moves forward (it is at {current})")]
    HeadBehind { current: u64 },
    #[error("storage error: {0}")]
    Store(String),
}

impl From<rusqlite::Error> for VaultError {
    fn from(e: rusqlite::Error) -> Self {
        VaultError::Store(e.to_string())
    }
}
