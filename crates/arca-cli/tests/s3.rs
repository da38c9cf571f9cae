//! arca against a real S3 server (moto on a loopback port): the full cycle (also over HTTPS
//! with a certificate from a private CA, named in the storage config file), what the provider
//! can see, a backup killed mid-way that resumes without sending again what arrived, a restore
//! interrupted halfway that keeps what it had restored, and the bandwidth limits.

mod servers;

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use servers::{Arca, S3, TestCa, random_bytes, restored, tree};

fn setup(bucket: &str) -> Option<(S3, tempfile::TempDir, Arca)> {
    let s3 = S3::start()?;
    s3.create_bucket(bucket);
    let dir = tempfile::tempdir().unwrap();
    let arca = Arca::new(dir.path(), format!("s3://{bucket}/backups/me"), s3.env());
    Some((s3, dir, arca))
}

#[test]
fn backup_incremental_restore_and_check() {
    let Some((_s3, dir, arca)) = setup("cycle") else {
        return;
    };
    servers::cycle(&arca, &dir.path().join("src"));
}

#[test]
fn over_https_with_a_private_ca_backup_incremental_restore_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(&dir.path().join("ca"));
    let Some(s3) = S3::start_tls(&ca) else {
        return;
    };
    s3.create_bucket("tls");
    let env = s3.env();
    assert!(
        env.iter()
            .any(|(k, v)| k == "ARCA_S3_ENDPOINT" && v.starts_with("https://"))
    );

    // Without the CA: a clear, permanent error, and nothing written.
    let untrusting = Arca::new(&dir.path().join("no-ca"), "s3://tls/me".into(), env.clone());
    let t0 = Instant::now();
    let out = untrusting.run(&["enable", "--key"]);
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert_eq!(out.status.code(), Some(1), "{}", servers::show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("certificate is not trusted") && err.contains("ARCA_S3_CA_FILE"),
        "{err}"
    );
    assert!(s3.objects().is_empty(), "{:?}", s3.objects());

    // With the CA, from the storage config file.
    let arca = Arca::new(dir.path(), "s3://tls/me".into(), env);
    std::fs::create_dir_all(dir.path().join("device")).unwrap();
    std::fs::write(
        dir.path().join("device/storage.toml"),
        format!("[s3]\nca_file = {:?}\n", ca.ca.display().to_string()),
    )
    .unwrap();
    servers::cycle(&arca, &dir.path().join("src"));
    assert!(
        s3.objects().iter().any(|(_, k, _)| k == "me/config"),
        "{:?}",
        s3.objects()
    );
}

#[test]
fn the_storage_sees_no_names_no_text_and_no_file_sizes() {
    let Some((s3, dir, arca)) = setup("privacy") else {
        return;
    };
    let src = dir.path().join("Confidential-Folder");
    let names = [
        "Quarterly-Report-Secret.txt",
        "Passwords-Vault.kdbx",
        "Medical-Records",
        "x-ray-scan.dcm",
        "holiday-photo.jpg",
    ];
    std::fs::create_dir_all(src.join("Medical-Records")).unwrap();
    let text = "The merger with Globex closes on Friday; tell nobody. ".repeat(40);
    std::fs::write(src.join("Quarterly-Report-Secret.txt"), &text).unwrap();
    std::fs::write(
        src.join("Passwords-Vault.kdbx"),
        "hunter2-correct-horse-battery-staple\n",
    )
    .unwrap();
    std::fs::write(
        src.join("Medical-Records/x-ray-scan.dcm"),
        random_bytes(9, 700_000),
    )
    .unwrap();
    std::fs::write(src.join("holiday-photo.jpg"), random_bytes(10, 1_234_567)).unwrap();
    arca.json(&["enable", "--key"]);
    arca.json(&["backup", src.to_str().unwrap()]);

    let sizes: HashSet<u64> = servers::tree(&src)
        .into_iter()
        .filter_map(|(_, c, _)| c.map(|c| c.len() as u64))
        .collect();
    let mut needles: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
    needles.push(b"Confidential-Folder".to_vec());
    needles.push(b"Globex".to_vec());
    needles.push(b"merger".to_vec());
    needles.push(b"hunter2".to_vec());
    needles.push(b"horse-battery".to_vec());
    // a stretch of the random file, as stored on disk
    needles.push(random_bytes(10, 1_234_567)[500_000..500_032].to_vec());

    let objects = s3.objects();
    assert!(objects.len() >= 4, "{objects:?}");
    let mut total = 0;
    for (bucket, key, size) in &objects {
        for n in &needles {
            assert!(
                !key.as_bytes().windows(n.len()).any(|w| w == &n[..]),
                "the object name {key} gives away {}",
                String::from_utf8_lossy(n)
            );
        }
        assert!(
            !sizes.contains(size),
            "{key} is {size} bytes, the size of a source file"
        );
        let body = s3.get(bucket, key);
        assert_eq!(body.len() as u64, *size);
        total += body.len();
        for n in &needles {
            assert!(
                !body.windows(n.len()).any(|w| w == &n[..]),
                "{key} holds {:?}",
                String::from_utf8_lossy(&n[..n.len().min(40)])
            );
        }
    }
    assert!(total > 1_900_000, "every stored byte was read: {total}");
}

