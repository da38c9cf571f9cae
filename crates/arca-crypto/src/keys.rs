//! The backup key K and the keys derived from it with HKDF-SHA256 under distinct labels.

use hkdf::Hkdf;
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::AeadKey;

/// 32 secret bytes that are wiped when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(pub(crate) [u8; 32]);

impl SecretBytes {
    /// The bytes; keep the borrow short and never log it.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes(..)")
    }
}

/// K: the 32 random bytes from which every repository key is derived.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BackupKey([u8; 32]);

impl BackupKey {
    /// A fresh key from the operating system's random generator.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        OsRng.fill_bytes(&mut k);
        BackupKey(k)
    }

    /// A key from its 32 bytes (e.g. parsed from the 64-digit form or unwrapped from an envelope).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        BackupKey(bytes)
    }

    /// The raw bytes; used only to show the 64-digit form or to wrap K.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// HKDF-SHA256 with K as input key material, no salt, and `label` as info.
    pub fn derive(&self, label: &str) -> SecretBytes {
        let hk = Hkdf::<Sha256>::new(None, &self.0);
        let mut out = [0u8; 32];
        hk.expand(label.as_bytes(), &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        SecretBytes(out)
    }

    /// Every key a repository uses, derived once.
    pub fn derived(&self) -> DerivedKeys {
        DerivedKeys {
            blob_id: self.derive(labels::BLOB_ID),
            data: AeadKey::new(self.derive(labels::DATA)),
            meta: AeadKey::new(self.derive(labels::META)),
            chunker: self.derive(labels::CHUNKER),
            key_check: AeadKey::new(self.derive(labels::KEY_CHECK)),
            head_mac: MacKey(self.derive(labels::HEAD_MAC)),
        }
    }
}

impl PartialEq for BackupKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for BackupKey {}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupKey(..)")
    }
}

/// HKDF labels; changing one changes the repository format.
pub mod labels {
    pub const BLOB_ID: &str = "arca v1 blob id";
    pub const DATA: &str = "arca v1 data encryption";
    pub const META: &str = "arca v1 metadata encryption";
    pub const CHUNKER: &str = "arca v1 chunker gear table";
    pub const KEY_CHECK: &str = "arca v1 key check";
    pub const HEAD_MAC: &str = "arca v1 head register mac";
}

/// The keys of one repository, all derived from K.
#[derive(Clone, Debug)]
pub struct DerivedKeys {
    /// Keys BLAKE3 for blob ids, so ids of known content cannot be computed without K.
    pub blob_id: SecretBytes,
    /// Seals data blobs (file chunks).
    pub data: AeadKey,
    /// Seals trees, pack headers, indexes and snapshots.
    pub meta: AeadKey,
    /// Seeds the gear table of the content-defined chunker.
    pub chunker: SecretBytes,
    /// Seals the known plaintext in the repository config that tells a wrong key from damage.
    pub key_check: AeadKey,
    /// MACs the backup head register kept by the vault.
    pub head_mac: MacKey,
}

impl DerivedKeys {
    /// The keyed BLAKE3 id of a blob's plaintext.
    pub fn blob_id(&self, plaintext: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(self.blob_id.expose(), plaintext).as_bytes()
    }
}

/// A MAC key (keyed BLAKE3).
#[derive(Clone, Debug)]
pub struct MacKey(SecretBytes);

impl MacKey {
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(self.0.expose(), message).as_bytes()
    }

    /// Constant-time check of a MAC.
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        let expected = self.mac(message);
        expected.as_slice().ct_eq(tag).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_give_distinct_keys() {
        let k = BackupKey::from_bytes([7; 32]);
        let all = [
            labels::BLOB_ID,
            labels::DATA,
            labels::META,
            labels::CHUNKER,
            labels::KEY_CHECK,
            labels::HEAD_MAC,
        ];
        let derived: Vec<[u8; 32]> = all.iter().map(|l| *k.derive(l).expose()).collect();
        for i in 0..derived.len() {
            assert_ne!(derived[i], [7; 32]);
            for j in i + 1..derived.len() {
                assert_ne!(derived[i], derived[j], "{} vs {}", all[i], all[j]);
            }
        }
    }

    #[test]
    fn blob_ids_depend_on_the_key() {
        let a = BackupKey::from_bytes([1; 32]).derived();
        let b = BackupKey::from_bytes([2; 32]).derived();
        assert_eq!(a.blob_id(b"hello"), a.blob_id(b"hello"));
        assert_ne!(a.blob_id(b"hello"), b.blob_id(b"hello"));
        assert_ne!(a.blob_id(b"hello"), *blake3::hash(b"hello").as_bytes());
    }

    #[test]
    fn mac_verifies_and_rejects() {
        let k = BackupKey::generate().derived();
        let tag = k.head_mac.mac(b"seq 5");
        assert!(k.head_mac.verify(b"seq 5", &tag));
        assert!(!k.head_mac.verify(b"seq 6", &tag));
        assert!(!k.head_mac.verify(b"seq 5", &tag[..31]));
    }
}
