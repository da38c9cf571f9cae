//! The repository format of arca: how chunks become sealed blobs, blobs become padded packs, and
//! how indexes, trees, snapshots and the config are encoded and sealed. `docs/FORMAT.md` is the
//! byte-level description of everything here.

pub mod blob;
pub mod chunker;
pub mod config;
pub mod id;
pub mod index;
pub mod magic;
pub mod object;
pub mod pack;
pub mod snapshot;
pub mod tree;

/// The format version written as the first byte of every stored object.
pub const FORMAT_VERSION: u8 = 1;

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("format version {0} is not supported by this arca (it reads version 1)")]
    Version(u8),
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("authentication failed (altered bytes, or sealed under another key)")]
    Authentication,
    #[error("content does not match its id")]
    IdMismatch,
}

impl From<arca_crypto::CryptoError> for FormatError {
    fn from(_: arca_crypto::CryptoError) -> Self {
        FormatError::Authentication
    }
}

impl From<postcard::Error> for FormatError {
    fn from(e: postcard::Error) -> Self {
        FormatError::Malformed(e.to_string())
    }
}

/// Encodes with postcard (see docs/FORMAT.md for the wire rules).
pub fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("encoding to a Vec cannot fail")
}

/// Decodes postcard, refusing trailing bytes.
pub fn decode<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, FormatError> {
    let (value, rest) = postcard::take_from_bytes(bytes)?;
    if !rest.is_empty() {
        return Err(FormatError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(value)
}
