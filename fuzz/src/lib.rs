//! Shared helpers of the arca fuzz targets: a fixed test key, and the sealing steps that let a
//! target put fuzzer bytes *behind* authentication, so the plaintext decoders that only a holder
//! of K (or a malicious device) can reach are fuzzed as well as the outer framing that the cloud
//! can reach.
//!
//! Most targets read a first "mode" byte:
//! - `0`: the rest is a postcard plaintext; the target frames (zstd, length, padding) and seals
//!   it exactly as arca does, then runs the real opener;
//! - `1`: the rest is the framed plaintext (`length || zstd || padding`); the target seals it;
//! - anything else: the rest is the stored bytes as they come from storage (outer framing).

use std::sync::OnceLock;

use arca_crypto::{BackupKey, DerivedKeys};
use arca_format::FORMAT_VERSION;
use arca_format::object::ObjectKind;

pub mod seeds;
pub mod vault;

/// The fixed key every target derives its keys from (never a real key).
pub fn test_key() -> BackupKey {
    BackupKey::from_bytes([0x42; 32])
}

/// The derived keys of [`test_key`], built once.
pub fn keys() -> &'static DerivedKeys {
    static KEYS: OnceLock<DerivedKeys> = OnceLock::new();
    KEYS.get_or_init(|| test_key().derived())
}

/// `length (u32 LE) || zstd(plain)`, padded to 512 bytes as arca pads small objects.
pub fn frame(plain: &[u8]) -> Vec<u8> {
    let compressed = zstd::bulk::compress(plain, 1).expect("zstd compresses any input");
    let mut framed = (compressed.len() as u32).to_le_bytes().to_vec();
    framed.extend_from_slice(&compressed);
    if framed.len() < 512 {
        framed.resize(512, 0);
    }
    framed
}

/// Seals a framed plaintext as a metadata object of `kind` under [`keys`].
pub fn seal_framed(kind: ObjectKind, framed: &[u8]) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION, kind as u8];
    keys()
        .meta
        .seal_into(&[FORMAT_VERSION, kind as u8], framed, &mut out);
    out
}

/// The stored object a target hands to the real opener, chosen by the mode byte (see above).
pub fn object_from_input(kind: ObjectKind, data: &[u8]) -> Option<Vec<u8>> {
    let (&mode, rest) = data.split_first()?;
    Some(match mode {
        0 => seal_framed(kind, &frame(rest)),
        1 => seal_framed(kind, rest),
        _ => rest.to_vec(),
    })
}
