//! A restore into a folder that already holds symlinks (left there by someone, or by the user's
//! own setup) writes nothing through them: a symlink where the backup has a folder is replaced by
//! the folder, and one planted at a file's temporary name is not written through.

use std::os::unix::fs::symlink;
use std::path::Path;

use arca_crypto::BackupKey;
use arca_engine::{BackupOptions, Counters, Repository, RestoreOptions, backup, restore};
use arca_storage::Storage;

#[test]
fn a_restore_writes_nothing_through_symlinks_in_its_target() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("a/f.txt"), b"inside a").unwrap();
    std::fs::write(src.join("g.txt"), b"the new g").unwrap();
    std::fs::write(src.join("big.bin"), vec![7u8; 300 << 10]).unwrap();

    let repo_dir = work.path().join("repo");
    let storage = Storage::open(repo_dir.to_str().unwrap()).unwrap();
    let repo = Repository::init(storage, &BackupKey::generate()).unwrap();
    let r = backup(
        &repo,
        &BackupOptions::new(vec![src.clone()]),
        &Counters::default(),
    )
    .unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let index = repo.load_index().unwrap();

    // What the symlinks point at: a folder and two files outside the target.
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim");
    let big_victim = outside.join("big-victim");
    std::fs::write(&victim, b"keep me").unwrap();
    std::fs::write(&big_victim, b"keep me too").unwrap();

    let target = work.path().join("restore");
    let restored = target.join(src.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&restored).unwrap();
    // A symlink where the backup has the folder `a`, one at `g.txt`'s temporary name, and one
    // at the temporary name of a file large enough to be written past the page cache.
    symlink(&outside, restored.join("a")).unwrap();
    symlink(&victim, restored.join(".g.txt.arca-restore")).unwrap();
    symlink(&big_victim, restored.join(".big.bin.arca-restore")).unwrap();

    let opts = RestoreOptions {
        target: target.clone(),
        includes: vec![],
        threads: 2,
    };
    let rep = restore(&repo, &index, &r.snapshot.tree, &opts, &Counters::default()).unwrap();
    assert!(rep.warnings.is_empty(), "{:?}", rep.warnings);

    // Nothing outside changed.
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    assert_eq!(std::fs::read(&big_victim).unwrap(), b"keep me too");
    let mut names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["big-victim", "victim"],
        "files were written outside the target"
    );

    // And the target holds the backup: real folders and files, not symlinks.
    for (name, want) in [
        ("a/f.txt", b"inside a".to_vec()),
        ("g.txt", b"the new g".to_vec()),
        ("big.bin", vec![7u8; 300 << 10]),
    ] {
        let p = restored.join(name);
        assert!(!is_symlink(&p), "{name} is a symlink");
        assert_eq!(std::fs::read(&p).unwrap(), want, "{name}");
    }
    assert!(!is_symlink(&restored.join("a")), "a is still a symlink");
    assert!(
        std::fs::symlink_metadata(restored.join("a"))
            .unwrap()
            .is_dir()
    );
    for tmp in [".g.txt.arca-restore", ".big.bin.arca-restore"] {
        assert!(
            std::fs::symlink_metadata(restored.join(tmp)).is_err(),
            "{tmp} was left"
        );
    }
}

fn is_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
}
