//! Settings that do not fit in a URL: endpoints, credentials, transfer limits.
//!
//! Each setting belongs to a section (`s3`, `webdav`, `sftp`, `gdrive`, `onedrive`, `dropbox`,
//! `transfers`) and is looked up, in this order:
//!
//! 1. a value the program set (from a command-line option such as `--limit-upload`);
//! 2. the environment: `ARCA_<SECTION>_<KEY>` (`ARCA_S3_ENDPOINT`, `ARCA_WEBDAV_PASSWORD`), or
//!    `ARCA_<KEY>` for the `transfers` section (`ARCA_UPLOADS`, `ARCA_LIMIT_UPLOAD`);
//! 3. the storage config file (TOML, one table per section): `key = "value"`;
//! 4. the config file's `key_command = "..."`: a shell command whose output is the value, for
//!    secrets kept in a password manager (`password_command = "pass show dav"`).
//!
//! Secrets are never taken from the repository URL: a URL is shown in messages and remembered
//! in the device state, so `webdav://user:secret@host/` is refused with a pointer to the
//! environment variable to use instead.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::StorageError;

/// Where settings come from.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    file: BTreeMap<String, BTreeMap<String, String>>,
    file_path: Option<PathBuf>,
    set: BTreeMap<(String, String), String>,
    /// `None`: the process environment; `Some`: this map instead (tests).
    env: Option<HashMap<String, String>>,
}

/// The environment variable that holds a setting.
pub fn env_name(section: &str, key: &str) -> String {
    if section == "transfers" {
        format!("ARCA_{}", key.to_ascii_uppercase())
    } else {
        format!(
            "ARCA_{}_{}",
            section.to_ascii_uppercase(),
            key.to_ascii_uppercase()
        )
    }
}

impl Settings {
    /// Settings from the process environment only.
    pub fn from_env() -> Self {
        Settings::default()
    }

