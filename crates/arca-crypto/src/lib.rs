//! Keys and primitives of arca: the backup key K, the keys derived from it, the AEAD that seals
//! every stored object, and the 64-digit form in which a person sees K.
//!
//! Nothing here invents a primitive: HKDF-SHA256 (`hkdf`), XChaCha20-Poly1305 (HChaCha20 from
//! `chacha20`, ChaCha20-Poly1305 from `ring`; see `aead.rs`) and keyed BLAKE3 (`blake3`) do the
//! work. Every key type zeroizes on drop.

mod aead;
mod digits;
mod keys;

pub use aead::{AeadKey, NONCE_LEN, OVERHEAD, TAG_LEN, open, seal};
pub use digits::{DigitsError, format_digits, parse_digits};
pub use keys::{BackupKey, DerivedKeys, MacKey, SecretBytes};

/// Errors of the primitives.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The ciphertext does not authenticate under this key and associated data: a wrong key, or
    /// bytes changed after they were sealed.
    #[error("authentication failed: wrong key or altered data")]
    Authentication,
    /// The ciphertext is shorter than a nonce plus a tag.
    #[error("ciphertext too short ({0} bytes)")]
    TooShort(usize),
}
