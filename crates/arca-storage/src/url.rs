//! Repository URLs.
//!
//! | URL | storage |
//! |---|---|
//! | `/path`, `file:///path` | a local folder |
//! | `s3://bucket/prefix` | an S3 bucket (AWS or any S3-compatible server) |
//! | `webdav://[user@]host[:port]/path`, `webdavs://...` | a WebDAV server (http, https) |
//! | `sftp://[user@]host[:port]/path` | a folder on an SSH server |
//! | `gdrive://folder`, `onedrive://folder`, `dropbox://folder` | a folder in a personal cloud drive |
//! | `memory://` | in-process memory (tests) |
//!
//! A URL never holds a secret: it is shown in messages and remembered by the device.

use std::path::PathBuf;

use crate::StorageError;

/// Where a repository lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local folder (also the stand-in for the cloud by default).
    File(PathBuf),
    /// In-process memory, for tests.
    Memory,
    /// An S3 bucket and a key prefix ("" for the whole bucket).
    S3 { bucket: String, prefix: String },
    /// A WebDAV server; `host` may carry a port.
    WebDav {
        tls: bool,
        user: Option<String>,
        host: String,
        path: String,
    },
    /// An SSH server's folder.
    Sftp {
        user: Option<String>,
        host: String,
        port: Option<u16>,
        path: String,
    },
    /// A folder in Google Drive.
    Gdrive(String),
    /// A folder in OneDrive.
    OneDrive(String),
    /// A folder in Dropbox.
    Dropbox(String),
}

fn bad(url: &str, why: impl std::fmt::Display) -> StorageError {
    StorageError::Url(format!("{url}: {why}"))
}

/// `[user@]host[:port]` and the path after it.
struct Parts<'a> {
    user: Option<&'a str>,
    host: &'a str,
    port: Option<u16>,
    path: &'a str,
}

fn split<'a>(url: &str, rest: &'a str, secret_var: &str) -> Result<Parts<'a>, StorageError> {
    if rest.contains(['?', '#']) {
        return Err(bad(
            url,
            "options do not go in the URL; use environment variables or the storage config file (see README)",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if let Some(u) = user {
        if u.contains(':') {
            return Err(bad(
                url,
                format!(
                    "a password in the URL would be shown in messages and saved with the device's settings; remove it and set {secret_var} (or put it in the storage config file)"
                ),
            ));
        }
        if u.is_empty() {
            return Err(bad(url, "the user name before @ is empty"));
        }
    }
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        // [v6]:port
        let (h, after) = h
            .split_once(']')
            .ok_or_else(|| bad(url, "unclosed [ in the host"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad(url, "unexpected text after the host")),
        };
        (&hostport[..h.len() + 2], port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(bad(url, "the host name is missing"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(url, format!("{p:?} is not a port number")))?,
        ),
    };
    Ok(Parts {
        user,
        host,
        port,
        path,
    })
}

/// `a//b/` -> `a/b`.
fn clean_path(p: &str) -> String {
    p.split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

fn drive_folder(url: &str, rest: &str, name: &str, scheme: &str) -> Result<String, StorageError> {
    if rest.contains(['?', '#', '@']) {
        return Err(bad(
            url,
            format!(
                "a {name} URL is {scheme}://folder; tokens go in environment variables or the storage config file (see README)"
            ),
        ));
    }
    let folder = clean_path(rest);
    if folder.is_empty() {
        return Err(bad(
            url,
            format!("name the folder to keep the backup in, like {scheme}://arca-backup"),
        ));
    }
    Ok(folder)
}

impl StorageUrl {
    pub fn parse(url: &str) -> Result<Self, StorageError> {
        if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad(
                    url,
                    "a file URL needs an absolute path, like file:///home/me/backup",
                ));
            }
            return Ok(StorageUrl::File(rest.into()));
        }
        if url == "memory://" || url == "memory:" {
            return Ok(StorageUrl::Memory);
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            if rest.contains(['?', '#', '@']) {
                return Err(bad(
                    url,
                    "an S3 URL is s3://bucket/prefix; the endpoint, region and credentials go in environment variables or the storage config file (see README)",
                ));
            }
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                })
                && !bucket.starts_with(['-', '.'])
                && !bucket.ends_with(['-', '.']);
            if !valid {
                return Err(bad(
                    url,
                    format!(
                        "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, dots and dashes)"
                    ),
                ));
            }
            return Ok(StorageUrl::S3 {
                bucket: bucket.into(),
                prefix: clean_path(prefix),
            });
        }
        for (scheme, tls) in [("webdav://", false), ("webdavs://", true)] {
            if let Some(rest) = url.strip_prefix(scheme) {
                let p = split(url, rest, "ARCA_WEBDAV_PASSWORD")?;
                let host = match p.port {
                    Some(port) => format!("{}:{port}", p.host),
                    None => p.host.to_string(),
                };
                return Ok(StorageUrl::WebDav {
                    tls,
                    user: p.user.map(String::from),
                    host,
                    path: clean_path(p.path),
                });
            }
        }
        if let Some(rest) = url.strip_prefix("sftp://") {
            let p = split(url, rest, "ARCA_SFTP_KEY (a key file)")?;
            let path = clean_path(p.path);
            if path.is_empty() {
                return Err(bad(
                    url,
                    "name the folder on the server, like sftp://me@host/srv/backup",
                ));
            }
            return Ok(StorageUrl::Sftp {
                user: p.user.map(String::from),
                host: p.host.to_string(),
                port: p.port,
                path: format!("/{path}"),
            });
        }
        if let Some(rest) = url.strip_prefix("gdrive://") {
            return Ok(StorageUrl::Gdrive(drive_folder(
                url,
                rest,
                "Google Drive",
                "gdrive",
            )?));
        }
        if let Some(rest) = url.strip_prefix("onedrive://") {
            return Ok(StorageUrl::OneDrive(drive_folder(
                url, rest, "OneDrive", "onedrive",
            )?));
        }
        if let Some(rest) = url.strip_prefix("dropbox://") {
            return Ok(StorageUrl::Dropbox(drive_folder(
                url, rest, "Dropbox", "dropbox",
            )?));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(bad(
                url,
                format!(
                    "storage '{scheme}' is not supported; use a folder path, file://, s3://, webdav://, webdavs://, sftp://, gdrive://, onedrive:// or dropbox://"
                ),
            ));
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

    /// A short name of the kind of storage, for messages and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageUrl::File(_) => "file",
            StorageUrl::Memory => "memory",
            StorageUrl::S3 { .. } => "s3",
            StorageUrl::WebDav { .. } => "webdav",
            StorageUrl::Sftp { .. } => "sftp",
            StorageUrl::Gdrive(_) => "gdrive",
            StorageUrl::OneDrive(_) => "onedrive",
            StorageUrl::Dropbox(_) => "dropbox",
        }
    }

    /// Whether operations go over HTTP (and so are counted request by request).
    pub(crate) fn is_http(&self) -> bool {
        !matches!(
            self,
            StorageUrl::File(_) | StorageUrl::Memory | StorageUrl::Sftp { .. }
        )
    }
}

