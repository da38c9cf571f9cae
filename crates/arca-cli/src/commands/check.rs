use anyhow::Result;
use arca_engine::{CheckOptions, check};

use super::Ctx;
use crate::cli::CheckArgs;
use crate::exit::{DAMAGED, OK};
use crate::output::bytes;

pub fn run(ctx: &Ctx, args: CheckArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let progress = ctx.progress("check");
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = repo.storage().transfers().downloads.max(cpus);
    let result = check(
        &repo,
        &CheckOptions {
            read_data: args.read_data,
            threads,
        },
        &progress.counters,
    );
    progress.finish();
    let r = result?;
    if ctx.json {
        ctx.emit_json(serde_json::json!({
            "ok": r.errors.is_empty(),
            "snapshots": r.snapshots,
            "trees": r.trees,
            "chunk_lists": r.lists,
            "packs": r.packs,
            "blobs": r.blobs,
            "bytes_read": r.bytes_read,
            "read_data": args.read_data,
            "errors": r.errors,
            "notes": r.notes,
            "traffic": super::backup::traffic(&repo),
        }));
    } else {
        for n in &r.notes {
            ctx.say(format!("note: {n}"));
        }
        for e in &r.errors {
            eprintln!("arca: damaged: {e}");
        }
        if r.errors.is_empty() {
            ctx.say(format!(
                "no errors: {} snapshots, {} trees, {} packs, {} blobs{}",
                r.snapshots,
                r.trees,
                r.packs,
                r.blobs,
                if args.read_data {
                    format!(", {} read and authenticated", bytes(r.bytes_read))
                } else {
                    String::new()
                }
            ));
        } else {
            eprintln!(
                "arca: {} problems found; files that do not depend on the damaged objects can still be restored",
                r.errors.len()
            );
        }
    }
    Ok(if r.errors.is_empty() { OK } else { DAMAGED })
}