    /// Settings from the environment and, if it exists, the TOML file at `path`.
    pub fn load(path: Option<&Path>) -> Result<Self, StorageError> {
        let mut s = Settings::default();
        let Some(path) = path else { return Ok(s) };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(s),
            Err(e) => {
                return Err(StorageError::Setup(format!(
                    "cannot read the storage config file {}: {e}",
                    path.display()
                )));
            }
        };
        s.file = parse_file(&text).map_err(|e| {
            StorageError::Setup(format!(
                "the storage config file {} is not valid: {e}",
                path.display()
            ))
        })?;
        s.file_path = Some(path.to_path_buf());
        Ok(s)
    }

    /// Settings from a TOML text and the given environment (for tests).
    pub fn from_parts(toml: &str, env: &[(&str, &str)]) -> Result<Self, StorageError> {
        Ok(Settings {
            file: parse_file(toml).map_err(StorageError::Setup)?,
            file_path: None,
            set: BTreeMap::new(),
            env: Some(
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        })
    }

    /// Sets a value that wins over the environment and the file.
    pub fn set(&mut self, section: &str, key: &str, value: impl Into<String>) {
        self.set
            .insert((section.to_string(), key.to_string()), value.into());
    }

    pub(crate) fn env_var(&self, name: &str) -> Option<String> {
        match &self.env {
            Some(m) => m.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
        .filter(|v| !v.is_empty())
    }

    fn where_file(&self) -> String {
        match &self.file_path {
            Some(p) => p.display().to_string(),
            None => "the storage config file".into(),
        }
    }

    /// A setting, or `None`.
    pub fn get(&self, section: &str, key: &str) -> Result<Option<String>, StorageError> {
        if let Some(v) = self.set.get(&(section.to_string(), key.to_string())) {
            return Ok(Some(v.clone()));
        }
        if let Some(v) = self.env_var(&env_name(section, key)) {
            return Ok(Some(v));
        }
        let table = self.file.get(section);
        if let Some(v) = table.and_then(|t| t.get(key)) {
            return Ok(Some(v.clone()));
        }
        if let Some(cmd) = table.and_then(|t| t.get(&format!("{key}_command"))) {
            return run_command(cmd).map(Some).map_err(|e| {
                StorageError::Setup(format!(
                    "[{section}] {key}_command in {} failed: {e}",
                    self.where_file()
                ))
            });
        }
        Ok(None)
    }

    /// A yes/no setting.
    pub fn flag(&self, section: &str, key: &str) -> Result<Option<bool>, StorageError> {
        match self.get(section, key)? {
            None => Ok(None),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(Some(true)),
                "0" | "false" | "no" | "off" => Ok(Some(false)),
                _ => Err(StorageError::Setup(format!(
                    "{} (or [{section}] {key}) must be true or false, not {v:?}",
                    env_name(section, key)
                ))),
            },
        }
    }

    fn number(&self, section: &str, key: &str) -> Result<Option<f64>, StorageError> {
        match self.get(section, key)? {
            None => Ok(None),
            Some(v) => v.trim().parse::<f64>().map(Some).map_err(|_| {
                StorageError::Setup(format!(
                    "{} (or [{section}] {key}) must be a number, not {v:?}",
                    env_name(section, key)
                ))
            }),
        }
    }

    fn rate(&self, key: &str) -> Result<Option<u64>, StorageError> {
        match self.get("transfers", key)? {
            None => Ok(None),
            Some(v) => parse_rate(&v).map(Some).map_err(|e| {
                StorageError::Setup(format!(
                    "{} (or [transfers] {key}): {e}",
                    env_name("transfers", key)
                ))
            }),
        }
    }

    /// The transfer settings for a backend whose defaults are `defaults`.
    pub fn transfers(&self, defaults: Transfers) -> Result<Transfers, StorageError> {
        let mut t = defaults;
        let count = |key: &str, v: f64| -> Result<usize, StorageError> {
            if v.fract() != 0.0 || !(1.0..=256.0).contains(&v) {
                return Err(StorageError::Setup(format!(
                    "{} must be a whole number from 1 to 256",
                    env_name("transfers", key)
                )));
            }
            Ok(v as usize)
        };
        if let Some(v) = self.number("transfers", "uploads")? {
            t.uploads = count("uploads", v)?;
        }
        if let Some(v) = self.number("transfers", "downloads")? {
            t.downloads = count("downloads", v)?;
        }
        if let Some(v) = self.number("transfers", "retries")? {
            if v.fract() != 0.0 || !(0.0..=100.0).contains(&v) {
                return Err(StorageError::Setup(
                    "ARCA_RETRIES must be a whole number from 0 to 100".into(),
                ));
            }
            t.retries = v as usize;
        }
        let seconds = |key: &str, v: f64| -> Result<Duration, StorageError> {
            if !(0.001..=86400.0).contains(&v) {
                return Err(StorageError::Setup(format!(
                    "{} must be a number of seconds from 0.001 to 86400",
                    env_name("transfers", key)
                )));
            }
            Ok(Duration::from_secs_f64(v))
        };
        if let Some(v) = self.number("transfers", "retry_delay")? {
            t.retry_delay = seconds("retry_delay", v)?;
        }
        if let Some(v) = self.number("transfers", "timeout")? {
            t.timeout = seconds("timeout", v)?;
        }
        if let Some(v) = self.rate("min_rate")? {
            t.min_rate = v.max(1);
        }
        if let Some(v) = self.rate("limit_upload")? {
            t.limit_upload = Some(v);
        }
        if let Some(v) = self.rate("limit_download")? {
            t.limit_download = Some(v);
        }
        Ok(t)
    }
}

/// How transfers are made.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transfers {
    /// Objects uploaded at once.
    pub uploads: usize,
    /// Objects downloaded at once.
    pub downloads: usize,
    /// Retries of an operation that failed with a transient error (timeouts, resets, 5xx, 429).
    pub retries: usize,
    /// The first pause before a retry; it doubles at each retry (with jitter), up to 30 s.
    pub retry_delay: Duration,
    /// How long a request may take before any byte moves; a transfer of `n` bytes may take
    /// `timeout + n / min_rate` before it is given up (and retried).
    pub timeout: Duration,
    /// The slowest transfer rate (bytes per second) taken for a live connection.
    pub min_rate: u64,
    /// Bytes per second sent at most, averaged over each object.
    pub limit_upload: Option<u64>,
    /// Bytes per second received at most.
    pub limit_download: Option<u64>,
}

