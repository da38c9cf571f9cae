//! Check: is every object present, intact and consistent? With `read_data`, every byte of every
//! pack is read and every blob authenticated.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use arca_format::blob::{BlobKind, open_blob};
use arca_format::id::Id;
use arca_format::pack::read_header;
use arca_format::tree::Content;

use crate::Result;
use crate::index::{BulkLoad, MasterIndex};
use crate::progress::Counters;
use crate::repo::{DATA, INDEX, Repository, pack_path};

#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub read_data: bool,
    pub threads: usize,
}

#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    pub snapshots: usize,
    pub trees: usize,
    /// Chunk lists of long files read.
    pub lists: usize,
    pub packs: usize,
    pub blobs: usize,
    pub bytes_read: u64,
    /// Problems: each names the object.
    pub errors: Vec<String>,
    /// Harmless findings, such as packs an interrupted backup left unindexed.
    pub notes: Vec<String>,
}

pub fn check(repo: &Repository, opts: &CheckOptions, counters: &Counters) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let stored: HashMap<Id, u64> = repo.list_ids(DATA)?.into_iter().collect();

    let mut bulk = BulkLoad::new(repo.index_spill());
    for (id, _) in repo.list_ids(INDEX)? {
        match repo.load_index_file(&id) {
            Ok(f) => bulk.add_file(f)?,
            Err(e) => report.errors.push(e.to_string()),
        }
    }
    let index = bulk.finish()?;
    for (pack, size) in index.packs() {
        match stored.get(pack) {
            None => report.errors.push(format!(
                "{}: an index names it but it is missing",
                pack_path(pack)
            )),
            Some(s) if s != size => report.errors.push(format!(
                "{}: it is {s} bytes but the index says {size} (truncated or replaced)",
                pack_path(pack)
            )),
            _ => {}
        }
    }

    let snapshots = match repo.snapshots() {
        Ok(s) => s,
        Err(e) => {
            report.errors.push(e.to_string());
            // Check the snapshots one by one to name every damaged one.
            let mut ok = Vec::new();
            for (id, _) in repo.list_ids(crate::repo::SNAPSHOTS)? {
                match repo.load_snapshot(&id) {
                    Ok(s) => ok.push(crate::repo::SnapshotInfo { id, snapshot: s }),
                    Err(e) => report.errors.push(e.to_string()),
                }
            }
            ok
        }
    };
    report.snapshots = snapshots.len();
    let mut seen: HashSet<Id> = HashSet::new();
    let mut stack: Vec<Id> = snapshots.iter().map(|s| s.snapshot.tree).collect();
    let mut missing_data = 0usize;
    let mut missing_trees = false;
    while let Some(t) = stack.pop() {
        if !seen.insert(t) {
            continue;
        }
        missing_trees |= !index.contains(&t)?;
        match repo.read_tree(&index, &t) {
            Ok(tree) => {
                report.trees += 1;
                for n in tree.nodes {
                    match n.content {
                        Content::Dir { tree } => stack.push(tree),
                        Content::File { chunks, .. } => {
                            let place = || format!("(tree {})", t.short());
                            report_missing(
                                &index,
                                &chunks,
                                &n.name,
                                place,
                                &mut missing_data,
                                &mut report.errors,
                            )?;
                        }
                        Content::LongFile { lists, .. } => {
                            for l in lists {
                                // Lists shared by several snapshots are checked once.
                                if !seen.insert(l) {
                                    continue;
                                }
                                missing_trees |= !index.contains(&l)?;
                                match repo.read_chunk_list(&index, &l) {
                                    Ok(list) => {
                                        report.lists += 1;
                                        let place = || {
                                            format!(
                                                "(chunk list {}, tree {})",
                                                l.short(),
                                                t.short()
                                            )
                                        };
                                        report_missing(
                                            &index,
                                            &list.chunks,
                                            &n.name,
                                            place,
                                            &mut missing_data,
                                            &mut report.errors,
                                        )?;
                                    }
                                    Err(e) => report.errors.push(e.to_string()),
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            Err(e) => report.errors.push(e.to_string()),
        }
    }
    if missing_data > 20 {
        report.errors.push(format!(
            "... {} more blobs are not in any index",
            missing_data - 20
        ));
    }

    // An unindexed pack is what an interrupted backup leaves, unless blobs are missing from
    // the index too: then it is most likely a pack whose index file was lost.
    let index_lost = missing_data > 0 || missing_trees;
    for id in stored.keys() {
        if !index.has_pack(id) {
            if index_lost {
                report.errors.push(format!(
                    "{}: it is not in any index, and blobs the backups need are missing from every index: the index file that listed this pack is probably missing or damaged",
                    pack_path(id)
                ));
            } else {
                report.notes.push(format!(
                    "{} is not in any index (left by an interrupted backup; harmless)",
                    pack_path(id)
                ));
            }
        }
    }
    // Temporary uploads that interrupted runs left (WebDAV, SFTP, a local folder).
    if let Some(note) = repo.storage().temporaries_note() {
        report.notes.push(note);
    }
    report.packs = stored.len();
    report.blobs = index.blob_count();

    if opts.read_data {
        let packs: Vec<(Id, u64)> = {
            let mut v: Vec<_> = stored.iter().map(|(k, v)| (*k, *v)).collect();
            v.sort();
            v
        };
        counters.set_totals(packs.len() as u64, packs.iter().map(|p| p.1).sum());
        let expected: HashMap<Id, Vec<(Id, crate::index::Location)>> = {
            let mut m: HashMap<Id, Vec<_>> = HashMap::new();
            index.for_each_blob(|id, loc| {
                m.entry(index.pack(loc).0).or_default().push((*id, *loc));
            })?;
            m
        };
        let next = AtomicUsize::new(0);
        let errors = Mutex::new(Vec::new());
        let notes = Mutex::new(Vec::new());
        let read = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..opts.threads.max(1) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Relaxed);
                        let Some((pack, size)) = packs.get(i) else {
                            break;
                        };
                        let found = check_pack(repo, pack, expected.get(pack));
                        read.fetch_add(*size, Relaxed);
                        counters.add(1, *size);
                        if found.is_empty() {
                            continue;
                        }
                        if !index.has_pack(pack) && !index_lost {
                            // Nothing refers to it: an upload that broke off, retried under
                            // another pack or given up.
                            notes.lock().unwrap_or_else(|p| p.into_inner()).push(format!(
                                "{} is incomplete and not used by any backup (an interrupted upload left it; harmless): {}",
                                pack_path(pack),
                                found[0]
                            ));
                        } else {
                            errors
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .extend(found);
                        }
                    }
                });
            }
        });
        report.bytes_read = read.into_inner();
        report
            .errors
            .extend(errors.into_inner().unwrap_or_else(|p| p.into_inner()));
        report
            .notes
            .extend(notes.into_inner().unwrap_or_else(|p| p.into_inner()));
    }
    Ok(report)
}

