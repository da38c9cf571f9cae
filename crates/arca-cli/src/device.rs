//! This device's state in its config dir (`ARCA_CONFIG_DIR`): which repository it backs up to,
//! which paths, its copy of K, and caches. Two config dirs on one machine are two devices.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use arca_crypto::{BackupKey, format_digits, parse_digits};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::exit::{NotSetUp, UsageError};

/// What `device.json` holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DeviceState {
    pub repo: Option<String>,
    pub repo_id: Option<String>,
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// The key vault holding this backup's password record (an `http(s)://` URL or the path of
    /// an embedded vault database), when password mode is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<String>,
    /// Enabled with a password only: the 64-digit key was never shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub password_only: bool,
}

pub struct Device {
    pub dir: PathBuf,
}

impl Device {
    pub fn locate() -> Result<Self> {
        let dir = match std::env::var_os("ARCA_CONFIG_DIR") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => dirs::config_dir().map(|d| d.join("arca")).ok_or_else(|| {
                NotSetUp("cannot find a config folder; set ARCA_CONFIG_DIR".into())
            })?,
        };
        Ok(Device { dir })
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("device.json")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("key")
    }

    pub fn cache_dir(&self, repo_id: &str) -> PathBuf {
        self.dir.join("cache").join(repo_id)
    }

    pub fn state(&self) -> Result<DeviceState> {
        match std::fs::read(self.state_path()) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| {
                format!(
                    "{} is not valid; fix or delete it",
                    self.state_path().display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DeviceState::default()),
            Err(e) => {
                Err(e).with_context(|| format!("cannot read {}", self.state_path().display()))
            }
        }
    }

    pub fn save_state(&self, state: &DeviceState) -> Result<()> {
        for p in &state.paths {
            if p.to_str().is_none() {
                return Err(UsageError(format!(
                    "{} is not valid UTF-8 and cannot be saved as a default path; name it on the command line each time",
                    p.display()
                ))
                .into());
            }
        }
        self.ensure_dir()?;
        let tmp = self.dir.join("device.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, self.state_path())
            .with_context(|| format!("cannot write {}", self.state_path().display()))
    }

    fn ensure_dir(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create the config folder {}", self.dir.display()))
    }

    /// This device's copy of K, if it has one.
    pub fn stored_key(&self) -> Result<Option<BackupKey>> {
        match std::fs::read_to_string(self.key_path()) {
            Ok(s) => {
                let s = Zeroizing::new(s);
                Ok(Some(parse_digits(&s).with_context(|| {
                    format!("the key file {} is damaged", self.key_path().display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.key_path().display())),
        }
    }

    /// Stores K in a file only this user can read (mode 0600), atomically.
    pub fn store_key(&self, key: &BackupKey) -> Result<()> {
        let text = Zeroizing::new(format_digits(key) + "\n");
        self.write_private(&self.key_path(), text.as_bytes())
    }

    /// Where this device keeps the bearer token of an HTTP key vault.
    pub fn vault_token_path(&self) -> PathBuf {
        self.dir.join("vault.token")
    }

    /// The vault token this device keeps, if any.
    pub fn stored_vault_token(&self) -> Result<Option<String>> {
        match std::fs::read_to_string(self.vault_token_path()) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                Err(e).with_context(|| format!("cannot read {}", self.vault_token_path().display()))
            }
        }
    }

    pub fn store_vault_token(&self, token: &str) -> Result<()> {
        self.write_private(&self.vault_token_path(), format!("{token}\n").as_bytes())
    }

    /// Writes `bytes` to `path` in this config folder, readable only by this user, atomically.
    fn write_private(&self, path: &std::path::Path, bytes: &[u8]) -> Result<()> {
        self.ensure_dir()?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Removes this device's key, state, vault token and caches: what `arca disable` forgets.
    /// Returns the files and folders that were there.
    pub fn forget(&self) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for p in [self.key_path(), self.state_path(), self.vault_token_path()] {
            match std::fs::remove_file(&p) {
                Ok(()) => removed.push(p),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot remove {}", p.display())),
            }
        }
        let cache = self.dir.join("cache");
        match std::fs::remove_dir_all(&cache) {
            Ok(()) => removed.push(cache),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot remove {}", cache.display()));
            }
        }
        Ok(removed)
    }
}

/// The default repository: a folder under the user's data dir that stands in for the cloud.
pub fn default_repo() -> Result<String> {
    let d = dirs::data_dir()
        .ok_or_else(|| NotSetUp("cannot find a data folder; give --repo".into()))?;
    Ok(d.join("arca").join("repo").to_string_lossy().into_owned())
}
