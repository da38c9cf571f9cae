//! arca against a real WebDAV server (`rclone serve webdav` on a loopback port): the full
//! cycle, over HTTPS with a certificate from a private CA too; a certificate arca does not
//! trust; a server that dies in the middle of a backup; and temporary uploads that killed runs
//! leave behind.

mod servers;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use servers::{Arca, TestCa, WebDav, random_bytes, restored, tree};

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
fn over_https_with_a_private_ca_backup_incremental_restore_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(&dir.path().join("ca"));
    let Some(dav) = WebDav::start_tls(&dir.path().join("server"), &ca) else {
        return;
    };
    let url = dav.url("remote.php/dav/arca");
    assert!(url.starts_with("webdavs://"), "{url}");
    let arca = Arca::new(
        dir.path(),
        url,
        vec![("ARCA_WEBDAV_CA_FILE".into(), ca.ca.display().to_string())],
    );
    servers::cycle(&arca, &dir.path().join("src"));
    assert!(dav.dir.join("remote.php/dav/arca/config").is_file());
}

#[test]
fn a_certificate_arca_does_not_trust_fails_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(&dir.path().join("ca"));
    let other = TestCa::new(&dir.path().join("other-ca"));
    let Some(dav) = WebDav::start_tls(&dir.path().join("server"), &ca) else {
        return;
    };
    let not_pem = dir.path().join("not-a-cert.txt");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let cases: [(&str, Option<&Path>, &[&str]); 3] = [
        // no CA set: the system's trust store does not know the private CA
        (
            "no CA file",
            None,
            &[
                "certificate is not trusted",
                "UnknownIssuer",
                "ARCA_WEBDAV_CA_FILE",
            ],
        ),
        // the CA file names another CA
        (
            "another CA",
            Some(&other.ca),
            &[
                "certificate is not trusted",
                "not signed by a CA in ARCA_WEBDAV_CA_FILE",
            ],
        ),
        // the CA file is not a certificate at all
        (
            "not PEM",
            Some(&not_pem),
            &[
                "not-a-cert.txt",
                "ARCA_WEBDAV_CA_FILE",
                "holds no certificate",
            ],
        ),
    ];
    for (what, ca_file, expected) in cases {
        let env = match ca_file {
            Some(f) => vec![("ARCA_WEBDAV_CA_FILE".into(), f.display().to_string())],
            None => vec![],
        };
        let root = dir.path().join(what.replace(' ', "-"));
        let arca = Arca::new(&root, dav.url("arca"), env);
        let t0 = Instant::now();
        let out = arca.run(&["enable", "--key"]);
        // A certificate problem is permanent: not retried for a minute and a half.
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{what}: took {:?}",
            t0.elapsed()
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what}: {}",
            servers::show(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        for e in expected {
            assert!(err.contains(e), "{what}: the error lacks {e:?}: {err}");
        }
        assert!(
            walk(&dav.dir).is_empty(),
            "{what}: something was written: {:?}",
            walk(&dav.dir)
        );
        assert!(
            !root.join("device/key").exists(),
            "{what}: the device kept a key for a repository that was never made"
        );
    }
}

/// Sets a file's modification time `ago` in the past.
fn age(path: &Path, ago: Duration) {
    let t = filetime::FileTime::from_system_time(SystemTime::now() - ago);
    filetime::set_file_mtime(path, t).unwrap();
}

#[test]
fn old_temporary_uploads_are_reported_by_check_and_removed_by_the_next_backup() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut dav) = WebDav::start(&dir.path().join("server")) else {
        return;
    };
    let arca = Arca::new(dir.path(), dav.url("arca"), vec![]);
    arca.json(&["enable", "--key"]);
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), random_bytes(7, 300_000)).unwrap();
    arca.json(&["backup", src.to_str().unwrap()]);

    // What a backup killed mid-upload leaves: a temporary upload from two days ago (stale), one
    // from an hour ago and one being written right now (a backup from another device may still
    // be writing them).
    let tmp = dav.dir.join("arca/.tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let old = tmp.join("data_ab_abcdef.1111111111111111");
    let recent = tmp.join("data_cd_cdef01.2222222222222222");
    let now = tmp.join("index_0123.3333333333333333");
    std::fs::write(&old, random_bytes(1, 50_000)).unwrap();
    std::fs::write(&recent, random_bytes(2, 40_000)).unwrap();
    std::fs::write(&now, random_bytes(3, 30_000)).unwrap();
    age(&old, Duration::from_secs(48 * 3600));
    age(&recent, Duration::from_secs(3600));
    // rclone caches folder listings: let it see the folder as it is now.
    dav.stop();
    dav.restart();

    // check reports them and removes nothing
    let c = arca.json(&["check"]);
    assert_eq!(c["ok"], true, "{c}");
    let notes = c["notes"].to_string();
    assert!(
        notes.contains("3 temporary uploads") && notes.contains("120000 bytes"),
        "{c}"
    );
    assert!(notes.contains("1 of them older than 24 h"), "{c}");
    assert!(old.exists() && recent.exists() && now.exists());
    let out = arca.run(&["check"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 temporary uploads")
            || String::from_utf8_lossy(&out.stderr).contains("3 temporary uploads"),
        "{}",
        servers::show(&out)
    );

    // the next backup removes the stale one only
    std::fs::write(src.join("b.bin"), random_bytes(8, 100_000)).unwrap();
    arca.json(&["backup", src.to_str().unwrap()]);
    assert!(!old.exists(), "the stale temporary upload is still there");
    assert!(
        recent.exists() && now.exists(),
        "a young temporary upload was removed"
    );
    let c = arca.json(&["check", "--read-data"]);
    assert_eq!(c["ok"], true, "{c}");
    let notes = c["notes"].to_string();
    assert!(
        notes.contains("2 temporary uploads") && notes.contains("0 of them older"),
        "{c}"
    );
    let target = dir.path().join("restore");
    arca.json(&["restore", "--target", target.to_str().unwrap()]);
    assert_eq!(tree(&restored(&target, &src)), tree(&src));
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
