//! One OpenDAL operator per kind of storage, configured from the URL and the [`Settings`].

use opendal::{Operator, services};

use crate::settings::{Settings, Transfers, env_name};
use crate::{StorageError, StorageUrl};

/// Applies an OAuth token to a Google Drive, OneDrive or Dropbox builder (three builder types
/// with the same methods and no common trait).
macro_rules! with_token {
    ($b:expr, $token:expr) => {
        match $token {
            DriveToken::Access(a) => $b.access_token(&a),
            DriveToken::Refresh {
                token,
                client_id,
                client_secret,
            } => {
                let b = $b.refresh_token(&token).client_id(&client_id);
                match client_secret {
                    Some(c) => b.client_secret(&c),
                    None => b,
                }
            }
        }
    };
}

/// How many transfers each kind of storage gets by default: a local disk gains little from
/// more than two writers; S3 serves many connections at once; WebDAV servers and the personal
/// drives throttle clients that open many (Dropbox refuses concurrent writes to one account).
pub(crate) fn default_transfers(url: &StorageUrl) -> Transfers {
    let (up, down) = match url {
        StorageUrl::File(_) | StorageUrl::Memory => (2, 4),
        StorageUrl::S3 { .. } => (4, 8),
        StorageUrl::WebDav { .. } => (2, 4),
        StorageUrl::Sftp { .. } => (4, 4),
        StorageUrl::Gdrive(_) | StorageUrl::OneDrive(_) => (2, 4),
        StorageUrl::Dropbox(_) => (1, 4),
    };
    Transfers::with(up, down)
}

fn setup(url: &StorageUrl) -> impl Fn(opendal::Error) -> StorageError + '_ {
    move |e| StorageError::Setup(format!("cannot open {url}: {e}"))
}

/// How arca signs in to a personal drive.
enum DriveToken {
    /// A short-lived access token, used as it is.
    Access(String),
    /// A lasting refresh token, with the id and secret of the app it was issued to.
    /// (OneDrive apps registered as public clients have no secret.)
    Refresh {
        token: String,
        client_id: String,
        client_secret: Option<String>,
    },
}

fn drive_token(
    s: &Settings,
    section: &str,
    name: &str,
    secret_needed: bool,
) -> Result<DriveToken, StorageError> {
    let access = s.get(section, "access_token")?;
    let refresh = s.get(section, "refresh_token")?;
    let id = s.get(section, "client_id")?;
    let secret = s.get(section, "client_secret")?;
    match (refresh, id, secret, access) {
        (Some(token), Some(client_id), client_secret, _)
            if client_secret.is_some() || !secret_needed =>
        {
            Ok(DriveToken::Refresh {
                token,
                client_id,
                client_secret,
            })
        }
        (Some(_), ..) => Err(StorageError::Setup(format!(
            "{name}: a refresh token also needs the app's client id and secret: set {} and {} (or client_id and client_secret under [{section}] in the storage config file)",
            env_name(section, "client_id"),
            env_name(section, "client_secret"),
        ))),
        (None, _, _, Some(a)) => Ok(DriveToken::Access(a)),
        (None, _, _, None) => Err(StorageError::Setup(format!(
            "{name} needs an OAuth token: set {} with {} and {} (lasting), or {} (expires within hours); README.md says how to get them",
            env_name(section, "refresh_token"),
            env_name(section, "client_id"),
            env_name(section, "client_secret"),
            env_name(section, "access_token"),
        ))),
    }
}

