use anyhow::Result;
use arca_engine::{EngineError, Repository};

use super::Ctx;
use crate::exit::OK;
use crate::keysource;
use crate::output::{bytes, time};
use crate::vault;

pub fn run(ctx: &Ctx) -> Result<i32> {
    let has_key = ctx.device.stored_key()?.is_some();
    let storage = ctx.storage()?;
    let mut repo_size = 0u64;
    for dir in ["data", "index", "snapshots"] {
        repo_size += storage.list(dir)?.iter().map(|l| l.size).sum::<u64>();
    }
    let (exists, repo_id) = match Repository::read_config(&storage) {
        Ok(c) => (true, Some(hex::encode(c.repo_id))),
        Err(EngineError::NoRepository(_)) => (false, None),
        Err(e) => return Err(e.into()),
    };
    let mut last = None;
    let mut count = None;
    let mut opened = false;
    if exists
        && let Some(key) = keysource::from_env()?.or(ctx.device.stored_key()?)
        && let Ok(repo) = Repository::open(storage.clone(), &key)
    {
        opened = true;
        let snaps = repo.snapshots()?;
        count = Some(snaps.len());
        last = snaps.last().cloned();
    }
    let protection = match (has_key, &ctx.state.vault, ctx.state.password_only) {
        (false, _, _) => None,
        (true, None, _) => Some("64-digit key"),
        (true, Some(_), true) => Some("password"),
        (true, Some(_), false) => Some("password and 64-digit key"),
    };
    // The password record's state at the vault, if this device uses one.
    let vault_status = match (&ctx.state.vault, &repo_id) {
        (Some(_), Some(id)) => Some(password_status(ctx, id)),
        _ => None,
    };
    if ctx.json {
        ctx.emit_json(serde_json::json!({
            "config_dir": ctx.device.dir,
            "enabled": has_key,
            "protection": protection,
            "vault": ctx.state.vault,
            "password_status": vault_status,
            "repository": ctx.repo_url,
            "repository_exists": exists,
            "repository_id": repo_id,
            "key_opens_repository": opened,
            "repository_bytes": repo_size,
            "snapshots": count,
            "last_backup": last.as_ref().map(|s| serde_json::json!({
                "id": s.id.to_hex(), "time": s.snapshot.time, "files": s.snapshot.summary.files, "bytes": s.snapshot.summary.bytes,
            })),
            "paths": ctx.state.paths,
            "storage": {
                "kind": storage.url().kind(),
                "uploads": storage.transfers().uploads,
                "downloads": storage.transfers().downloads,
                "retries": storage.transfers().retries,
                "limit_upload": storage.transfers().limit_upload,
                "limit_download": storage.transfers().limit_download,
            },
            "traffic": super::backup::storage_traffic(&storage),
        }));
        return Ok(OK);
    }
    println!("device config:   {}", ctx.device.dir.display());
    match protection {
        Some(p) => println!("backup:          enabled, protected by a {p}"),
        None => println!(
            "backup:          not enabled on this device (`arca enable --key` or `arca enable --password`)"
        ),
    }
    if let (Some(v), Some(st)) = (&ctx.state.vault, &vault_status) {
        println!("key vault:       {v} ({st})");
    }
    println!(
        "repository:      {} ({})",
        ctx.repo_url,
        if exists { "exists" } else { "none yet" }
    );
    if exists {
        println!("repository size: {}", bytes(repo_size));
    }
    if !ctx.state.paths.is_empty() {
        println!(
            "backs up:        {}",
            ctx.state
                .paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match (count, last) {
        (Some(n), Some(s)) => println!(
            "last backup:     {} at {} ({} files, {}); {n} backups in all",
            s.id.short(),
            time(s.snapshot.time),
            s.snapshot.summary.files,
            bytes(s.snapshot.summary.bytes)
        ),
        (Some(_), None) => println!("last backup:     none yet"),
        _ if exists => {
            println!("last backup:     unknown (this device's key does not open the repository)")
        }
        _ => {}
    }
    Ok(OK)
}

/// The password record's state at the vault, in words.
fn password_status(ctx: &Ctx, repo_id: &str) -> String {
    let id: Option<[u8; 16]> = hex::decode(repo_id).ok().and_then(|v| v.try_into().ok());
    let Some(id) = id else {
        return "unknown".into();
    };
    let asked = vault::select(None, &ctx.state)
        .and_then(|loc| vault::connect(&loc, &id, &ctx.device, false))
        .and_then(|c| match c {
            Some(c) => Ok(Some(c.transport.status()?)),
            None => Ok(None),
        });
    match asked {
        Ok(Some(s)) if s.registered => format!(
            "password set, {} of {} wrong guesses left",
            s.guesses_left.unwrap_or(0),
            s.guess_limit.unwrap_or(0)
        ),
        Ok(Some(s)) if s.gone => "the password backup is gone (guesses used up)".into(),
        Ok(_) => "no password registered".into(),
        Err(e) => format!("unreachable: {e:#}"),
    }
}