/// Reads and verifies a whole pack; damage found is confirmed by reading the pack again, since
/// a corrupted answer from sound storage is not damage (see `reread_on_damage`).
/// Counts the ids of `chunks` that no index lists as a Data blob, naming the first 20 (file
/// `name`, found at `place`) in `errors`.
fn report_missing(
    index: &MasterIndex,
    chunks: &[Id],
    name: &[u8],
    place: impl Fn() -> String,
    missing_data: &mut usize,
    errors: &mut Vec<String>,
) -> Result<()> {
    for c in chunks {
        if matches!(index.get(c)?, Some(l) if l.kind == BlobKind::Data) {
            continue;
        }
        *missing_data += 1;
        if *missing_data <= 20 {
            errors.push(format!(
                "blob {} of {} {} is not in any index",
                c.short(),
                String::from_utf8_lossy(name),
                place()
            ));
        }
    }
    Ok(())
}

fn check_pack(
    repo: &Repository,
    pack: &Id,
    expected: Option<&Vec<(Id, crate::index::Location)>>,
) -> Vec<String> {
    crate::repo::reread_while(
        || check_pack_once(repo, pack, expected),
        |errors| errors.first().cloned(),
    )
}

fn check_pack_once(
    repo: &Repository,
    pack: &Id,
    expected: Option<&Vec<(Id, crate::index::Location)>>,
) -> Vec<String> {
    let path = pack_path(pack);
    let bytes = match repo.storage().read(&path) {
        Ok(b) => b,
        Err(e) => return vec![format!("{path}: cannot be read: {e}")],
    };
    if Id::of_stored(&bytes) != *pack {
        return vec![format!(
            "{path}: its content does not match its name (altered, truncated or replaced)"
        )];
    }
    let header = match read_header(repo.keys(), &bytes) {
        Ok(h) => h,
        Err(e) => return vec![format!("{path}: its header cannot be read: {e}")],
    };
    let mut errors = Vec::new();
    let in_header: HashMap<Id, _> = header.iter().map(|b| (b.id, *b)).collect();
    for (id, loc) in expected.into_iter().flatten() {
        match in_header.get(id) {
            Some(b) if b.offset == loc.offset && b.length == loc.length && b.kind == loc.kind => {}
            _ => errors.push(format!(
                "{path}: the index places blob {} where the pack header does not",
                id.short()
            )),
        }
    }
    for b in &header {
        let sealed = &bytes[b.offset as usize..(b.offset + b.length) as usize];
        if let Err(e) = open_blob(repo.keys(), b.kind, &b.id, sealed, b.raw_length as usize) {
            errors.push(format!("{path}: blob {}: {e}", b.id.short()));
        }
    }
    errors
}
