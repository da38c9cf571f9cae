//! The key envelope: K sealed under a key derived from the OPAQUE export key, which only the
//! right password yields. Layout: `version (1) = 1 || nonce (24) || sealed K (32) || tag (16)`,
//! AAD `"arca envelope v1" || account`.

use arca_crypto::{AeadKey, BackupKey};
use hkdf::Hkdf;
use sha2::Sha512;
use zeroize::Zeroizing;

const VERSION: u8 = 1;

fn envelope_key(export_key: &[u8]) -> AeadKey {
    let hk = Hkdf::<Sha512>::new(None, export_key);
    let mut k = Zeroizing::new([0u8; 32]);
    hk.expand(b"arca v1 key envelope", &mut k[..])
        .expect("32 bytes is a valid HKDF output length");
    AeadKey::new(BackupKey::from_bytes(*k).derive("arca v1 key envelope key"))
}

fn aad(account: &str) -> Vec<u8> {
    let mut a = b"arca envelope v1".to_vec();
    a.extend_from_slice(account.as_bytes());
    a
}

pub fn seal_envelope(export_key: &[u8], account: &str, key: &BackupKey) -> Vec<u8> {
    let mut out = vec![VERSION];
    envelope_key(export_key).seal_into(&aad(account), key.expose(), &mut out);
    out
}

/// `None` if the envelope does not open (another password's export key, or altered bytes).
pub fn open_envelope(export_key: &[u8], account: &str, envelope: &[u8]) -> Option<BackupKey> {
    let (&v, rest) = envelope.split_first()?;
    if v != VERSION {
        return None;
    }
    let plain = Zeroizing::new(envelope_key(export_key).open(&aad(account), rest).ok()?);
    let bytes: [u8; 32] = plain.as_slice().try_into().ok()?;
    Some(BackupKey::from_bytes(bytes))
}

/// A value derived from K that proves possession of the 64-digit key to the vault (which keeps
/// only its BLAKE3 hash), so the key can replace a forgotten password.
pub fn key_proof(key: &BackupKey) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(*key.derive("arca v1 vault key proof").expose())
}