impl Transfers {
    /// Defaults with `uploads` and `downloads` in flight.
    pub fn with(uploads: usize, downloads: usize) -> Self {
        Transfers {
            uploads,
            downloads,
            retries: 8,
            retry_delay: Duration::from_millis(500),
            timeout: Duration::from_secs(60),
            min_rate: 32 << 10,
            limit_upload: None,
            limit_download: None,
        }
    }
}

/// Parses a rate or size: `1000000`, `500k`, `10M`, `2.5MB`, `1MiB`, `8Mi` (k, M, G are powers
/// of 1000; Ki, Mi, Gi of 1024; a trailing `B` or `/s` is allowed).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: f64 = match unit.trim() {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" | "m" => 1e6,
        "G" | "g" => 1e9,
        "Ki" | "ki" | "KI" => 1024.0,
        "Mi" | "mi" | "MI" => 1024.0 * 1024.0,
        "Gi" | "gi" | "GI" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "{s:?} is not a rate in bytes per second (examples: 500k, 10M, 1MiB)"
            ));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a rate in bytes per second (examples: 500k, 10M)"))?;
    let v = (n * mult).round();
    if !(1.0..1e15).contains(&v) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(v as u64)
}

fn parse_file(text: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let mut out = BTreeMap::new();
    for (section, v) in table {
        let toml::Value::Table(t) = v else {
            return Err(format!(
                "`{section}` must be a [section] (s3, webdav, sftp, gdrive, onedrive, dropbox, transfers)"
            ));
        };
        let mut keys = BTreeMap::new();
        for (k, v) in t {
            let s = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => return Err(format!("[{section}] {k}: unsupported value {other}")),
            };
            keys.insert(k, s);
        }
        out.insert(section, keys);
    }
    Ok(out)
}

fn run_command(cmd: &str) -> Result<String, String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run it: {e}"))?;
    if !out.status.success() {
        return Err(format!("it exited with {}", out.status));
    }
    let s = String::from_utf8(out.stdout).map_err(|_| "its output is not UTF-8".to_string())?;
    let s = s.trim_end_matches(['\n', '\r']).to_string();
    if s.is_empty() {
        return Err("it printed nothing".into());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_of_sources() {
        let mut s = Settings::from_parts(
            "[s3]\nendpoint = \"http://file\"\nregion = \"eu-west-1\"\n[webdav]\npassword_command = \"echo s3cret\"\n[transfers]\nuploads = 3\n",
            &[("ARCA_S3_ENDPOINT", "http://env"), ("ARCA_DOWNLOADS", "5")],
        )
        .unwrap();
        assert_eq!(s.get("s3", "endpoint").unwrap().unwrap(), "http://env");
        assert_eq!(s.get("s3", "region").unwrap().unwrap(), "eu-west-1");
        assert_eq!(s.get("webdav", "password").unwrap().unwrap(), "s3cret");
        assert_eq!(s.get("webdav", "user").unwrap(), None);
        s.set("s3", "endpoint", "http://set");
        assert_eq!(s.get("s3", "endpoint").unwrap().unwrap(), "http://set");
        let t = s.transfers(Transfers::with(1, 1)).unwrap();
        assert_eq!((t.uploads, t.downloads), (3, 5));
    }

    #[test]
    fn failing_command_is_named() {
        let s = Settings::from_parts("[webdav]\npassword_command = \"exit 3\"\n", &[]).unwrap();
        let e = s.get("webdav", "password").unwrap_err().to_string();
        assert!(e.contains("password_command"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Settings::from_parts("endpoint = 1", &[]).is_err());
        let s = Settings::from_parts("", &[("ARCA_UPLOADS", "0")]).unwrap();
        assert!(s.transfers(Transfers::with(1, 1)).is_err());
        let s = Settings::from_parts("", &[("ARCA_LIMIT_UPLOAD", "fast")]).unwrap();
        assert!(s.transfers(Transfers::with(1, 1)).is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1000").unwrap(), 1000);
        assert_eq!(parse_rate("500k").unwrap(), 500_000);
        assert_eq!(parse_rate("10M").unwrap(), 10_000_000);
        assert_eq!(parse_rate("2.5MB/s").unwrap(), 2_500_000);
        assert_eq!(parse_rate("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_rate("8Ki").unwrap(), 8192);
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("ten").is_err());
        assert!(parse_rate("5x").is_err());
    }
}
