use std::time::Instant;

use anyhow::{Result, bail};
use arca_engine::{BackupOptions, backup, scan_totals};

use super::Ctx;
use crate::cli::BackupArgs;
use crate::exit::{OK, UsageError, WARNINGS};
use crate::output::{bytes, lossy};

pub fn run(ctx: &Ctx, args: BackupArgs) -> Result<i32> {
    let paths = if args.paths.is_empty() {
        if ctx.state.paths.is_empty() {
            bail!(UsageError(
                "name the files or folders to back up, e.g. `arca backup ~/Documents`; they are remembered for the next `arca backup`".into()
            ));
        }
        ctx.state.paths.clone()
    } else {
        args.paths
            .iter()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .collect()
    };
    let (repo, key) = ctx.open_keyed()?;
    let mut opts = BackupOptions::new(paths.clone());
    opts.cache_dir = Some(ctx.device.cache_dir(&repo.id_hex()));
    opts.exclude.push(ctx.device.dir.clone());
    if let Some(f) = ctx.repo_folder() {
        opts.exclude.push(f);
    }
    opts.min_seq = crate::head::next_seq_floor(&ctx.device, &ctx.state, &repo, &key);
    opts.uploads = repo.storage().transfers().uploads;
    let started = Instant::now();
    let progress = ctx.progress("backup");
    let counters = progress.counters.clone();
    // The bar's totals come from a second walk beside the backup's: on 300 k small files a
    // tenth of a no-change backup's time, so only when there is a bar.
    let scanner = progress.shown().then(|| {
        let scan_paths = paths.clone();
        std::thread::spawn(move || scan_totals(&scan_paths, &counters))
    });
    let result = backup(&repo, &opts, &progress.counters);
    if let Some(s) = scanner {
        let _ = s.join();
    }
    progress.finish();
    let mut report = result?;

    // Advance the vault's head register; failing to is a warning, never a lost backup.
    if let Some(w) = crate::head::record(&ctx.device, &ctx.state, &repo, &key, report.snapshot.seq)
    {
        report.warnings.push(w);
    }

    // Remember the paths for the next plain `arca backup`.
    if !args.paths.is_empty() || ctx.state.repo.is_none() {
        let mut state = ctx.state.clone();
        state.paths = paths;
        if state.repo.is_none() {
            state.repo = Some(ctx.repo_url.clone());
            state.repo_id = Some(repo.id_hex());
        }
        if let Err(e) = ctx.device.save_state(&state) {
            tracing::info!("paths not remembered: {e:#}");
        }
    }

    let s = &report.snapshot;
    let secs = started.elapsed().as_secs_f64();
    if ctx.json {
        ctx.emit_json(serde_json::json!({
            "snapshot": report.id.to_hex(),
            "seq": s.seq,
            "files": s.summary.files,
            "dirs": s.summary.dirs,
            "bytes": s.summary.bytes,
            "new_bytes": s.summary.new_bytes,
            "uploaded_bytes": s.summary.uploaded_bytes,
            "reused_packs": report.reused_packs,
            "seconds": secs,
            "warnings": report.warnings,
            "traffic": traffic(&repo),
        }));
    } else {
        for w in &report.warnings {
            eprintln!("arca: warning: {w}");
        }
        ctx.say(format!(
            "backup {} saved: {} files, {} ({} new, {} uploaded) in {:.1}s from {}",
            report.id.short(),
            s.summary.files,
            bytes(s.summary.bytes),
            bytes(s.summary.new_bytes),
            bytes(s.summary.uploaded_bytes),
            secs,
            s.paths
                .iter()
                .map(|p| lossy(p))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(if report.warnings.is_empty() {
        OK
    } else {
        WARNINGS
    })
}

pub fn traffic(repo: &arca_engine::Repository) -> serde_json::Value {
    storage_traffic(repo.storage())
}

/// Bytes and requests to and from the storage, for `--json` output.
pub fn storage_traffic(storage: &arca_storage::Storage) -> serde_json::Value {
    let t = storage.stats();
    serde_json::json!({
        "storage": storage.url().kind(),
        "bytes_sent": t.bytes_sent,
        "bytes_received": t.bytes_received,
        "requests": t.requests,
        "retries": t.retries,
    })
}
