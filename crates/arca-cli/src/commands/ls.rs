use anyhow::{Result, bail};
use arca_format::tree::Content;

use super::Ctx;
use crate::cli::LsArgs;
use crate::exit::{OK, UsageError, WARNINGS};
use crate::output::{lossy, mode_string, time};

/// `latest` or a hex prefix of at least 4 digits names a snapshot; anything else is a path.
pub fn is_snapshot_ref(s: &str) -> bool {
    s == "latest" || (s.len() >= 4 && s.len() <= 64 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

pub fn run(ctx: &Ctx, args: LsArgs) -> Result<i32> {
    let (snap, path) = match args.args.as_slice() {
        [] => ("latest".to_string(), "/".to_string()),
        [one] if is_snapshot_ref(one) => (one.clone(), "/".to_string()),
        [one] => ("latest".to_string(), one.clone()),
        [s, p] => (s.clone(), p.clone()),
        _ => bail!(UsageError("usage: arca ls [SNAPSHOT] [PATH]".into())),
    };
    let (repo, head_warnings) = ctx.open_checked(args.allow_rollback)?;
    let snapshot = repo.find_snapshot(&snap)?;
    let index = repo.load_index()?;
    let entries = arca_engine::list(&repo, &index, &snapshot.snapshot.tree, path.as_bytes())?;
    if ctx.json {
        let v: Vec<_> = entries
            .iter()
            .map(|e| {
                let (kind, size, target) = describe(&e.node.content);
                serde_json::json!({
                    "path": lossy(&e.path),
                    "type": kind,
                    "mode": e.node.mode & 0o7777,
                    "size": size,
                    "mtime": e.node.mtime,
                    "uid": e.node.uid,
                    "gid": e.node.gid,
                    "target": target,
                })
            })
            .collect();
        ctx.emit_json(serde_json::Value::Array(v));
    } else {
        for e in &entries {
            let (_, size, target) = describe(&e.node.content);
            let mut line = format!(
                "{} {:>12} {} {}",
                mode_string(e.node.mode),
                size,
                time(e.node.mtime),
                lossy(&e.path)
            );
            if let Some(t) = target {
                line.push_str(" -> ");
                line.push_str(&t);
            }
            println!("{line}");
        }
    }
    Ok(if head_warnings.is_empty() {
        OK
    } else {
        WARNINGS
    })
}

fn describe(c: &Content) -> (&'static str, u64, Option<String>) {
    match c {
        Content::File { size, .. } | Content::LongFile { size, .. } => ("file", *size, None),
        Content::Dir { .. } => ("dir", 0, None),
        Content::Symlink { target } => ("symlink", 0, Some(lossy(target))),
        Content::Fifo => ("fifo", 0, None),
        Content::Socket => ("socket", 0, None),
        Content::CharDevice { .. } => ("chardev", 0, None),
        Content::BlockDevice { .. } => ("blockdev", 0, None),
    }
}