impl std::fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageUrl::File(p) => write!(f, "file://{}", p.display()),
            StorageUrl::Memory => f.write_str("memory://"),
            StorageUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StorageUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            StorageUrl::WebDav {
                tls,
                user,
                host,
                path,
            } => {
                let scheme = if *tls { "webdavs" } else { "webdav" };
                let user = user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
                write!(f, "{scheme}://{user}{host}/{path}")
            }
            StorageUrl::Sftp {
                user,
                host,
                port,
                path,
            } => {
                let user = user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                write!(f, "sftp://{user}{host}{port}{path}")
            }
            StorageUrl::Gdrive(p) => write!(f, "gdrive://{p}"),
            StorageUrl::OneDrive(p) => write!(f, "onedrive://{p}"),
            StorageUrl::Dropbox(p) => write!(f, "dropbox://{p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> StorageUrl {
        StorageUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }
    fn err(url: &str) -> String {
        StorageUrl::parse(url).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_kind() {
        assert_eq!(ok("file:///srv/b"), StorageUrl::File("/srv/b".into()));
        assert_eq!(ok("/srv/b"), StorageUrl::File("/srv/b".into()));
        assert_eq!(ok("memory://"), StorageUrl::Memory);
        assert_eq!(
            ok("s3://my-bucket/a//b/"),
            StorageUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            ok("s3://my.bucket"),
            StorageUrl::S3 {
                bucket: "my.bucket".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            ok("webdav://me@dav.example:8080/remote.php/dav/files/me/arca"),
            StorageUrl::WebDav {
                tls: false,
                user: Some("me".into()),
                host: "dav.example:8080".into(),
                path: "remote.php/dav/files/me/arca".into()
            }
        );
        assert_eq!(
            ok("webdavs://dav.example/"),
            StorageUrl::WebDav {
                tls: true,
                user: None,
                host: "dav.example".into(),
                path: "".into()
            }
        );
        assert_eq!(
            ok("sftp://me@[::1]:2222/srv/backup"),
            StorageUrl::Sftp {
                user: Some("me".into()),
                host: "[::1]".into(),
                port: Some(2222),
                path: "/srv/backup".into()
            }
        );
        assert_eq!(
            ok("gdrive://Backups/arca"),
            StorageUrl::Gdrive("Backups/arca".into())
        );
        assert_eq!(ok("onedrive://arca"), StorageUrl::OneDrive("arca".into()));
        assert_eq!(ok("dropbox://arca/"), StorageUrl::Dropbox("arca".into()));
    }

    #[test]
    fn display_round_trips() {
        for u in [
            "file:///srv/b",
            "memory://",
            "s3://bucket/pre/fix",
            "s3://bucket",
            "webdav://me@host:8080/dav",
            "webdavs://host/dav",
            "sftp://me@host:22/srv/b",
            "sftp://host/srv/b",
            "gdrive://arca",
            "onedrive://a/b",
            "dropbox://arca",
        ] {
            assert_eq!(ok(u).to_string(), u);
            assert_eq!(ok(&ok(u).to_string()), ok(u));
        }
    }

    #[test]
    fn refuses_secrets_and_nonsense() {
        assert!(err("webdav://me:pw@host/x").contains("ARCA_WEBDAV_PASSWORD"));
        assert!(err("sftp://me:pw@host/x").contains("password in the URL"));
        assert!(err("s3://key:secret@bucket/x").contains("environment variables"));
        assert!(err("s3://Bad_Bucket").contains("bucket name"));
        assert!(err("s3://ab").contains("bucket name"));
        assert!(err("webdav://host:99999/x").contains("port"));
        assert!(err("webdav:///x").contains("host"));
        assert!(err("sftp://host").contains("folder"));
        assert!(err("gdrive://").contains("folder"));
        assert!(err("gdrive://x?token=1").contains("environment"));
        assert!(err("ftp://host/x").contains("not supported"));
        assert!(err("file://relative").contains("absolute"));
    }
}