/// Polls `f` until it holds, or fails after `secs`.
fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_killed_backup_resumes_without_sending_again_what_arrived() {
    let Some((s3, dir, mut arca)) = setup("resume") else {
        return;
    };
    // 1 MiB packs, so that a few MB of data make many packs.
    arca.env.push(("ARCA_PACK_SIZE".into(), "1048576".into()));
    arca.json(&["enable", "--key"]);
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..4 {
        std::fs::write(
            src.join(format!("f{i}.bin")),
            random_bytes(20 + i, 3_000_000),
        )
        .unwrap();
    }
    let total = 12_000_000u64;
    let packs = || {
        s3.objects()
            .iter()
            .filter(|(_, k, _)| k.contains("/data/"))
            .count()
    };
    // Slowed to 2 MB/s so that it is killed half-way: when 5 of its ~12 packs are stored.
    let mut child = arca
        .cmd(&["--limit-upload", "2M", "backup", src.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(60, "5 packs to arrive", || packs() >= 5);
    child.kill().unwrap();
    child.wait().unwrap();
    let arrived = packs();
    assert!(arrived < 12, "the backup finished before it was killed");
    assert!(
        !s3.objects()
            .iter()
            .any(|(_, k, _)| k.contains("/snapshots/")),
        "no snapshot yet"
    );

    let second = arca.json(&["backup", src.to_str().unwrap()]);
    let sent = second["traffic"]["bytes_sent"].as_u64().unwrap();
    assert!(
        second["reused_packs"].as_u64().unwrap() >= arrived as u64 - 1,
        "{second}"
    );
    // What arrived (at least 5 MiB) is not sent again.
    assert!(
        sent < total - 4_000_000,
        "the resumed backup sent {sent} of {total} bytes: {second}"
    );
    let c = arca.json(&["check", "--read-data"]);
    assert_eq!(c["ok"], true, "{c}");
    let target = dir.path().join("restore");
    arca.json(&["restore", "--target", target.to_str().unwrap()]);
    assert_eq!(tree(&restored(&target, &src)), tree(&src));
}

#[test]
fn an_interrupted_restore_keeps_the_files_it_had_restored() {
    let Some((_s3, dir, arca)) = setup("restore-resume") else {
        return;
    };
    arca.json(&["enable", "--key"]);
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..30 {
        std::fs::write(
            src.join(format!("f{i:02}.bin")),
            random_bytes(100 + i, 200_000),
        )
        .unwrap();
    }
    arca.json(&["backup", src.to_str().unwrap()]);
    let target = dir.path().join("restore");
    let out = restored(&target, &src);
    let done = |p: &Path| {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    };
    // One file at a time at 1 MB/s: killed when a third of the files are there.
    let mut child = arca
        .cmd(&[
            "--downloads",
            "1",
            "--limit-download",
            "1M",
            "restore",
            "--target",
            target.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(60, "10 restored files", || done(&out) >= 10);
    child.kill().unwrap();
    child.wait().unwrap();
    let before = done(&out);
    assert!(before < 30, "the restore finished before it was killed");
    // A file that was restored, then changed without its size or time changing, is not kept.
    let tampered = out.join("f00.bin");
    let meta = std::fs::metadata(&tampered).unwrap();
    let mut bytes = std::fs::read(&tampered).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(&tampered, &bytes).unwrap();
    filetime::set_file_mtime(
        &tampered,
        filetime::FileTime::from_last_modification_time(&meta),
    )
    .unwrap();

    let r = arca.json(&["restore", "--target", target.to_str().unwrap()]);
    let skipped = r["skipped_files"].as_u64().unwrap();
    assert_eq!(skipped, before as u64 - 1, "{r}");
    let received = r["traffic"]["bytes_received"].as_u64().unwrap();
    assert!(
        received < 6_000_000 - 200_000 * (before as u64 - 1) + 400_000,
        "the second restore downloaded {received} bytes: {r}"
    );
    assert_eq!(tree(&out), tree(&src));
}

#[test]
fn upload_and_download_limits_hold() {
    let Some((_s3, dir, arca)) = setup("limits") else {
        return;
    };
    arca.json(&["enable", "--key"]);
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), random_bytes(7, 3_000_000)).unwrap();
    let t = Instant::now();
    let b = arca.json(&["--limit-upload", "1M", "backup", src.to_str().unwrap()]);
    let secs = t.elapsed().as_secs_f64();
    let sent = b["traffic"]["bytes_sent"].as_u64().unwrap() as f64;
    assert!(
        secs >= sent / 1e6 * 0.9,
        "{sent} bytes sent in {secs:.1}s at 1 MB/s"
    );
    let target = dir.path().join("restore");
    let t = Instant::now();
    let r = arca.json(&[
        "--limit-download",
        "2M",
        "restore",
        "--target",
        target.to_str().unwrap(),
    ]);
    let secs = t.elapsed().as_secs_f64();
    let received = r["traffic"]["bytes_received"].as_u64().unwrap() as f64;
    assert!(
        secs >= received / 2e6 * 0.9,
        "{received} bytes received in {secs:.1}s at 2 MB/s"
    );
    assert_eq!(tree(&restored(&target, &src)), tree(&src));
}

#[test]
fn a_missing_bucket_is_named_with_the_servers_answer() {
    let Some((_s3, dir, mut arca)) = setup("exists") else {
        return;
    };
    arca.repo = "s3://no-such-bucket/x".into();
    let out = arca.run(&["enable", "--key"]);
    assert_eq!(out.status.code(), Some(1), "{}", servers::show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("s3://no-such-bucket/x"), "{err}");
    assert!(err.contains("NoSuchBucket"), "{err}");
    let _ = dir;
}
