//! Repository URLs.

use opendal::{Operator, services};

use crate::StorageError;

/// Where a repository lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local folder (also the stand-in for the cloud by default).
    File(std::path::PathBuf),
    /// In-process memory, for tests.
    Memory,
}

impl StorageUrl {
    pub fn parse(url: &str) -> Result<Self, StorageError> {
        if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(StorageError::Url(format!(
                    "{url}: a file URL needs an absolute path, like file:///home/me/backup"
                )));
            }
            return Ok(StorageUrl::File(rest.into()));
        }
        if url == "memory://" || url == "memory:" {
            return Ok(StorageUrl::Memory);
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(StorageError::Url(format!(
                "{url}: storage '{scheme}' is not supported by this build; use a folder path or file:///path"
            )));
        }
        let p = std::path::Path::new(url);
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| StorageError::Url(format!("cannot resolve {url}: {e}")))?
                .join(p)
        };
        Ok(StorageUrl::File(abs))
    }

    pub(crate) fn operator(&self) -> Result<Operator, StorageError> {
        let setup = |e: opendal::Error| StorageError::Setup(format!("cannot open {self}: {e}"));
        match self {
            StorageUrl::File(path) => {
                std::fs::create_dir_all(path).map_err(|e| {
                    StorageError::Setup(format!(
                        "cannot create the repository folder {}: {e}",
                        path.display()
                    ))
                })?;
                let root = path.to_string_lossy();
                let tmp = path.join(".tmp");
                let b = services::Fs::default()
                    .root(&root)
                    .atomic_write_dir(&tmp.to_string_lossy());
                Operator::new(b).map_err(setup)
            }
            StorageUrl::Memory => Operator::new(services::Memory::default()).map_err(setup),
        }
    }
}

impl std::fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageUrl::File(p) => write!(f, "file://{}", p.display()),
            StorageUrl::Memory => f.write_str("memory://"),
        }
    }
}
