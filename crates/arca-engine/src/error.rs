use std::path::PathBuf;

use arca_storage::StorageError;

/// What went wrong, in terms a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("there is no arca repository at {0}: it has no `config` file")]
    NoRepository(String),
    #[error("a repository already exists at {0}")]
    AlreadyExists(String),
    #[error("this key does not open this backup")]
    WrongKey,
    #[error("{object} is damaged: {reason}")]
    Damaged { object: String, reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the restore target is full (writing {}): {restored} files were restored completely and are intact; free some space and run the restore again",
        path.display()
    )]
    TargetFull { path: PathBuf, restored: u64 },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

impl EngineError {
    pub(crate) fn damaged(object: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        EngineError::Damaged {
            object: object.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io {
            path: path.into(),
            source,
        }
    }

    /// True when the repository's contents are at fault (as opposed to the key, the network or
    /// the local machine).
    pub fn is_damage(&self) -> bool {
        matches!(self, EngineError::Damaged { .. })
    }
}
