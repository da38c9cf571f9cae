//! The server's configuration file (TOML). Relative paths are read from the config file's
//! folder. Unknown keys are refused, so a typo cannot silently weaken a setting.
//!
//! ```toml
//! # The master key (64 hex digits) that seals the vault's OPAQUE setup. Losing it loses every
//! # password recovery. Exactly one of:
//! master_key_file = "master.key"
//! # master_key_env = "ARCA_VAULT_MASTER_KEY"
//! create_master_key = false          # make master_key_file (mode 0600) if it does not exist
//!
//! [[issuer]]                         # one or more; a token's `iss` must name one
//! name = "arca-vault"
//! hs256_secret_file = "token.secret" # or hs256_secret = "...", hs256_secret_env = "NAME"
//! # ed25519_public_key = "issuer.pub.pem"
//! # ed25519_private_key = "issuer.pem"   # only needed by `arca-vault token issue`
//! # audience = "arca-vault"              # if set, tokens must carry this `aud`
//!
//! [policy]
//! default_guess_limit = 10
//! min_guess_limit = 1
//! max_guess_limit = 20
//! login_ttl_secs = 120
//! ticket_ttl_secs = 300
//! # ksf_floor = { m_kib = 19456, t = 2, p = 1 }   # lower only with insecure_test_ksf = true
//! # insecure_test_ksf = false
//!
//! [rate_limit]                       # 0 turns a limit off
//! per_account_per_minute = 60
//! per_account_burst = 20
//! per_address_per_minute = 600
//! per_address_burst = 120
//!
//! [tls]                              # required unless listening on a loopback address
//! cert = "cert.pem"                  # PEM chain, leaf first
//! key = "key.pem"                    # PEM private key (PKCS#8, PKCS#1 or SEC1)
//!
//! [database]                         # PostgreSQL only (--database postgres://...)
//! max_connections = 16               # per node
//! connect_timeout_secs = 5
//! pool_timeout_secs = 10             # a request's wait for a free connection
//! statement_timeout_secs = 10
//! # password_file = "db.password"    # or password_env = "NAME"; else the URL's
//! # ca_file = "db-ca.pem"            # TLS (sslmode=require in the URL) trusts these, not the web PKI
//!
//! [metrics]
//! enabled = true                     # serve /metrics (Prometheus text format)
//! ```
//!
//! docs/VAULT.md describes every key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::auth::{Issuer, Issuers};
use crate::Policy;
use crate::postgres::PgOptions;
use crate::setup::MasterKey;
use crate::suite::KsfParams;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub master_key_file: Option<PathBuf>,
    pub master_key_env: Option<String>,
    #[serde(default)]
    pub create_master_key: bool,
    #[serde(default, rename = "issuer")]
    pub issuers: Vec<IssuerConfig>,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The folder relative paths are read from.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    pub name: String,
    pub hs256_secret: Option<String>,
    pub hs256_secret_file: Option<PathBuf>,
    pub hs256_secret_env: Option<String>,
    pub ed25519_public_key: Option<PathBuf>,
    pub ed25519_private_key: Option<PathBuf>,
    pub audience: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub default_guess_limit: u32,
    pub min_guess_limit: u32,
    pub max_guess_limit: u32,
    pub login_ttl_secs: u32,
    pub ticket_ttl_secs: u32,
    pub ksf_floor: Option<KsfParams>,
    pub insecure_test_ksf: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let p = Policy::default();
        PolicyConfig {
            default_guess_limit: p.default_guess_limit,
            min_guess_limit: p.min_guess_limit,
            max_guess_limit: p.max_guess_limit,
            login_ttl_secs: p.login_ttl as u32,
            ticket_ttl_secs: p.ticket_ttl as u32,
            ksf_floor: None,
            insecure_test_ksf: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub per_account_per_minute: u32,
    pub per_account_burst: u32,
    pub per_address_per_minute: u32,
    pub per_address_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_account_per_minute: 60,
            per_account_burst: 20,
            per_address_per_minute: 600,
            per_address_burst: 120,
        }
    }
}

