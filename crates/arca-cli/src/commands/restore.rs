use std::time::Instant;

use anyhow::Result;
use arca_engine::{RestoreOptions, restore};

use super::Ctx;
use crate::cli::RestoreArgs;
use crate::exit::{OK, WARNINGS};
use crate::output::bytes;

pub fn run(ctx: &Ctx, args: RestoreArgs) -> Result<i32> {
    let (repo, head_warnings) = ctx.open_checked(args.allow_rollback)?;
    let snap = repo.find_snapshot(args.snapshot.as_deref().unwrap_or("latest"))?;
    let index = repo.load_index()?;
    let opts = RestoreOptions {
        target: args.target.clone(),
        includes: args.include.iter().map(|i| i.as_bytes().to_vec()).collect(),
        threads: repo.storage().transfers().downloads,
    };
    let started = Instant::now();
    let progress = ctx.progress("restore");
    let result = restore(
        &repo,
        &index,
        &snap.snapshot.tree,
        &opts,
        &progress.counters,
    );
    progress.finish();
    let mut report = result?;
    // The head warnings were printed when the repository was opened.
    let n_head = head_warnings.len();
    report.warnings.splice(0..0, head_warnings);
    let secs = started.elapsed().as_secs_f64();
    if ctx.json {
        ctx.emit_json(serde_json::json!({
            "snapshot": snap.id.to_hex(),
            "target": args.target,
            "files": report.files,
            "dirs": report.dirs,
            "bytes": report.bytes,
            "skipped_files": report.skipped_files,
            "skipped_bytes": report.skipped_bytes,
            "seconds": secs,
            "warnings": report.warnings,
            "traffic": super::backup::traffic(&repo),
        }));
    } else {
        for w in &report.warnings[n_head..] {
            eprintln!("arca: warning: {w}");
        }
        ctx.say(format!(
            "restored backup {} into {}: {} files, {} directories, {} in {:.1}s{}",
            snap.id.short(),
            args.target.display(),
            report.files,
            report.dirs,
            bytes(report.bytes),
            secs,
            if report.skipped_files > 0 {
                format!(
                    " ({} files, {}, were already there whole and were kept)",
                    report.skipped_files,
                    bytes(report.skipped_bytes)
                )
            } else {
                String::new()
            }
        ));
    }
    Ok(if report.warnings.is_empty() {
        OK
    } else {
        WARNINGS
    })
}
