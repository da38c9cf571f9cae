//! Backup and restore through the public API on a local-folder repository.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use arca_crypto::BackupKey;
use arca_engine::{
    BackupOptions, CheckOptions, Counters, PACK_MAX_BLOBS, Repository, RestoreOptions, Spill,
    backup, check, restore,
};
use arca_format::blob::BlobKind;
use arca_storage::Storage;

fn tree_bytes(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(root: &Path, p: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for e in entries {
            let rel = e.strip_prefix(root).unwrap().to_string_lossy().to_string();
            let m = std::fs::symlink_metadata(&e).unwrap();
            if m.is_dir() {
                out.push((rel + "/", vec![]));
                walk(root, &e, out);
            } else if m.file_type().is_symlink() {
                out.push((
                    rel,
                    std::fs::read_link(&e)
                        .unwrap()
                        .to_string_lossy()
                        .as_bytes()
                        .to_vec(),
                ));
            } else {
                out.push((rel, std::fs::read(&e).unwrap()));
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// The tree id of the directory `path` in the snapshot whose root tree is `root`.
fn subtree(
    repo: &Repository,
    index: &arca_engine::MasterIndex,
    root: &arca_format::id::Id,
    path: &Path,
) -> arca_format::id::Id {
    let mut id = *root;
    for name in path.iter().skip(1) {
        let tree = repo.read_tree(index, &id).unwrap();
        let node = tree
            .nodes
            .into_iter()
            .find(|n| n.name == name.as_encoded_bytes())
            .unwrap();
        let arca_format::tree::Content::Dir { tree } = node.content else {
            panic!("{name:?} is not a directory");
        };
        id = tree;
    }
    id
}

#[test]
fn backup_restore_check_round_trip() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join("a/b/empty")).unwrap();
    std::fs::write(src.join("a/hello.txt"), b"hello").unwrap();
    let big: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("a/b/big.bin"), &big).unwrap();
    std::fs::write(src.join("a/b/copy.bin"), &big).unwrap();
    std::fs::write(src.join("empty.txt"), b"").unwrap();
    std::os::unix::fs::symlink("a/hello.txt", src.join("link")).unwrap();
    std::fs::set_permissions(
        src.join("a/hello.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();

    let storage = Storage::open(work.path().join("repo").to_str().unwrap()).unwrap();
    let key = BackupKey::generate();
    let repo = Repository::init(storage, &key).unwrap();
    let mut opts = BackupOptions::new(vec![src.clone()]);
    opts.cache_dir = Some(work.path().join("cache"));
    let c = Counters::default();
    let r1 = backup(&repo, &opts, &c).unwrap();
    assert!(r1.warnings.is_empty(), "{:?}", r1.warnings);
    assert_eq!(r1.snapshot.summary.files, 4);
    // dedup: the copy adds nothing
    assert!(r1.snapshot.summary.new_bytes < big.len() as u64 + 10_000);

    let r2 = backup(&repo, &opts, &c).unwrap();
    assert_eq!(r2.snapshot.seq, r1.snapshot.seq + 1);
    assert_eq!(r2.snapshot.parent, Some(r1.id));
    // An unchanged source stores nothing new. Only the trees of its ancestors (/tmp, whose
    // time other tests running now may change) can differ.
    let index = repo.load_index().unwrap();
    assert_eq!(
        subtree(&repo, &index, &r2.snapshot.tree, &src),
        subtree(&repo, &index, &r1.snapshot.tree, &src),
        "an unchanged tree is stored again"
    );
    assert!(
        r2.snapshot.summary.new_bytes < 512,
        "an unchanged tree stores {} new bytes",
        r2.snapshot.summary.new_bytes
    );

    let target = work.path().join("restore");
    let rep = restore_all(&repo, &index, &r2.snapshot.tree, &target).unwrap();
    assert!(rep.warnings.is_empty(), "{:?}", rep.warnings);
    let restored = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(tree_bytes(&src), tree_bytes(&restored));
    let mode = std::fs::metadata(restored.join("a/hello.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_eq!(
        std::fs::metadata(src.join("a/b/big.bin"))
            .unwrap()
            .modified()
            .unwrap(),
        std::fs::metadata(restored.join("a/b/big.bin"))
            .unwrap()
            .modified()
            .unwrap()
    );

    let report = check(
        &repo,
        &CheckOptions {
            read_data: true,
            threads: 2,
        },
        &c,
    )
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.packs >= 2 && report.trees >= 4);

    // reopening with another key is refused as a wrong key
    let storage = Storage::open(work.path().join("repo").to_str().unwrap()).unwrap();
    assert!(matches!(
        Repository::open(storage, &BackupKey::generate()),
        Err(arca_engine::EngineError::WrongKey)
    ));
}

/// A backup that stores more blobs than memory is given for keeps the ids it has stored in
/// scratch files, and still stores a chunk it meets again only once: 600 small files, each
/// saved a second time under another name after all of them (as forwarded media are), with
/// room in memory for 50 ids.
#[test]
fn repeats_are_stored_once_when_the_stored_ids_are_on_disk() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::create_dir_all(src.join("b")).unwrap();
    for i in 0..600u32 {
        let body = format!("message {i}: ").repeat(20 + i as usize % 7);
        std::fs::write(src.join("a").join(format!("{i}.txt")), &body).unwrap();
        std::fs::write(src.join("b").join(format!("fwd-{i}.txt")), &body).unwrap();
    }
    let storage = Storage::open(work.path().join("repo").to_str().unwrap()).unwrap();
    let mut repo = Repository::init(storage, &BackupKey::generate()).unwrap();
    let cache = work.path().join("cache");
    repo.set_index_spill(Spill {
        dir: cache.clone(),
        max_entries: 50,
    });
    let mut opts = BackupOptions::new(vec![src.clone()]);
    opts.cache_dir = Some(cache);
    let c = Counters::default();
    let r = backup(&repo, &opts, &c).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.snapshot.summary.files, 1200);

    let index = repo.load_index().unwrap();
    let mut data = 0;
    index
        .for_each_blob(|_, l| data += usize::from(l.kind == BlobKind::Data))
        .unwrap();
    assert_eq!(data, 600, "each distinct file is stored once");

    let target = work.path().join("restore");
    let rep = restore_all(&repo, &index, &r.snapshot.tree, &target).unwrap();
    assert!(rep.warnings.is_empty(), "{:?}", rep.warnings);
    let restored = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(tree_bytes(&src), tree_bytes(&restored));
    let report = check(
        &repo,
        &CheckOptions {
            read_data: true,
            threads: 2,
        },
        &c,
    )
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

/// A folder of more tiny files than one pack may hold blobs: the packs are cut at
/// `PACK_MAX_BLOBS` although their bytes would fit in one, and everything comes back.
#[test]
fn packs_of_tiny_files_end_at_the_blob_limit() {
    // A local folder (packs streamed to files) and memory (packs built whole, as for a cloud).
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("repo");
    for url in [local.to_str().unwrap(), "memory://"] {
        tiny_files_round_trip(work.path(), url);
    }
}

fn tiny_files_round_trip(work: &Path, url: &str) {
    let src = work.join("src");
    let n = PACK_MAX_BLOBS + PACK_MAX_BLOBS / 2;
    for d in 0..16 {
        std::fs::create_dir_all(src.join(format!("{d:x}"))).unwrap();
    }
    for i in 0..n {
        let body = format!("{{\"id\":{i},\"seen\":{}}}", i * 7919);
        std::fs::write(src.join(format!("{:x}/c{i}.json", i % 16)), body).unwrap();
    }
    let storage = Storage::open(url).unwrap();
    let repo = Repository::init(storage, &BackupKey::generate()).unwrap();
    let c = Counters::default();
    let r = backup(&repo, &BackupOptions::new(vec![src.clone()]), &c).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);

    let index = repo.load_index().unwrap();
    let mut per_pack = std::collections::HashMap::<u32, usize>::new();
    let mut data = 0;
    index
        .for_each_blob(|_, l| {
            if l.kind == BlobKind::Data {
                *per_pack.entry(l.pack).or_default() += 1;
                data += 1;
            }
        })
        .unwrap();
    assert_eq!(data, n, "one blob per file");
    assert!(per_pack.len() >= 2, "{per_pack:?}");
    assert!(
        per_pack.values().all(|&k| k <= PACK_MAX_BLOBS),
        "{per_pack:?}"
    );

    let target = work.join(format!("restore-{}", url.len()));
    restores_equal(&repo, &index, &r.snapshot.tree, &src, &target);
}

/// A tree deeper than the number of directories a backup holds open at once (64): the deeper
/// levels are opened again from the deepest one held after each subdirectory, and the whole
/// tree round-trips, a file at every level.
#[test]
fn a_tree_deeper_than_the_open_directories_round_trips() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let mut dir = src.clone();
    for level in 0..150 {
        dir.push("d");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{level}")), format!("level {level}")).unwrap();
    }
    let storage = Storage::open(work.path().join("repo").to_str().unwrap()).unwrap();
    let repo = Repository::init(storage, &BackupKey::generate()).unwrap();
    let c = Counters::default();
    let r = backup(&repo, &BackupOptions::new(vec![src.clone()]), &c).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.snapshot.summary.files, 150);
    assert_eq!(r.snapshot.summary.dirs, 151);

    let index = repo.load_index().unwrap();
    restores_equal(
        &repo,
        &index,
        &r.snapshot.tree,
        &src,
        &work.path().join("restore"),
    );
}

