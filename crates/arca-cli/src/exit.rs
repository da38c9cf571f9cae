//! Exit codes and how errors are shown.

use arca_engine::EngineError;

pub const OK: i32 = 0;
pub const FAILED: i32 = 1;
pub const USAGE: i32 = 2;
pub const WARNINGS: i32 = 3;
pub const WRONG_KEY: i32 = 4;
pub const DAMAGED: i32 = 5;
pub const NOT_SET_UP: i32 = 6;

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
                        "run `arca enable --key` to create one, or point --repo / ARCA_REPO at an existing backup",
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
    let message = err
        .chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    if json {
        let v = serde_json::json!({ "error": message, "hint": hint, "exit_code": code });
        println!("{v}");
    } else {
        eprintln!("arca: error: {message}");
        if let Some(h) = hint {
            eprintln!("arca: {h}");
        }
    }
    code
}