pub(crate) fn operator(url: &StorageUrl, s: &Settings) -> Result<Operator, StorageError> {
    let setup = setup(url);
    match url {
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
        StorageUrl::S3 { bucket, prefix } => {
            let mut b = services::S3::default()
                .bucket(bucket)
                .root(&format!("/{prefix}"));
            let endpoint = s
                .get("s3", "endpoint")?
                .or_else(|| s.env_var("AWS_ENDPOINT_URL"));
            let region = s
                .get("s3", "region")?
                .or_else(|| s.env_var("AWS_REGION"))
                .or_else(|| s.env_var("AWS_DEFAULT_REGION"));
            let region = match (region, &endpoint) {
                (Some(r), _) => r,
                // S3-compatible servers mostly ignore the region, but it is signed.
                (None, Some(_)) => "us-east-1".into(),
                (None, None) => {
                    return Err(StorageError::Setup(format!(
                        "{url}: set the bucket's region in AWS_REGION (or ARCA_S3_REGION), or ARCA_S3_ENDPOINT for another S3-compatible service"
                    )));
                }
            };
            b = b.region(&region);
            // Path-style (http://host/bucket/key) suits S3-compatible servers; AWS wants
            // virtual-hosted style (http://bucket.host/key).
            let path_style = s.flag("s3", "path_style")?.unwrap_or(endpoint.is_some());
            if let Some(e) = &endpoint {
                b = b.endpoint(e);
            }
            if !path_style {
                b = b.enable_virtual_host_style();
            }
            if let Some(p) = s.get("s3", "profile")? {
                b = b.profile(&p);
            }
            if let (Some(id), Some(secret)) = (
                s.get("s3", "access_key_id")?,
                s.get("s3", "secret_access_key")?,
            ) {
                b = b.access_key_id(&id).secret_access_key(&secret);
                if let Some(t) = s.get("s3", "session_token")? {
                    b = b.session_token(&t);
                }
            }
            if let Some(class) = s.get("s3", "storage_class")? {
                b = b.default_storage_class(&class);
            }
            Operator::new(b).map_err(setup)
        }
        StorageUrl::WebDav {
            tls,
            user,
            host,
            path,
        } => {
            let scheme = if *tls { "https" } else { "http" };
            let mut b = services::Webdav::default()
                .endpoint(&format!("{scheme}://{host}"))
                .root(&format!("/{path}"));
            let user = match user {
                Some(u) => Some(u.clone()),
                None => s.get("webdav", "user")?,
            };
            if let Some(u) = &user {
                b = b.username(u);
            }
            if let Some(p) = s.get("webdav", "password")? {
                b = b.password(&p);
            }
            if let Some(t) = s.get("webdav", "token")? {
                b = b.token(&t);
            }
            Operator::new(b).map_err(setup)
        }
        StorageUrl::Sftp {
            user,
            host,
            port,
            path,
        } => {
            let port = port.unwrap_or(22);
            let mut b = services::Sftp::default()
                .endpoint(&format!("ssh://{host}:{port}"))
                .root(path);
            let user = match user {
                Some(u) => Some(u.clone()),
                None => s.get("sftp", "user")?,
            };
            if let Some(u) = &user {
                b = b.user(u);
            }
            if let Some(k) = s.get("sftp", "key")? {
                b = b.key(&k);
            }
            let known = s
                .get("sftp", "known_hosts")?
                .unwrap_or_else(|| "strict".into());
            if !["strict", "add", "accept"].contains(&known.as_str()) {
                return Err(StorageError::Setup(format!(
                    "ARCA_SFTP_KNOWN_HOSTS must be strict (the host must be in ~/.ssh/known_hosts), add (trust a new host on first use) or accept (trust any host), not {known:?}"
                )));
            }
            b = b.known_hosts_strategy(&known);
            Operator::new(b).map_err(setup)
        }
        StorageUrl::Gdrive(folder) => {
            let mut b = services::Gdrive::default().root(&format!("/{folder}"));
            b = with_token!(b, drive_token(s, "gdrive", "Google Drive", true)?);
            Operator::new(b).map_err(setup)
        }
        StorageUrl::OneDrive(folder) => {
            let mut b = services::Onedrive::default().root(&format!("/{folder}"));
            b = with_token!(b, drive_token(s, "onedrive", "OneDrive", false)?);
            Operator::new(b).map_err(setup)
        }
        StorageUrl::Dropbox(folder) => {
            let mut b = services::Dropbox::default().root(&format!("/{folder}"));
            b = with_token!(b, drive_token(s, "dropbox", "Dropbox", true)?);
            Operator::new(b).map_err(setup)
        }
    }
}
