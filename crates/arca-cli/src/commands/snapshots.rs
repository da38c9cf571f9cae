use anyhow::Result;

use super::Ctx;
use crate::cli::SnapshotsArgs;
use crate::exit::{OK, WARNINGS};
use crate::output::{bytes, lossy, time};

pub fn run(ctx: &Ctx, args: SnapshotsArgs) -> Result<i32> {
    let (repo, head_warnings) = ctx.open_checked(args.allow_rollback)?;
    let done = if head_warnings.is_empty() {
        OK
    } else {
        WARNINGS
    };
    let all = repo.snapshots()?;
    if ctx.json {
        let v: Vec<_> = all
            .iter()
            .map(|s| {
                let sn = &s.snapshot;
                serde_json::json!({
                    "id": s.id.to_hex(),
                    "seq": sn.seq,
                    "time": sn.time,
                    "host": sn.host,
                    "paths": sn.paths.iter().map(|p| lossy(p)).collect::<Vec<_>>(),
                    "parent": sn.parent.map(|p| p.to_hex()),
                    "files": sn.summary.files,
                    "bytes": sn.summary.bytes,
                    "new_bytes": sn.summary.new_bytes,
                    "warnings": sn.summary.warnings,
                })
            })
            .collect();
        ctx.emit_json(serde_json::Value::Array(v));
        return Ok(done);
    }
    if all.is_empty() {
        ctx.say("no backups yet; `arca backup PATH` makes one");
        return Ok(done);
    }
    println!(
        "{:<10} {:<24} {:<16} {:>8} {:>11}  paths",
        "id", "time", "host", "files", "size"
    );
    for s in &all {
        let sn = &s.snapshot;
        println!(
            "{:<10} {:<24} {:<16} {:>8} {:>11}  {}",
            s.id.short(),
            time(sn.time),
            sn.host,
            sn.summary.files,
            bytes(sn.summary.bytes),
            sn.paths
                .iter()
                .map(|p| lossy(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(done)
}
