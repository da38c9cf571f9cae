//! `arca disable [--delete-backup]`: turn backup off on this device. Deletes the key vault's
//! password record and head register for this backup, then this device's key, state and caches;
//! with `--delete-backup`, first every file of the repository. Each step is done only after the
//! previous one succeeded, so running it again after a failure finishes the job.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use arca_client::ClientError;
use arca_engine::{EngineError, Repository};
use arca_storage::{Storage, StorageUrl};

use super::Ctx;
use crate::cli::DisableArgs;
use crate::exit::{NotSetUp, OK, UsageError};
use crate::{keysource, vault};

pub fn run(ctx: &Ctx, args: DisableArgs) -> Result<i32> {
    let has_key = ctx.device.stored_key()?.is_some();
    if !has_key && ctx.state.repo.is_none() && !args.delete_backup {
        bail!(NotSetUp(format!(
            "backup is not enabled on this device (config folder {})",
            ctx.device.dir.display()
        )));
    }
    let storage = ctx.storage()?;
    let config = match Repository::read_config(&storage) {
        Ok(c) => Some(c),
        Err(EngineError::NoRepository(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let repo_id: Option<[u8; 16]> = config.as_ref().map(|c| c.repo_id).or_else(|| {
        ctx.state
            .repo_id
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .and_then(|v| v.try_into().ok())
    });

    if args.delete_backup {
        if config.is_some() {
            confirm(
                &format!(
                    "This deletes every backup in {} for good, and the password and key of this device.",
                    ctx.repo_url
                ),
                args.yes,
            )?;
        }
    } else if ctx.state.password_only && config.is_some() {
        confirm(
            &format!(
                "The backup in {} is kept, but once its password and this device's key are deleted, only\n\
                 the 64-digit key opens it, and it was never shown: run `arca key show` first to keep it.",
                ctx.repo_url
            ),
            args.yes,
        )?;
    }

    // 1. The repository's files, after proving that this device can open it.
    let mut deleted_files = 0usize;
    if args.delete_backup
        && let Some(config) = &config
    {
        let key = keysource::resolve(&ctx.device, &ctx.state, &config.repo_id)?;
        Repository::open(storage.clone(), &key)?;
        deleted_files = delete_repository(&storage, &ctx.repo_url)?;
    }

    // 2. The vault's record and head register.
    let mut vault_deleted = None;
    if let Some(repo_id) = repo_id {
        let location = vault::select(None, &ctx.state)?;
        let conn = if ctx.state.vault.is_some() {
            vault::connect(&location, &repo_id, &ctx.device, false)
                .context("the password backup was not deleted; nothing changed on this device")?
        } else {
            // Not a password device: clean up only what an available vault holds.
            vault::connect(&location, &repo_id, &ctx.device, false).unwrap_or(None)
        };
        if let Some(conn) = conn {
            let deleted = conn
                .transport
                .delete()
                .map_err(ClientError::from)
                .with_context(|| {
                    format!(
                        "cannot delete the password backup at the key vault {}; nothing changed on this device",
                        conn.describe()
                    )
                })?;
            vault_deleted = Some((conn.describe(), deleted));
        }
    }

    // 3. This device's key, state and caches.
    let removed = ctx.device.forget()?;

    if ctx.json {
        ctx.emit_json(serde_json::json!({
            "disabled": true,
            "repository": ctx.repo_url,
            "repository_deleted": args.delete_backup && config.is_some(),
            "repository_files_deleted": deleted_files,
            "vault": vault_deleted.as_ref().map(|(v, _)| v),
            "vault_record_deleted": vault_deleted.as_ref().is_some_and(|(_, d)| *d),
            "device_files_removed": removed,
        }));
        return Ok(OK);
    }
    if let Some((v, true)) = &vault_deleted {
        ctx.say(format!(
            "deleted the password backup and head register at the key vault {v}"
        ));
    }
    if !removed.is_empty() {
        ctx.say(format!(
            "removed this device's key and state from {}",
            ctx.device.dir.display()
        ));
    }
    if args.delete_backup && config.is_some() {
        ctx.say(format!(
            "deleted the backup in {} ({deleted_files} files)",
            ctx.repo_url
        ));
    } else if config.is_some() {
        ctx.say(format!(
            "the backup in {} is kept; its 64-digit key still opens it (`arca disable --delete-backup` deletes it)",
            ctx.repo_url
        ));
    }
    ctx.say("backup is off on this device");
    Ok(OK)
}

/// Asks for "yes" at a terminal; `--yes` skips the question; elsewhere it must be given.
fn confirm(what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!(UsageError(format!(
            "{}\nadd --yes to confirm (there is no terminal to ask)",
            what.replace('\n', " ")
        )));
    }
    eprintln!("{what}");
    eprint!("Type yes to go on: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the answer")?;
    if line.trim().eq_ignore_ascii_case("yes") {
        Ok(())
    } else {
        bail!(UsageError("not confirmed; nothing was changed".into()))
    }
}

/// Deletes every file arca keeps in the repository, the config last (so an interrupted run can
/// be repeated), then the emptied folders of a local repository. Returns how many files went.
fn delete_repository(storage: &Storage, url: &str) -> Result<usize> {
    let mut n = 0;
    for dir in ["snapshots", "index", "data"] {
        for f in storage.list(dir)? {
            storage
                .delete(&f.path)
                .with_context(|| format!("cannot delete {} from {url}", f.path))?;
            n += 1;
        }
    }
    storage
        .delete("config")
        .with_context(|| format!("cannot delete config from {url}"))?;
    n += 1;
    if let Ok(StorageUrl::File(root)) = StorageUrl::parse(url) {
        remove_empty_dirs(&root);
    }
    Ok(n)
}

/// Removes `dir` and the folders under it that are empty; anything else stays.
fn remove_empty_dirs(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
