//! Files with more chunks than a tree node holds: their chunk ids are stored in chunk lists
//! (docs/FORMAT.md section 12). A SQLite database, cut page by page, is the case that matters.

use std::path::{Path, PathBuf};

use arca_crypto::BackupKey;
use arca_engine::{
    BackupOptions, CheckOptions, Counters, MasterIndex, Repository, RestoreOptions, Spill, backup,
    check, restore,
};
use arca_format::chunker::ChunkerParams;
use arca_format::id::Id;
use arca_format::tree::{Content, LIST_LEN};
use arca_storage::Storage;

struct Fixture {
    _work: tempfile::TempDir,
    dir: PathBuf,
    src: PathBuf,
    repo: Repository,
    opts: BackupOptions,
}

fn fixture(chunker: ChunkerParams) -> Fixture {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_path_buf();
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let storage = Storage::open(dir.join("repo").to_str().unwrap()).unwrap();
    let repo = Repository::init_with(storage, &BackupKey::generate(), chunker, 16 << 20).unwrap();
    let mut opts = BackupOptions::new(vec![src.clone()]);
    opts.cache_dir = Some(dir.join("cache"));
    Fixture {
        _work: work,
        dir,
        src,
        repo,
        opts,
    }
}

/// A SQLite database of about `rows` × 2 KiB in 4 KiB pages, in rollback-journal mode.
fn database(path: &Path, rows: u32) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch("PRAGMA page_size=4096; PRAGMA journal_mode=DELETE; CREATE TABLE m(id INTEGER PRIMARY KEY, body BLOB);")
        .unwrap();
    let tx = db.unchecked_transaction().unwrap();
    for i in 0..rows {
        let body: Vec<u8> = (0..2048u32)
            .map(|j| (i.wrapping_mul(2654435761) ^ j.wrapping_mul(40503)) as u8)
            .collect();
        tx.execute("INSERT INTO m VALUES (?1, ?2)", rusqlite::params![i, body])
            .unwrap();
    }
    tx.commit().unwrap();
}

/// The content of the node at `rel` (a path under the backed-up source) in the snapshot `root`.
fn content(repo: &Repository, index: &MasterIndex, root: &Id, path: &Path) -> Content {
    let mut tree = repo.read_tree(index, root).unwrap();
    let names: Vec<_> = path.iter().skip(1).collect();
    for (i, name) in names.iter().enumerate() {
        let node = tree
            .nodes
            .iter()
            .find(|n| n.name == name.as_encoded_bytes())
            .unwrap_or_else(|| panic!("{name:?} is not in the backup"))
            .clone();
        if i + 1 == names.len() {
            return node.content;
        }
        let Content::Dir { tree: t } = node.content else {
            panic!("{name:?} is not a directory")
        };
        tree = repo.read_tree(index, &t).unwrap();
    }
    unreachable!("an empty path")
}

fn lists_of(c: &Content) -> Vec<Id> {
    match c {
        Content::LongFile { lists, .. } => lists.clone(),
        other => panic!("expected a long file, found {other:?}"),
    }
}

fn restore_to(f: &Fixture, root: &Id, target: &Path) -> arca_engine::RestoreReport {
    let index = f.repo.load_index().unwrap();
    restore(
        &f.repo,
        &index,
        root,
        &RestoreOptions {
            target: target.to_path_buf(),
            includes: vec![],
            threads: 2,
        },
        &Counters::default(),
    )
    .unwrap()
}

fn check_all(repo: &Repository) -> arca_engine::CheckReport {
    check(
        repo,
        &CheckOptions {
            read_data: true,
            threads: 2,
        },
        &Counters::default(),
    )
    .unwrap()
}

#[test]
fn a_database_is_stored_in_chunk_lists_and_a_day_of_edits_restores_only_touched_lists() {
    database_in_lists(fixture(ChunkerParams::default()), false);
}

/// The same with an index of more blobs than memory may hold: it is merged from runs of 200
/// into pages on disk, and every lookup (skip unchanged files, store only new pages, restore,
/// check) answers as it does in memory.
#[test]
fn the_same_with_the_index_on_disk() {
    let mut f = fixture(ChunkerParams::default());
    f.repo.set_index_spill(Spill {
        dir: f.dir.join("cache"),
        max_entries: 200,
    });
    database_in_lists(f, true);
}

