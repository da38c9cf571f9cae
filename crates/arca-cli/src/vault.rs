//! Which key vault holds a backup's password record, and how to reach it.
//!
//! A vault is an `http(s)://` URL (an `arca-vault` server; the account is the subject of the
//! bearer token in `ARCA_VAULT_TOKEN`, kept by the device after `enable`; `ARCA_VAULT_CA`
//! names extra CA certificates to trust) or the path of an **embedded** vault database: the same
//! vault code, in this process, over a local SQLite file whose master key is a 0600 file beside
//! it (`vault.db` → `vault.master.key`). With no vault named anywhere, arca uses the embedded
//! vault `<data dir>/arca/vault.db`, beside the default repository, standing in for a server.
//! On an embedded vault, a backup's account is `repo-` and its repository id in hex.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arca_client::Transport;
use arca_vault::setup::MasterKey;
use arca_vault::sqlite::SqliteStore;
use arca_vault::suite::KsfParams;
use arca_vault::{Policy, Vault};

use crate::device::{Device, DeviceState};
use crate::exit::{NotSetUp, UsageError};

/// `ARCA_INSECURE_TEST_KSF=1` lowers the Argon2id cost to 64 KiB, 1 pass: for tests only, as it
/// makes every password far cheaper to guess for whoever holds the vault's records.
const TEST_KSF_VAR: &str = "ARCA_INSECURE_TEST_KSF";

const TEST_KSF: KsfParams = KsfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

fn insecure_test_ksf() -> bool {
    std::env::var(TEST_KSF_VAR).is_ok_and(|v| v == "1")
}

/// The Argon2id parameters a new registration uses.
pub fn ksf() -> KsfParams {
    if insecure_test_ksf() {
        TEST_KSF
    } else {
        KsfParams::default()
    }
}

/// The weakest Argon2id parameters this device accepts from a vault at login.
pub fn ksf_floor() -> KsfParams {
    if insecure_test_ksf() {
        TEST_KSF
    } else {
        KsfParams::FLOOR
    }
}

/// Where a vault is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Embedded(PathBuf),
    Http(String),
}

impl Location {
    pub fn parse(text: &str) -> Result<Self> {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Ok(Location::Http(text.trim_end_matches('/').to_string()));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            bail!(UsageError(format!(
                "{text}: a key vault is an http:// or https:// URL, or the path of an embedded vault database; not '{scheme}'"
            )));
        }
        if text.is_empty() {
            bail!(UsageError(
                "the key vault location is empty; give a URL or a file path".into()
            ));
        }
        let abs = std::path::absolute(text)
            .with_context(|| format!("cannot resolve the vault path {text}"))?;
        Ok(Location::Embedded(abs))
    }

    /// The embedded vault used when none is named.
    pub fn default_embedded() -> Result<Self> {
        let d = dirs::data_dir().ok_or_else(|| {
            NotSetUp("cannot find a data folder for the embedded key vault; set ARCA_VAULT".into())
        })?;
        Ok(Location::Embedded(d.join("arca").join("vault.db")))
    }

    /// The text kept in device.json and shown to people.
    pub fn to_text(&self) -> String {
        match self {
            Location::Embedded(p) => p.to_string_lossy().into_owned(),
            Location::Http(u) => u.clone(),
        }
    }
}

/// The vault to use: `explicit` (`--vault`), else `ARCA_VAULT`, else the one this device was
/// enabled with, else the default embedded vault.
pub fn select(explicit: Option<&str>, state: &DeviceState) -> Result<Location> {
    if let Some(v) = explicit {
        return Location::parse(v);
    }
    if let Some(v) = std::env::var_os("ARCA_VAULT")
        && !v.is_empty()
    {
        return Location::parse(&v.to_string_lossy())
            .context("ARCA_VAULT is not a usable key vault location");
    }
    if let Some(v) = &state.vault {
        return Location::parse(v);
    }
    Location::default_embedded()
}

