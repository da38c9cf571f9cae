//! The repository config: the one object readable without K. It names the repository, fixes the
//! chunker parameters, and carries a key check that tells a wrong key from a damaged repository.
//!
//! Layout: `version (1) || postcard(RepoConfig) || BLAKE3 of the preceding bytes (32)`.
//! The checksum catches damage; a config that is intact but whose key check does not open under
//! the given key means the key is wrong (or the config was replaced by another repository's).

use arca_crypto::{BackupKey, DerivedKeys};
use serde::{Deserialize, Serialize};

use crate::chunker::ChunkerParams;
use crate::{FORMAT_VERSION, FormatError, decode, encode};

/// Target pack size: 16 MiB.
pub const DEFAULT_PACK_SIZE: u32 = 16 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    pub repo_id: [u8; 16],
    /// Seconds since the Unix epoch.
    pub created: i64,
    pub chunker: ChunkerParams,
    /// Target size of a pack file in bytes.
    pub pack_size: u32,
    #[serde(with = "serde_bytes")]
    pub key_check: Vec<u8>,
}

/// Why a config could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("the config is damaged: {0}")]
    Damaged(String),
    #[error("the config has format version {0}; this arca reads version 1")]
    Version(u8),
    #[error("this key does not open this backup")]
    WrongKey,
}

/// The key check's associated data binds every other config field, so none can be changed
/// without the key check failing.
fn check_aad(repo_id: &[u8; 16], created: i64, chunker: &ChunkerParams, pack_size: u32) -> Vec<u8> {
    let mut a = b"arca config key check v1".to_vec();
    a.extend_from_slice(&encode(&(repo_id, created, chunker, pack_size)));
    a
}

impl RepoConfig {
    pub fn new(key: &DerivedKeys, repo_id: [u8; 16], created: i64) -> Self {
        Self::with_params(
            key,
            repo_id,
            created,
            ChunkerParams::default(),
            DEFAULT_PACK_SIZE,
        )
    }

    /// A config with chosen chunker parameters and pack size (validated by the caller).
    pub fn with_params(
        key: &DerivedKeys,
        repo_id: [u8; 16],
        created: i64,
        chunker: ChunkerParams,
        pack_size: u32,
    ) -> Self {
        let mut cfg = RepoConfig {
            repo_id,
            created,
            chunker,
            pack_size,
            key_check: Vec::new(),
        };
        cfg.key_check = arca_crypto::seal(&key.key_check, &cfg.aad(), &repo_id);
        cfg
    }

    fn aad(&self) -> Vec<u8> {
        check_aad(&self.repo_id, self.created, &self.chunker, self.pack_size)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        out.extend_from_slice(&encode(self));
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// Parses and checks integrity, without a key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.len() < 33 {
            return Err(ConfigError::Damaged(format!("only {} bytes", bytes.len())));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != sum {
            return Err(ConfigError::Damaged("checksum mismatch".into()));
        }
        if body[0] != FORMAT_VERSION {
            return Err(ConfigError::Version(body[0]));
        }
        let cfg: RepoConfig =
            decode(&body[1..]).map_err(|e| ConfigError::Damaged(e.to_string()))?;
        cfg.chunker.validate().map_err(ConfigError::Damaged)?;
        if !(1 << 20..=256 << 20).contains(&cfg.pack_size) {
            return Err(ConfigError::Damaged(format!("pack size {}", cfg.pack_size)));
        }
        Ok(cfg)
    }

    /// Checks that `key` is this repository's key.
    pub fn check_key(&self, key: &BackupKey) -> Result<DerivedKeys, ConfigError> {
        let derived = key.derived();
        match arca_crypto::open(&derived.key_check, &self.aad(), &self.key_check) {
            Ok(p) if p == self.repo_id => Ok(derived),
            _ => Err(ConfigError::WrongKey),
        }
    }
}

impl From<FormatError> for ConfigError {
    fn from(e: FormatError) -> Self {
        ConfigError::Damaged(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wrong_key_and_damage_are_told_apart() {
        let key = BackupKey::from_bytes([1; 32]);
        let cfg = RepoConfig::new(&key.derived(), [7; 16], 1000);
        let bytes = cfg.to_bytes();
        let back = RepoConfig::from_bytes(&bytes).unwrap();
        assert_eq!(back, cfg);
        assert!(back.check_key(&key).is_ok());
        assert_eq!(
            back.check_key(&BackupKey::from_bytes([2; 32])).unwrap_err(),
            ConfigError::WrongKey
        );
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 0x40;
            assert!(
                matches!(RepoConfig::from_bytes(&t), Err(ConfigError::Damaged(_))),
                "byte {i}"
            );
        }
        assert!(matches!(
            RepoConfig::from_bytes(&bytes[..bytes.len() - 1]),
            Err(ConfigError::Damaged(_))
        ));
    }

    proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = RepoConfig::from_bytes(&bytes);
        }
    }
}
