use anyhow::{Result, bail};
use arca_crypto::{BackupKey, format_digits};
use arca_engine::{EngineError, Repository};
use arca_format::chunker::ChunkerParams;
use arca_format::config::DEFAULT_PACK_SIZE;

use super::Ctx;
use crate::cli::EnableArgs;
use crate::device::DeviceState;
use crate::exit::{OK, UsageError};
use crate::keysource;

pub fn run(ctx: &Ctx, args: EnableArgs) -> Result<i32> {
    if !args.key {
        bail!(UsageError(
            "choose how the backup is protected: `arca enable --key` makes a 64-digit key that you keep".into()
        ));
    }
    if ctx.device.stored_key()?.is_some() {
        bail!(UsageError(format!(
            "backup is already enabled on this device (config folder {}); `arca key show` prints its key, `arca status` shows the repository",
            ctx.device.dir.display()
        )));
    }
    let storage = ctx.storage()?;
    let (repo, key, created) = match Repository::read_config(&storage) {
        Err(EngineError::NoRepository(_)) => {
            let key = match keysource::from_env()? {
                Some(k) => k,
                None => BackupKey::generate(),
            };
            let (chunker, pack_size) = tuning()?;
            (
                Repository::init_with(storage, &key, chunker, pack_size)?,
                key,
                true,
            )
        }
        Ok(_) => {
            // Joining an existing repository from this device needs its key.
            let Some(key) = keysource::from_env()? else {
                bail!(UsageError(format!(
                    "a backup already exists at {}; to use it from this device, set ARCA_KEY (or ARCA_KEY_FILE) to its 64-digit key and run `arca enable --key` again",
                    ctx.repo_url
                )));
            };
            (Repository::open(storage, &key)?, key, false)
        }
        Err(e) => return Err(e.into()),
    };
    ctx.device.store_key(&key)?;
    let state = DeviceState {
        repo: Some(ctx.repo_url.clone()),
        repo_id: Some(repo.id_hex()),
        paths: ctx.state.paths.clone(),
    };
    ctx.device.save_state(&state)?;
    let digits = format_digits(&key);
    if ctx.json {
        ctx.emit_json(serde_json::json!({
            "repository": ctx.repo_url,
            "repository_id": repo.id_hex(),
            "created": created,
            "key": digits,
            "key_file": ctx.device.key_path(),
        }));
    } else {
        println!(
            "End-to-end encrypted backup is {} at {}.\n",
            if created { "set up" } else { "connected" },
            ctx.repo_url
        );
        println!("Your 64-digit key:\n\n    {digits}\n");
        println!(
            "Write it down or keep it in a password manager, away from this device. It is the only way\n\
             to restore this backup on a new device: nobody, including the storage provider, can\n\
             recover it for you. This device keeps a copy in {} (readable only by you);\n\
             `arca key show` prints it again.",
            ctx.device.key_path().display()
        );
    }
    Ok(OK)
}

/// `ARCA_CHUNKER=min,avg,max` and `ARCA_PACK_SIZE=bytes` choose a new repository's chunk and
/// pack sizes; they exist for the measurements that chose the defaults (BENCHMARKS.md).
fn tuning() -> Result<(ChunkerParams, u32)> {
    let mut chunker = ChunkerParams::default();
    if let Ok(v) = std::env::var("ARCA_CHUNKER") {
        let parts: Vec<u32> = v.split(',').filter_map(|p| p.trim().parse().ok()).collect();
        let [min, avg, max] = parts[..] else {
            bail!(UsageError(format!(
                "ARCA_CHUNKER must be min,avg,max in bytes, not {v:?}"
            )));
        };
        chunker = ChunkerParams { min, avg, max };
    }
    let pack_size = match std::env::var("ARCA_PACK_SIZE") {
        Ok(v) => v.trim().parse().map_err(|_| {
            UsageError(format!(
                "ARCA_PACK_SIZE must be a number of bytes, not {v:?}"
            ))
        })?,
        Err(_) => DEFAULT_PACK_SIZE,
    };
    Ok((chunker, pack_size))
}