/// The master key file of an embedded vault database: `vault.db` → `vault.master.key`.
pub fn master_key_path(db: &Path) -> PathBuf {
    db.with_extension("master.key")
}

/// A PEM file of CA certificates to trust for an `https://` vault with a private certificate.
const CA_VAR: &str = "ARCA_VAULT_CA";

/// An open connection to a vault, for one account.
pub struct Conn {
    pub transport: Box<dyn Transport>,
    pub account: String,
    pub location: Location,
}

impl Conn {
    pub fn describe(&self) -> String {
        self.location.to_text()
    }

    /// The account's state at the vault (registered, gone, guesses left).
    pub fn status(&self) -> Result<arca_vault::wire::AccountStatus> {
        self.transport
            .status()
            .map_err(arca_client::ClientError::from)
            .with_context(|| format!("cannot ask the key vault {}", self.describe()))
    }

    /// One login with `password`: spends a guess, and a success refunds them.
    pub fn recover(
        &self,
        password: &str,
    ) -> std::result::Result<arca_client::Recovered, arca_client::ClientError> {
        arca_client::recover(
            self.transport.as_ref(),
            &self.account,
            password.as_bytes(),
            &ksf_floor(),
        )
    }
}

/// Connects to the vault at `location` for the backup whose repository id is `repo_id`.
/// With `create`, an embedded vault's files are made if absent; without, a missing embedded
/// vault is `None` (it cannot hold anything for this backup).
pub fn connect(
    location: &Location,
    repo_id: &[u8; 16],
    device: &Device,
    create: bool,
) -> Result<Option<Conn>> {
    match location {
        Location::Embedded(db) => {
            if !create && !db.exists() {
                return Ok(None);
            }
            let vault = open_embedded(db, create)
                .with_context(|| format!("cannot open the embedded key vault {}", db.display()))?;
            Ok(Some(Conn {
                transport: Box::new(arca_client::Embedded {
                    vault,
                    account: format!("repo-{}", hex::encode(repo_id)),
                }),
                account: format!("repo-{}", hex::encode(repo_id)),
                location: location.clone(),
            }))
        }
        Location::Http(url) => {
            let token = token(device)?;
            let mut http = arca_client::Http::from_token(url, &token)
                .with_context(|| format!("cannot use the key vault {url}"))?;
            if let Some(ca) = std::env::var_os(CA_VAR) {
                let pem = std::fs::read(&ca).with_context(|| {
                    format!("cannot read {CA_VAR} {}", Path::new(&ca).display())
                })?;
                http = http
                    .with_root_certificates(&pem)
                    .with_context(|| format!("{CA_VAR} {}", Path::new(&ca).display()))?;
            }
            Ok(Some(Conn {
                account: http.account().to_string(),
                transport: Box::new(http),
                location: location.clone(),
            }))
        }
    }
}

/// The bearer token for an HTTP vault: `ARCA_VAULT_TOKEN`, else the one this device keeps.
pub fn token(device: &Device) -> Result<String> {
    if let Ok(t) = std::env::var("ARCA_VAULT_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    match device.stored_vault_token()? {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err(NotSetUp(
            "the key vault needs an account token: set ARCA_VAULT_TOKEN to the token its operator issued you".into(),
        )
        .into()),
    }
}

fn open_embedded(db: &Path, create: bool) -> Result<Vault> {
    let key_path = master_key_path(db);
    if (db.exists() || !create) && !key_path.exists() {
        bail!(
            "its master key file {} is missing; without it no password backup in this vault can be recovered",
            key_path.display()
        );
    }
    let master = MasterKey::from_file(&key_path, create)?;
    if !db.exists() {
        // Only this user may read the records (an offline guesser would start from them).
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(db)
            .with_context(|| format!("cannot create {}", db.display()))?;
    }
    let store = Arc::new(SqliteStore::open(db)?);
    let policy = Policy {
        ksf_floor: ksf_floor(),
        ..Policy::default()
    };
    Ok(Vault::new(store, &master, policy)?)
}
