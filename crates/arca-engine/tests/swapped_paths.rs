//! A backup cannot be led out of the tree it was given by renaming things inside it while it
//! runs: a directory swapped for a symlink to somewhere else, again and again, as someone who
//! can write into the backed-up folder (another app, another user of a shared folder) could do
//! to a backup that runs with more rights than they have.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arca_crypto::BackupKey;
use arca_engine::{BackupOptions, Counters, MasterIndex, Repository, backup};
use arca_format::id::Id;
use arca_format::tree::Content;
use arca_storage::Storage;
use rustix::fs::{CWD, RenameFlags, renameat_with};

const SUBDIRS: usize = 20;

/// Every name in the tree `id`, at any depth.
fn names(repo: &Repository, index: &MasterIndex, id: &Id, out: &mut Vec<Vec<u8>>) {
    for n in repo.read_tree(index, id).unwrap().nodes {
        if let Content::Dir { tree } = &n.content {
            names(repo, index, tree, out);
        }
        out.push(n.name);
    }
}

#[test]
fn a_directory_swapped_for_a_symlink_during_backups_never_leads_outside_the_source() {
    swap_during_backups(0);
}

/// The same, 70 levels down: deeper than the directories a backup holds open (64), where each
/// is opened again, one name at a time, from the deepest one held.
#[test]
fn the_same_below_the_directories_a_backup_holds_open() {
    swap_during_backups(70);
}

/// Backs up, again and again, a source whose folder `d`, `depth` levels down, is swapped with a
/// symlink to a secret folder outside it as fast as the machine can rename.
fn swap_during_backups(depth: usize) {
    let work = tempfile::tempdir().unwrap();
    let top = work.path().join("src");
    let src = (0..depth).fold(top.clone(), |p, _| p.join("l"));
    let secret = work.path().join("secret");
    // The source: d/s00 … d/s19, each with files; the secret folder outside it has the same
    // layout, so that a walk that followed `d` to it would find every path it looks for.
    for (root, file) in [(&src, "public.txt"), (&secret, "secret.txt")] {
        for i in 0..SUBDIRS {
            let sub = root.join("d").join(format!("s{i:02}"));
            std::fs::create_dir_all(&sub).unwrap();
            for j in 0..5 {
                std::fs::write(sub.join(format!("{j}-{file}")), format!("{file} {i} {j}")).unwrap();
            }
        }
        std::fs::write(root.join("d").join(file), file).unwrap();
    }
    // `swap` is a symlink to the secret `d`, outside the source; exchanging it with `src/d`
    // (one atomic rename) puts the symlink in the source and the real folder outside.
    let swap = work.path().join("swap");
    symlink(secret.join("d"), &swap).unwrap();
    let d = src.join("d");

    let storage = Storage::open(work.path().join("repo").to_str().unwrap()).unwrap();
    let repo = Repository::init(storage, &BackupKey::generate()).unwrap();
    let mut opts = BackupOptions::new(vec![top.clone()]);
    // No file cache, so that every backup looks into every file again.
    opts.cache_dir = None;

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, d, swap) = (stop.clone(), d.clone(), swap.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                renameat_with(CWD, &d, CWD, &swap, RenameFlags::EXCHANGE).unwrap();
                swaps += 1;
            }
            // Leave the source as it was.
            if swaps % 2 == 1 {
                renameat_with(CWD, &d, CWD, &swap, RenameFlags::EXCHANGE).unwrap();
            }
            swaps
        })
    };
    let c = Counters::default();
    let mut results = Vec::new();
    for _ in 0..60 {
        results.push(backup(&repo, &opts, &c));
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    eprintln!("{swaps} swaps during the backups");
    assert!(swaps > 1000, "only {swaps} swaps: the race was not run");
    assert!(Path::new(&d).join("public.txt").is_file());

    let index = repo.load_index().unwrap();
    let mut saw_public = 0;
    for r in results {
        let r = r.expect("a backup with its source renamed under it still ends");
        // What was left out is said in words that name the cause.
        for w in &r.warnings {
            assert!(
                [
                    "was replaced by a symlink while the backup ran",
                    "was replaced by a symlink or something else that is not a directory while the backup ran",
                    "or a folder above it, was replaced or removed while the backup ran",
                    "changed while the backup ran",
                    "was a symlink and was replaced while the backup ran",
                    "vanished before it was read",
                ]
                .iter()
                .any(|m| w.contains(m)),
                "{w}"
            );
        }
        let mut all = Vec::new();
        names(&repo, &index, &r.snapshot.tree, &mut all);
        for n in &all {
            let n = String::from_utf8_lossy(n);
            assert!(
                !n.contains("secret"),
                "a backup followed the symlink put in place of a directory: it saved {n}"
            );
        }
        saw_public += usize::from(all.iter().any(|n| n.ends_with(b"public.txt")));
    }
    // The race did not simply hide the folder from every backup.
    assert!(saw_public > 0, "no backup saw the real folder");
}
