//! Where K comes from, in order: ARCA_KEY or ARCA_KEY_FILE, this device's key file, the
//! password (if the key vault holds a password backup for this repository), the terminal.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use arca_crypto::{BackupKey, parse_digits};
use zeroize::Zeroizing;

use arca_client::ClientError;

use crate::device::{Device, DeviceState};
use crate::exit::NotSetUp;
use crate::{password, vault};

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

/// The key to open the repository `repo_id`: environment first, then this device's copy, then
/// the password through the key vault, then the 64-digit key typed at the terminal.
pub fn resolve(device: &Device, state: &DeviceState, repo_id: &[u8; 16]) -> Result<BackupKey> {
    if let Some(k) = from_env()? {
        return Ok(k);
    }
    if let Some(k) = device.stored_key()? {
        return Ok(k);
    }
    match from_password(device, state, repo_id) {
        Ok(Some(k)) => return Ok(k),
        Ok(None) => {}
        Err(e) => {
            // At a terminal the 64-digit key can still be typed; elsewhere, say what failed.
            if !std::io::stdin().is_terminal() {
                return Err(e);
            }
            eprintln!("arca: {e:#}");
        }
    }
    prompt()
}

/// K recovered with the password, if the vault holds a password backup for this repository.
/// `Ok(None)`: there is none, or the person at the terminal chose to type the key instead.
fn from_password(
    device: &Device,
    state: &DeviceState,
    repo_id: &[u8; 16],
) -> Result<Option<BackupKey>> {
    let location = vault::select(None, state)?;
    let Some(conn) = vault::connect(&location, repo_id, device, false)? else {
        return Ok(None);
    };
    let status = conn.status()?;
    if status.gone {
        return Err(ClientError::Gone.into());
    }
    if !status.registered {
        return Ok(None);
    }
    let left = status.guesses_left.unwrap_or(0);
    let Some(mut pw) = password::current(&format!(
        "Password for this backup ({left} guesses left; leave empty to type the 64-digit key instead): "
    ))?
    else {
        return Err(NotSetUp(format!(
            "this device has no key for this backup, which has a password at the key vault {}: set {} to the password, or ARCA_KEY to the 64-digit key",
            conn.describe(),
            password::PASSWORD_VAR
        ))
        .into());
    };
    let interactive = std::env::var_os(password::PASSWORD_VAR).is_none();
    loop {
        if pw.is_empty() {
            return Ok(None);
        }
        match conn.recover(&pw) {
            Ok(r) => return Ok(Some(r.key)),
            Err(ClientError::WrongPassword { guesses_left }) if interactive => {
                eprintln!(
                    "arca: wrong password; {guesses_left} guesses left before this password backup is destroyed"
                );
                match password::ask_again(
                    "Password (leave empty to type the 64-digit key instead): ",
                )? {
                    Some(p) => pw = p,
                    None => return Ok(None),
                }
            }
            Err(ClientError::Gone) if interactive => {
                eprintln!("arca: {}", ClientError::Gone);
                return Ok(None);
            }
            Err(e @ (ClientError::WrongPassword { .. } | ClientError::Gone)) => {
                return Err(e.into());
            }
            Err(e) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("key vault {}", conn.describe()));
            }
        }
    }
}
