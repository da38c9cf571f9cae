//! arca against a real WebDAV server (`rclone serve webdav` on a loopback port): the full
//! cycle, and a server that dies in the middle of a backup.

mod servers;

use std::process::Stdio;
use std::time::{Duration, Instant};

use servers::{Arca, WebDav, random_bytes, restored, tree};

#[test]
fn backup_incremental_restore_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let Some(dav) = WebDav::start(&dir.path().join("server")) else {
        return;
    };
    let arca = Arca::new(dir.path(), dav.url("remote.php/dav/arca"), vec![]);
    servers::cycle(&arca, &dir.path().join("src"));
    assert!(dav.dir.join("remote.php/dav/arca/config").is_file());
}

#[test]
fn a_server_that_dies_mid_backup_fails_it_clearly_and_the_next_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut dav) = WebDav::start(&dir.path().join("server")) else {
        return;
    };
    let arca = Arca::new(
        dir.path(),
        dav.url("arca"),
        vec![
            ("ARCA_PACK_SIZE".into(), "1048576".into()),
            ("ARCA_RETRIES".into(), "2".into()),
            ("ARCA_RETRY_DELAY".into(), "0.1".into()),
        ],
    );
    arca.json(&["enable", "--key"]);
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..4 {
        std::fs::write(
            src.join(format!("f{i}.bin")),
            random_bytes(40 + i, 2_500_000),
        )
        .unwrap();
    }
    let data = dav.dir.join("arca/data");
    // Packs arrive under a temporary name in arca/.tmp, then are renamed into arca/data.
    let packs = || walk(&data).len();
    let child = arca
        .cmd(&["--limit-upload", "2M", "backup", src.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    while packs() < 4 {
        assert!(Instant::now() < until, "no packs arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    dav.stop();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", servers::show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&dav.url("arca")),
        "the error names the storage: {err}"
    );
    assert!(
        err.contains("data/") || err.contains("index/") || err.contains("snapshots/"),
        "the error names the object: {err}"
    );
    assert!(
        err.to_lowercase().contains("connect"),
        "the error says what the server did: {err}"
    );

    dav.restart();
    let second = arca.json(&["backup", src.to_str().unwrap()]);
    let sent = second["traffic"]["bytes_sent"].as_u64().unwrap();
    assert!(
        sent < 10_000_000 - 3_000_000,
        "resumed backup sent {sent}: {second}"
    );
    let c = arca.json(&["check", "--read-data"]);
    assert_eq!(c["ok"], true, "{c}");
    let target = dir.path().join("restore");
    arca.json(&["restore", "--target", target.to_str().unwrap()]);
    assert_eq!(tree(&restored(&target, &src)), tree(&src));
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