fn database_in_lists(f: Fixture, on_disk: bool) {
    let db = f.src.join("msgstore.db");
    database(&db, 1500);
    let pages = std::fs::metadata(&db).unwrap().len() / 4096;
    assert!(pages as usize > 2 * LIST_LEN, "{pages} pages");
    let c = Counters::default();

    let r1 = backup(&f.repo, &f.opts, &c).unwrap();
    assert!(r1.warnings.is_empty(), "{:?}", r1.warnings);
    let index = f.repo.load_index().unwrap();
    assert_eq!(index.on_disk(), on_disk);
    let lists1 = lists_of(&content(&f.repo, &index, &r1.snapshot.tree, &db));
    assert_eq!(lists1.len(), (pages as usize).div_ceil(LIST_LEN));
    // The lists hold the pages in order: they name exactly the file's pages.
    let mut ids = Vec::new();
    for l in &lists1 {
        ids.extend(f.repo.read_chunk_list(&index, l).unwrap().chunks);
    }
    assert_eq!(ids.len() as u64, pages);
    let bytes = std::fs::read(&db).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let page = &bytes[i * 4096..(i + 1) * 4096];
        assert_eq!(Id(f.repo.keys().blob_id(page)), *id, "page {i}");
    }

    // One edited row: one data page and the header page change. Only their lists are new.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE m SET body = zeroblob(2048) WHERE id = 700", [])
        .unwrap();
    drop(conn);
    let r2 = backup(&f.repo, &f.opts, &c).unwrap();
    let index = f.repo.load_index().unwrap();
    let lists2 = lists_of(&content(&f.repo, &index, &r2.snapshot.tree, &db));
    assert_eq!(lists2.len(), lists1.len());
    let kept = lists2.iter().filter(|l| lists1.contains(l)).count();
    assert!(
        kept >= lists1.len() - 2,
        "{kept} of {} lists unchanged",
        lists1.len()
    );
    // Two pages, at most two lists of 16 KiB, and the small directory trees.
    assert!(
        r2.snapshot.summary.new_bytes < 2 * 4096 + 2 * 16 * 1024 + 4096,
        "{} new bytes",
        r2.snapshot.summary.new_bytes
    );

    // Unchanged since: the same lists, and nothing new stored.
    let r3 = backup(&f.repo, &f.opts, &c).unwrap();
    let index = f.repo.load_index().unwrap();
    assert_eq!(
        content(&f.repo, &index, &r3.snapshot.tree, &db),
        content(&f.repo, &index, &r2.snapshot.tree, &db)
    );
    // Nothing but, at most, the trees of the source's ancestors (/tmp changes as other tests
    // run).
    assert!(r3.snapshot.summary.new_bytes < 512);

    // Both versions restore byte for byte.
    let t1 = f.dir.join("t1");
    restore_to(&f, &r1.snapshot.tree, &t1);
    let rel = db.strip_prefix("/").unwrap();
    assert_eq!(std::fs::read(t1.join(rel)).unwrap(), bytes);
    let t2 = f.dir.join("t2");
    restore_to(&f, &r2.snapshot.tree, &t2);
    assert_eq!(
        std::fs::read(t2.join(rel)).unwrap(),
        std::fs::read(&db).unwrap()
    );
    // An interrupted restore's finished file is verified through its lists and kept.
    let again = restore_to(&f, &r2.snapshot.tree, &t2);
    assert_eq!(again.skipped_files, 1);
    // Restored into the older version's place, the newer is written again (one page differs).
    let over = restore_to(&f, &r2.snapshot.tree, &t1);
    assert_eq!(over.skipped_files, 0);
    assert_eq!(
        std::fs::read(t1.join(rel)).unwrap(),
        std::fs::read(&db).unwrap()
    );

    let report = check_all(&f.repo);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // Each distinct list is read once, however many snapshots share it.
    let distinct: std::collections::HashSet<_> = lists1.iter().chain(&lists2).collect();
    assert_eq!(report.lists, distinct.len());
}

#[test]
fn a_long_plain_file_is_cut_into_lists_and_restores() {
    // Small chunks so that a 3 MiB file has more than two lists' worth.
    let f = fixture(ChunkerParams {
        min: 512,
        avg: 1024,
        max: 4096,
    });
    let data: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    let file = f.src.join("video.bin");
    std::fs::write(&file, &data).unwrap();
    let r = backup(&f.repo, &f.opts, &Counters::default()).unwrap();
    let index = f.repo.load_index().unwrap();
    let Content::LongFile { size, lists } = content(&f.repo, &index, &r.snapshot.tree, &file)
    else {
        panic!("a file of thousands of chunks should be a long file");
    };
    assert_eq!(size, data.len() as u64);
    assert!(lists.len() >= 3, "{} lists", lists.len());
    let target = f.dir.join("t");
    restore_to(&f, &r.snapshot.tree, &target);
    assert_eq!(
        std::fs::read(target.join(file.strip_prefix("/").unwrap())).unwrap(),
        data
    );
}

#[test]
fn a_damaged_chunk_list_is_reported_and_never_restored() {
    let f = fixture(ChunkerParams::default());
    let db = f.src.join("msgstore.db");
    database(&db, 1200);
    let r = backup(&f.repo, &f.opts, &Counters::default()).unwrap();
    let index = f.repo.load_index().unwrap();
    let lists = lists_of(&content(&f.repo, &index, &r.snapshot.tree, &db));
    // Flip one byte inside the second list's sealed blob, in its pack file.
    let loc = index.get(&lists[1]).unwrap().unwrap();
    let (pack, _) = index.pack(&loc);
    let hex = pack.to_hex();
    let path = f.dir.join("repo/data").join(&hex[..2]).join(&hex);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[loc.offset as usize + loc.length as usize / 2] ^= 0x40;
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).unwrap();
    std::fs::write(&path, &bytes).unwrap();

    let target = f.dir.join("t");
    let err = restore(
        &f.repo,
        &index,
        &r.snapshot.tree,
        &RestoreOptions {
            target: target.clone(),
            includes: vec![],
            threads: 2,
        },
        &Counters::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, arca_engine::EngineError::Damaged { .. }),
        "{err:?}"
    );
    // No partial or wrong file is left where the database belongs.
    let restored = target.join(db.strip_prefix("/").unwrap());
    assert!(!restored.exists());
    let leftovers: Vec<_> = std::fs::read_dir(restored.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let report = check_all(&f.repo);
    assert!(
        report.errors.iter().any(|e| e.contains(&hex[..8])),
        "{:?}",
        report.errors
    );
}
