//! Fault injection in front of a real S3 server: transient errors, stalls past the timeout,
//! truncated reads and writes, lost answers (`ARCA_TEST_FAULTS`, see arca-storage's faults.rs).
//! Backups either complete correctly or fail with a clear error, the next run resumes, and at
//! the end `check --read-data` passes and a restore gives back the source byte for byte.

mod servers;

use servers::{Arca, S3, random_bytes, restored, tree};

/// Fast retries and a short timeout, so that stalls are noticed in a test's time.
fn quick(mut env: Vec<(String, String)>) -> Vec<(String, String)> {
    env.extend([
        ("ARCA_RETRY_DELAY".to_string(), "0.02".to_string()),
        ("ARCA_TIMEOUT".into(), "1.5".into()),
        ("ARCA_MIN_RATE".into(), "20M".into()),
        ("ARCA_PACK_SIZE".into(), "1048576".into()),
    ]);
    env
}

fn source(dir: &std::path::Path, round: u64) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    for i in 0..3 {
        std::fs::write(
            src.join(format!("f{i}.bin")),
            random_bytes(round * 10 + i, 700_000),
        )
        .unwrap();
    }
    std::fs::write(
        src.join("sub/notes.txt"),
        format!("round {round}\n").repeat(300),
    )
    .unwrap();
    src
}

#[test]
fn transient_faults_are_retried_and_nothing_is_lost() {
    let Some(s3) = S3::start() else { return };
    s3.create_bucket("faults");
    let dir = tempfile::tempdir().unwrap();
    let clean = Arca::new(dir.path(), "s3://faults/repo".into(), quick(s3.env()));
    clean.json(&["enable", "--key"]);
    let mut faulty = Arca::new(dir.path(), "s3://faults/repo".into(), quick(s3.env()));
    faulty
        .env
        .push(("ARCA_TEST_FAULTS".into(), "11:0.15:3".into()));

    let mut retried = 0;
    for round in 0..3 {
        let src = source(dir.path(), round);
        let b = faulty.json(&["backup", src.to_str().unwrap()]);
        retried += b["traffic"]["retries"].as_u64().unwrap();
        let target = dir.path().join(format!("restore{round}"));
        let r = faulty.json(&["restore", "--target", target.to_str().unwrap()]);
        retried += r["traffic"]["retries"].as_u64().unwrap();
        assert_eq!(tree(&restored(&target, &src)), tree(&src));
    }
    assert!(retried >= 3, "faults were injected and retried: {retried}");
    let c = faulty.json(&["check", "--read-data"]);
    assert_eq!(c["ok"], true, "{c}");
    let c = clean.json(&["check", "--read-data"]);
    assert_eq!(c["ok"], true, "{c}");
}

#[test]
fn backups_that_give_up_fail_clearly_and_the_next_run_completes() {
    let Some(s3) = S3::start() else { return };
    s3.create_bucket("harsh");
    let dir = tempfile::tempdir().unwrap();
    let clean = Arca::new(dir.path(), "s3://harsh/repo".into(), quick(s3.env()));
    clean.json(&["enable", "--key"]);
    let (mut failed, mut completed) = (0, 0);
    for seed in 0..6u64 {
        let src = source(dir.path(), seed);
        let mut harsh = Arca::new(dir.path(), "s3://harsh/repo".into(), quick(s3.env()));
        harsh.env.extend([
            ("ARCA_TEST_FAULTS".to_string(), format!("{seed}:0.5:3")),
            ("ARCA_RETRIES".into(), "1".into()),
        ]);
        let out = harsh.run(&["--json", "backup", src.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", servers::show(&out)));
        match out.status.code() {
            Some(0) => completed += 1,
            Some(1) => {
                failed += 1;
                let msg = v["error"].as_str().unwrap();
                assert!(
                    msg.contains("s3://harsh/repo")
                        && (msg.contains("injected fault") || msg.contains("no answer within")),
                    "a failure names the storage and what went wrong: {msg}"
                );
            }
            other => panic!("exit {other:?}: {}", servers::show(&out)),
        }
        // Whatever happened, the repository is sound, and a clean run completes it.
        let c = clean.json(&["check", "--read-data"]);
        assert_eq!(c["ok"], true, "seed {seed}: {c}");
        clean.json(&["backup", src.to_str().unwrap()]);
        let target = dir.path().join(format!("restore{seed}"));
        clean.json(&["restore", "--target", target.to_str().unwrap()]);
        assert_eq!(tree(&restored(&target, &src)), tree(&src));
    }
    assert!(
        failed >= 1,
        "with half of all requests failing some backups gave up"
    );
    let _ = completed;
    let c = clean.json(&["check", "--read-data"]);
    assert_eq!(c["ok"], true, "{c}");
}