/// A restore whose writing threads fail (every data chunk sits in one damaged pack) while the
/// walk of the trees still has more files to hand them than the queue holds stops with the
/// error: the walk is not left waiting on a full queue.
#[test]
fn a_restore_that_fails_while_files_are_queued_stops_with_the_error() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..400u32 {
        let body = format!("file {i} ").repeat(30);
        std::fs::write(src.join(format!("{i:03}.txt")), body).unwrap();
    }
    let storage = Storage::open(work.path().join("repo").to_str().unwrap()).unwrap();
    let repo = Repository::init(storage, &BackupKey::generate()).unwrap();
    let mut opts = BackupOptions::new(vec![src.clone()]);
    opts.cache_dir = Some(work.path().join("cache"));
    let c = Counters::default();
    let r = backup(&repo, &opts, &c).unwrap();
    let index = repo.load_index().unwrap();

    // The largest pack holds the files' chunks (trees go to packs of their own): damage it.
    let mut packs: Vec<(u64, std::path::PathBuf)> = walk_files(&work.path().join("repo/data"))
        .into_iter()
        .map(|p| (std::fs::metadata(&p).unwrap().len(), p))
        .collect();
    packs.sort();
    let (len, data_pack) = packs.pop().unwrap();
    let mut bytes = std::fs::read(&data_pack).unwrap();
    for b in &mut bytes[100..len as usize - 100] {
        *b ^= 0x5a;
    }
    std::fs::write(&data_pack, bytes).unwrap();

    // Not a scoped thread: were the restore to hang, the test must still end (and fail).
    let (tx, rx) = std::sync::mpsc::channel();
    let root = r.snapshot.tree;
    let target = work.path().join("restore");
    std::thread::spawn(move || {
        let _ = tx.send(restore_all(&repo, &index, &root, &target).map(|r| r.files));
    });
    let out = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the restore stops instead of hanging");
    let e = out.expect_err("damaged chunks fail the restore");
    assert!(e.to_string().contains("damaged"), "{e}");
}

/// Restores all of the snapshot `root` into `target` with no warning, and finds `src` there
/// byte for byte.
fn restores_equal(
    repo: &Repository,
    index: &arca_engine::MasterIndex,
    root: &arca_format::id::Id,
    src: &Path,
    target: &Path,
) {
    let rep = restore_all(repo, index, root, target).unwrap();
    assert!(rep.warnings.is_empty(), "{:?}", rep.warnings);
    let restored = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(tree_bytes(src), tree_bytes(&restored));
}

/// Restores all of the snapshot `root` into `target` with two threads.
fn restore_all(
    repo: &Repository,
    index: &arca_engine::MasterIndex,
    root: &arca_format::id::Id,
    target: &Path,
) -> Result<arca_engine::RestoreReport, arca_engine::EngineError> {
    let opts = RestoreOptions {
        target: target.to_path_buf(),
        includes: vec![],
        threads: 2,
    };
    restore(repo, index, root, &opts, &Counters::default())
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}
