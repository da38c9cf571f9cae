//! `arca password change` and `arca password verify`.

use anyhow::{Result, bail};
use arca_client::ClientError;
use arca_engine::{EngineError, Repository};
use arca_vault::wire::AccountStatus;

use super::Ctx;
use crate::cli::ChangeArgs;
use crate::exit::{NotSetUp, OK, UsageError};
use crate::password::{self, NEW_PASSWORD_VAR, PASSWORD_VAR};
use crate::{keysource, vault};

/// The vault connection for this device's backup, and its record's status. Refuses when the
/// vault holds no password for it.
fn connect(ctx: &Ctx) -> Result<(vault::Conn, AccountStatus, [u8; 16])> {
    let repo_id = repo_id(ctx)?;
    let location = vault::select(None, &ctx.state)?;
    let Some(conn) = vault::connect(&location, &repo_id, &ctx.device, false)? else {
        bail!(NotSetUp(format!(
            "there is no key vault at {}, so this backup has no password; `arca enable --password` sets one (ARCA_VAULT names another vault)",
            location.to_text()
        )));
    };
    let status = conn.status()?;
    if status.gone {
        return Err(ClientError::Gone.into());
    }
    if !status.registered {
        bail!(NotSetUp(format!(
            "the key vault {} holds no password for this backup; `arca enable --password` sets one",
            conn.describe()
        )));
    }
    Ok((conn, status, repo_id))
}

/// The repository id: from the repository's config (readable without a key), else from what
/// this device recorded when it was enabled.
fn repo_id(ctx: &Ctx) -> Result<[u8; 16]> {
    match Repository::read_config(&ctx.storage()?) {
        Ok(c) => Ok(c.repo_id),
        Err(EngineError::NoRepository(url)) => ctx
            .state
            .repo_id
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .and_then(|v| <[u8; 16]>::try_from(v).ok())
            .ok_or_else(|| EngineError::NoRepository(url).into()),
        Err(e) => Err(e.into()),
    }
}

pub fn change(ctx: &Ctx, args: ChangeArgs) -> Result<i32> {
    let (conn, status, _) = connect(ctx)?;
    let limit = status.guess_limit;
    let t = conn.transport.as_ref();
    let done = if args.with_key {
        let key = match keysource::from_env()? {
            Some(k) => k,
            None => match ctx.device.stored_key()? {
                Some(k) => k,
                None => keysource::prompt()?,
            },
        };
        let new = password::choose(NEW_PASSWORD_VAR)?;
        arca_client::change_password_with_key(
            t,
            &conn.account,
            &key,
            new.as_bytes(),
            vault::ksf(),
            limit,
        )
        .map_err(|e| match e {
            ClientError::Vault(arca_vault::VaultError::Forbidden(_)) => {
                anyhow::Error::new(EngineError::WrongKey).context("the password was not changed")
            }
            other => other.into(),
        })?
    } else {
        let current = password::require_current("Current password: ")?;
        let new = password::choose(NEW_PASSWORD_VAR)?;
        if *current == *new {
            bail!(UsageError(format!(
                "the new password ({NEW_PASSWORD_VAR}) is the same as the current one ({PASSWORD_VAR})"
            )));
        }
        let recovered = conn.recover(&current)?;
        arca_client::change_password_with_ticket(
            t,
            &conn.account,
            &recovered,
            new.as_bytes(),
            vault::ksf(),
            limit,
        )?
    };
    if ctx.json {
        ctx.emit_json(serde_json::json!({
            "changed": true,
            "vault": conn.describe(),
            "guess_limit": done.guess_limit,
            "guesses_left": done.guesses_left,
        }));
    } else {
        ctx.say(format!(
            "password changed at the key vault {}; the old one no longer opens the backup ({} wrong guesses allowed)",
            conn.describe(),
            done.guess_limit
        ));
    }
    Ok(OK)
}

pub fn verify(ctx: &Ctx) -> Result<i32> {
    let (conn, status, repo_id) = connect(ctx)?;
    let pw = password::require_current(&format!(
        "Password ({} guesses left): ",
        status.guesses_left.unwrap_or(0)
    ))?;
    let recovered = conn.recover(&pw)?;
    // The key it releases must be this backup's.
    if let Ok(config) = Repository::read_config(&ctx.storage()?)
        && config.repo_id == repo_id
        && config.check_key(&recovered.key).is_err()
    {
        bail!(
            "the password is right, but the key the vault released does not open the backup at {}; restore with the 64-digit key",
            ctx.repo_url
        );
    }
    if ctx.json {
        ctx.emit_json(serde_json::json!({
            "ok": true,
            "vault": conn.describe(),
            "guesses_left": recovered.guesses_left,
        }));
    } else {
        ctx.say(format!(
            "ok: the password opens this backup ({} wrong guesses allowed again)",
            recovered.guesses_left
        ));
    }
    Ok(OK)
}
