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
    /// The account token is missing, malformed, expired, or from no configured issuer.
    #[error("the vault did not accept the account token: {0}")]
    Unauthorized(String),
    /// Too many requests for this account or from this address.
    #[error("too many requests; try again in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// The vault could not be reached, or answered with something that is not the API.
    #[error("the vault is unavailable: {0}")]
    Unavailable(String),
}

impl From<rusqlite::Error> for VaultError {
    fn from(e: rusqlite::Error) -> Self {
        VaultError::Store(e.to_string())
    }
}
