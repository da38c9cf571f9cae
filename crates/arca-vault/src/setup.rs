//! The vault's OPAQUE `ServerSetup` (its OPRF seed and key pair), persisted sealed under a
//! master key. Losing the master key or the setup loses every password recovery: the OPRF seed
//! is what turns a password into the key that opens each envelope.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use arca_crypto::{AeadKey, BackupKey};
use opaque_ke::ServerSetup;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::VaultError;
use crate::store::RecordStore;
use crate::suite::Suite;

const AAD: &[u8] = b"arca vault server setup v1";

/// The key that seals the `ServerSetup` at rest.
pub struct MasterKey(AeadKey);

impl MasterKey {
    /// From 64 hex digits (a file's content or an environment variable's value).
    pub fn from_hex(text: &str) -> Result<Self, VaultError> {
        let text = Zeroizing::new(text.trim().to_string());
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex_decode(&text, &mut bytes[..])
            .map_err(|_| VaultError::BadRequest("the master key must be 64 hex digits".into()))?;
        Ok(MasterKey(AeadKey::new(
            BackupKey::from_bytes(*bytes).derive("arca vault master key v1"),
        )))
    }

    /// Reads the master key from `path`, creating it (mode 0600) if `create` and it is absent.
    pub fn from_file(path: &Path, create: bool) -> Result<Self, VaultError> {
        match std::fs::read_to_string(path) {
            Ok(s) => Self::from_hex(&s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut raw = Zeroizing::new([0u8; 32]);
                OsRng.fill_bytes(&mut raw[..]);
                let text = Zeroizing::new(hex_encode(&raw[..]));
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        VaultError::Store(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| {
                        VaultError::Store(format!("cannot create {}: {e}", path.display()))
                    })?;
                f.write_all(text.as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(|e| {
                        VaultError::Store(format!("cannot write {}: {e}", path.display()))
                    })?;
                Self::from_hex(&text)
            }
            Err(e) => Err(VaultError::Store(format!(
                "cannot read the master key {}: {e}",
                path.display()
            ))),
        }
    }
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_decode(s: &str, out: &mut [u8]) -> Result<(), ()> {
    if s.len() != out.len() * 2 || !s.is_ascii() {
        return Err(());
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).map_err(|_| ())?;
    }
    Ok(())
}

/// Loads the stored setup, or makes and stores one on first start.
pub fn load_or_create(
    store: &dyn RecordStore,
    master: &MasterKey,
) -> Result<ServerSetup<Suite>, VaultError> {
    let sealed = match store.server_setup()? {
        Some(s) => s,
        None => {
            let setup = ServerSetup::<Suite>::new(&mut OsRng);
            let plain = Zeroizing::new(setup.serialize().to_vec());
            store.init_server_setup(&arca_crypto::seal(&master.0, AAD, &plain))?
        }
    };
    let plain = Zeroizing::new(arca_crypto::open(&master.0, AAD, &sealed).map_err(|_| {
        VaultError::Store(
            "the master key does not open this vault's stored OPAQUE setup (wrong master key?)"
                .into(),
        )
    })?);
    ServerSetup::<Suite>::deserialize(&plain)
        .map_err(|e| VaultError::Store(format!("the stored OPAQUE setup is damaged: {e}")))
}
