//! Exit codes and how errors are shown.

use arca_client::ClientError;
use arca_engine::EngineError;
use arca_vault::VaultError;

pub const OK: i32 = 0;
pub const FAILED: i32 = 1;
pub const USAGE: i32 = 2;
pub const WARNINGS: i32 = 3;
pub const WRONG_KEY: i32 = 4;
pub const DAMAGED: i32 = 5;
pub const NOT_SET_UP: i32 = 6;
pub const GONE: i32 = 7;

/// The repository is older than the vault's head register says it should be.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RolledBack(pub String);

/// An error in what the user asked for.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// This device or location is not set up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotSetUp(pub String);

fn classify(err: &anyhow::Error) -> (i32, Option<&'static str>) {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            return match e {
                ClientError::WrongPassword { .. } => (
                    WRONG_KEY,
                    Some(
                        "every wrong password spends one guess; when none are left the password backup is destroyed. The 64-digit key (ARCA_KEY) opens the backup without spending guesses",
                    ),
                ),
                ClientError::Gone => (GONE, None),
                ClientError::NotRegistered => (
                    NOT_SET_UP,
                    Some("`arca enable --password` sets a password for this backup"),
                ),
                _ => (
                    FAILED,
                    Some(
                        "check that the key vault (ARCA_VAULT) is the one this backup was enabled with and that it is reachable",
                    ),
                ),
            };
        }
        if let Some(e) = cause.downcast_ref::<VaultError>() {
            return match e {
                VaultError::WrongPassword { .. } => (WRONG_KEY, None),
                VaultError::Gone => (GONE, None),
                VaultError::NotRegistered => (NOT_SET_UP, None),
                _ => (FAILED, None),
            };
        }
        if cause.downcast_ref::<RolledBack>().is_some() {
            return (
                DAMAGED,
                Some(
                    "restore from the storage's own version history if it has one, or run with --allow-rollback to use this older state anyway",
                ),
            );
        }
        if let Some(e) = cause.downcast_ref::<EngineError>() {
            return match e {
                EngineError::WrongKey => (
                    WRONG_KEY,
                    Some(
                        "check the 64-digit key you typed or set in ARCA_KEY / ARCA_KEY_FILE; it is the key shown when backup was enabled for this repository",
                    ),
                ),
                EngineError::Damaged { .. } => (
                    DAMAGED,
                    Some(
                        "run `arca check --read-data` to see everything that is damaged; files that do not use the damaged object can still be restored with --include",
                    ),
                ),
                EngineError::NoRepository(_) => (
                    NOT_SET_UP,
                    Some(
                        "run `arca enable --key` (or `--password`) to create one, or point --repo / ARCA_REPO at an existing backup",
                    ),
                ),
                EngineError::TargetFull { .. } => (FAILED, None),
                EngineError::Storage(_) => (
                    FAILED,
                    Some(
                        "check that the storage is reachable and writable, then run the command again; nothing already stored is lost",
                    ),
                ),
                _ => (FAILED, None),
            };
        }
        if cause.downcast_ref::<arca_crypto::DigitsError>().is_some()
            || cause.downcast_ref::<UsageError>().is_some()
        {
            return (USAGE, None);
        }
        if cause.downcast_ref::<NotSetUp>().is_some() {
            return (NOT_SET_UP, None);
        }
    }
    (FAILED, None)
}

/// Prints the error and returns the exit code.
pub fn report(err: &anyhow::Error, json: bool) -> i32 {
    let (code, hint) = classify(err);
    // Errors that show their cause in their own text (`path: cause`) also return it as their
    // source; print each cause once.
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.ends_with(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    if json {
        let guesses_left = err
            .chain()
            .find_map(|c| match c.downcast_ref::<ClientError>() {
                Some(ClientError::WrongPassword { guesses_left }) => Some(*guesses_left),
                Some(ClientError::Gone) => Some(0),
                _ => None,
            });
        let mut v = serde_json::json!({ "error": message, "hint": hint, "exit_code": code });
        if let Some(n) = guesses_left {
            v["guesses_left"] = n.into();
        }
        println!("{v}");
    } else {
        eprintln!("arca: error: {message}");
        if let Some(h) = hint {
            eprintln!("arca: {h}");
        }
    }
    code
}
