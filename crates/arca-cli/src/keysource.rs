//! Where K comes from: ARCA_KEY, ARCA_KEY_FILE, this device's key file, or the terminal.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use arca_crypto::{BackupKey, parse_digits};
use zeroize::Zeroizing;

use crate::device::Device;
use crate::exit::NotSetUp;

/// The key from the environment, if one is given there.
pub fn from_env() -> Result<Option<BackupKey>> {
    if let Some(v) = std::env::var_os("ARCA_KEY") {
        let s = Zeroizing::new(v.to_string_lossy().into_owned());
        return Ok(Some(
            parse_digits(&s).context("ARCA_KEY is not a valid 64-digit key")?,
        ));
    }
    if let Some(path) = std::env::var_os("ARCA_KEY_FILE") {
        let s =
            Zeroizing::new(std::fs::read_to_string(&path).with_context(|| {
                format!("cannot read ARCA_KEY_FILE {}", path.to_string_lossy())
            })?);
        return Ok(Some(parse_digits(&s).with_context(|| {
            format!(
                "{} does not hold a valid 64-digit key",
                path.to_string_lossy()
            )
        })?));
    }
    Ok(None)
}

/// Asks on the terminal.
pub fn prompt() -> Result<BackupKey> {
    if !std::io::stdin().is_terminal() {
        return Err(NotSetUp(
            "this device has no key for this backup: set ARCA_KEY to the 64-digit key, or ARCA_KEY_FILE to a file holding it".into(),
        )
        .into());
    }
    let s = Zeroizing::new(
        rpassword::prompt_password("Enter the 64-digit key of this backup: ")
            .context("cannot read the key from the terminal")?,
    );
    Ok(parse_digits(&s)?)
}

/// The key to open a repository: environment first, then this device's copy, then the terminal.
pub fn resolve(device: &Device) -> Result<BackupKey> {
    if let Some(k) = from_env()? {
        return Ok(k);
    }
    if let Some(k) = device.stored_key()? {
        return Ok(k);
    }
    prompt()
}
