use crate::StorageUrl;

/// A storage operation that failed, naming the object and what the service said.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    Url(String),
    #[error("{0}")]
    Setup(String),
    #[error("{path} does not exist in the repository at {url}")]
    NotFound { url: String, path: String },
    #[error("permission denied for {op} of {path} at {url}: {detail}")]
    PermissionDenied {
        url: String,
        path: String,
        op: &'static str,
        detail: String,
    },
    #[error("{path}: asked for {wanted} bytes, the storage returned {got} (the file is truncated)")]
    ShortRead { path: String, wanted: u64, got: u64 },
    #[error("{op} of {path} at {url} failed: {detail}")]
    Other {
        url: String,
        path: String,
        op: &'static str,
        detail: String,
        temporary: bool,
    },
}

impl StorageError {
    pub(crate) fn from_opendal(
        url: &StorageUrl,
        path: &str,
        op: &'static str,
        e: opendal::Error,
    ) -> Self {
        tracing::debug!("{op} of {path} at {url}: {e}");
        let url = url.to_string();
        let path = path.to_string();
        match e.kind() {
            opendal::ErrorKind::NotFound => StorageError::NotFound { url, path },
            opendal::ErrorKind::PermissionDenied => StorageError::PermissionDenied {
                url,
                path,
                op,
                detail: describe(&e),
            },
            _ => StorageError::Other {
                url,
                path,
                op,
                temporary: e.is_temporary(),
                detail: describe(&e),
            },
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

/// What went wrong, in a line: the service's answer and the causes under it (OpenDAL's own
/// rendering lists its context map but stops at the first cause, which for a network error is
/// just "error sending request").
fn describe(e: &opendal::Error) -> String {
    let mut s = match e.kind() {
        opendal::ErrorKind::Unexpected => String::new(),
        k => format!("{k}: "),
    };
    s.push_str(e.message());
    append_causes(&mut s, std::error::Error::source(e));
    s
}

/// Appends `": cause"` for `cause` and each error under it whose message `s` does not hold yet.
pub(crate) fn append_causes(s: &mut String, mut cause: Option<&(dyn std::error::Error + 'static)>) {
    while let Some(c) = cause {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cause = c.source();
    }
}