/// PostgreSQL connections (ignored for a SQLite database).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub connect_timeout_secs: u32,
    pub pool_timeout_secs: u32,
    pub statement_timeout_secs: u32,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub ca_file: Option<PathBuf>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        let d = PgOptions::default();
        DatabaseConfig {
            max_connections: d.max_connections as u32,
            connect_timeout_secs: d.connect_timeout.as_secs() as u32,
            pool_timeout_secs: d.pool_timeout.as_secs() as u32,
            statement_timeout_secs: d.statement_timeout.as_secs() as u32,
            password_file: None,
            password_env: None,
            ca_file: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn read(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, String> {
        let mut c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        c.base_dir = base_dir.to_path_buf();
        c.policy()?;
        if c.master_key_file.is_some() == c.master_key_env.is_some() {
            return Err("set exactly one of master_key_file and master_key_env".into());
        }
        if c.create_master_key && c.master_key_file.is_none() {
            return Err("create_master_key needs master_key_file".into());
        }
        let d = &c.database;
        if d.max_connections == 0
            || d.connect_timeout_secs == 0
            || d.pool_timeout_secs == 0
            || d.statement_timeout_secs == 0
        {
            return Err("database: max_connections and the timeouts must be more than 0".into());
        }
        if d.password_file.is_some() && d.password_env.is_some() {
            return Err("database: set at most one of password_file and password_env".into());
        }
        Ok(c)
    }

    /// The PostgreSQL pool settings, with the password read from its file or variable.
    pub fn pg_options(&self) -> Result<PgOptions, String> {
        let d = &self.database;
        let password = if let Some(f) = &d.password_file {
            let raw = read(&self.resolve(f), "database password")?;
            let text = String::from_utf8(raw.trim_ascii().to_vec())
                .map_err(|_| "database: the password file is not UTF-8".to_string())?;
            Some(Zeroizing::new(text))
        } else if let Some(var) = &d.password_env {
            Some(Zeroizing::new(std::env::var(var).map_err(|_| {
                format!("database: the password variable {var} is not set")
            })?))
        } else {
            None
        };
        let ca_pem = match &d.ca_file {
            Some(f) => Some(read(&self.resolve(f), "database CA certificate")?.to_vec()),
            None => None,
        };
        Ok(PgOptions {
            ca_pem,
            max_connections: d.max_connections as usize,
            connect_timeout: Duration::from_secs(d.connect_timeout_secs.into()),
            pool_timeout: Duration::from_secs(d.pool_timeout_secs.into()),
            statement_timeout: Duration::from_secs(d.statement_timeout_secs.into()),
            password,
        })
    }

    /// `path` as written, or read from the config file's folder if relative.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The vault policy, checked.
    pub fn policy(&self) -> Result<Policy, String> {
        let p = &self.policy;
        if !(1 <= p.min_guess_limit
            && p.min_guess_limit <= p.default_guess_limit
            && p.default_guess_limit <= p.max_guess_limit)
        {
            return Err(format!(
                "policy: need 1 <= min_guess_limit ({}) <= default_guess_limit ({}) <= max_guess_limit ({})",
                p.min_guess_limit, p.default_guess_limit, p.max_guess_limit
            ));
        }
        if p.login_ttl_secs == 0 || p.ticket_ttl_secs == 0 {
            return Err("policy: login_ttl_secs and ticket_ttl_secs must be more than 0".into());
        }
        let floor = p.ksf_floor.unwrap_or(KsfParams::FLOOR);
        if let Err(e) = floor.argon2() {
            return Err(format!("policy.ksf_floor: {e}"));
        }
        if !floor.meets_floor(&KsfParams::FLOOR) && !p.insecure_test_ksf {
            return Err(format!(
                "policy.ksf_floor {floor:?} is below the minimum {:?}; this is only for tests \
                 and needs insecure_test_ksf = true",
                KsfParams::FLOOR
            ));
        }
        Ok(Policy {
            default_guess_limit: p.default_guess_limit,
            min_guess_limit: p.min_guess_limit,
            max_guess_limit: p.max_guess_limit,
            login_ttl: i64::from(p.login_ttl_secs),
            ticket_ttl: i64::from(p.ticket_ttl_secs),
            ksf_floor: floor,
        })
    }

    /// Whether the Argon2id floor was lowered for tests.
    pub fn insecure_ksf(&self) -> bool {
        self.policy
            .ksf_floor
            .is_some_and(|f| !f.meets_floor(&KsfParams::FLOOR))
    }

    pub fn master_key(&self) -> Result<MasterKey, String> {
        if let Some(name) = &self.master_key_env {
            let value = Zeroizing::new(std::env::var(name).map_err(|_| {
                format!("the master key variable {name} is not set (64 hex digits expected)")
            })?);
            return MasterKey::from_hex(&value).map_err(|e| format!("{name}: {e}"));
        }
        let path = self.resolve(self.master_key_file.as_deref().expect("checked at parse"));
        MasterKey::from_file(&path, self.create_master_key).map_err(|e| {
            if !self.create_master_key && !path.exists() {
                format!(
                    "the master key file {} does not exist; create it with 64 random hex digits \
                     (for example `openssl rand -hex 32`), or set create_master_key = true for \
                     a new vault",
                    path.display()
                )
            } else {
                format!("{}: {e}", path.display())
            }
        })
    }

    pub fn issuers(&self) -> Result<Issuers, String> {
        let mut out = Vec::new();
        for ic in &self.issuers {
            let name = &ic.name;
            if name.is_empty() {
                return Err("an issuer needs a name (the tokens' iss claim)".into());
            }
            let secrets = [
                ic.hs256_secret.is_some(),
                ic.hs256_secret_file.is_some(),
                ic.hs256_secret_env.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            let ed = ic.ed25519_public_key.is_some();
            if secrets + usize::from(ed) != 1 {
                return Err(format!(
                    "issuer {name:?}: set exactly one of hs256_secret, hs256_secret_file, \
                     hs256_secret_env and ed25519_public_key"
                ));
            }
            if ic.ed25519_private_key.is_some() && !ed {
                return Err(format!(
                    "issuer {name:?}: ed25519_private_key needs ed25519_public_key"
                ));
            }
            let issuer = if let Some(pubkey) = &ic.ed25519_public_key {
                let public = read(&self.resolve(pubkey), "Ed25519 public key")?;
                let private = match &ic.ed25519_private_key {
                    Some(p) => Some(read(&self.resolve(p), "Ed25519 private key")?),
                    None => None,
                };
                Issuer::ed25519(
                    name,
                    &public,
                    private.as_ref().map(|p| p.as_slice()),
                    ic.audience.clone(),
                )?
            } else {
                let secret = if let Some(s) = &ic.hs256_secret {
                    Zeroizing::new(s.as_bytes().to_vec())
                } else if let Some(f) = &ic.hs256_secret_file {
                    let raw = read(&self.resolve(f), "HS256 secret")?;
                    Zeroizing::new(raw.trim_ascii().to_vec())
                } else {
                    let var = ic.hs256_secret_env.as_ref().expect("counted above");
                    Zeroizing::new(
                        std::env::var(var)
                            .map_err(|_| format!("issuer {name:?}: the variable {var} is not set"))?
                            .into_bytes(),
                    )
                };
                Issuer::hs256(name, &secret, ic.audience.clone())?
            };
            out.push(issuer);
        }
        if out.is_empty() {
            return Err(
                "the config names no token issuer: add an [[issuer]] with an HS256 secret or an \
                 Ed25519 public key, so requests can be authenticated"
                    .into(),
            );
        }
        Ok(Issuers(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
master_key_env = "X"
[[issuer]]
name = "t"
hs256_secret = "0123456789abcdef0123456789abcdef"
"#;

    #[test]
    fn defaults_and_checks() {
        let c = Config::parse(BASE, Path::new(".")).unwrap();
        let p = c.policy().unwrap();
        assert_eq!(p.default_guess_limit, 10);
        assert_eq!(p.ksf_floor, KsfParams::FLOOR);
        assert_eq!(c.issuers().unwrap().0.len(), 1);
        assert!(!c.insecure_ksf());
    }

    #[test]
    fn lowering_the_argon2_floor_needs_the_test_switch() {
        let low = format!("{BASE}\n[policy]\nksf_floor = {{ m_kib = 64, t = 1, p = 1 }}\n");
        let e = Config::parse(&low, Path::new(".")).unwrap_err();
        assert!(e.contains("insecure_test_ksf"), "{e}");
        let ok = format!("{low}insecure_test_ksf = true\n");
        let c = Config::parse(&ok, Path::new(".")).unwrap();
        assert_eq!(c.policy().unwrap().ksf_floor.m_kib, 64);
        assert!(c.insecure_ksf());
    }

    #[test]
    fn typos_are_refused() {
        assert!(
            Config::parse(
                &format!("{BASE}\n[policy]\ndefault_guess_limt = 3\n"),
                Path::new(".")
            )
            .is_err()
        );
        assert!(
            Config::parse(
                "master_key_env = \"X\"\nmaster_key_file = \"y\"\n",
                Path::new(".")
            )
            .is_err()
        );
    }

    #[test]
    fn database_and_metrics_sections() {
        let c = Config::parse(BASE, Path::new(".")).unwrap();
        let o = c.pg_options().unwrap();
        assert_eq!(o.max_connections, 16);
        assert!(o.password.is_none());
        assert!(c.metrics.enabled);
        let text = format!(
            "{BASE}\n[database]\nmax_connections = 4\nstatement_timeout_secs = 3\n\
             password_env = \"ARCA_TEST_NO_SUCH_VARIABLE\"\n[metrics]\nenabled = false\n"
        );
        let c = Config::parse(&text, Path::new(".")).unwrap();
        assert!(!c.metrics.enabled);
        assert_eq!(c.database.max_connections, 4);
        let e = c.pg_options().unwrap_err();
        assert!(e.contains("ARCA_TEST_NO_SUCH_VARIABLE"), "{e}");
        let zero = format!("{BASE}\n[database]\nmax_connections = 0\n");
        assert!(Config::parse(&zero, Path::new(".")).is_err());
    }

    #[test]
    fn an_issuer_is_required() {
        let c = Config::parse("master_key_env = \"X\"\n", Path::new(".")).unwrap();
        assert!(c.issuers().is_err());
    }
}
