//! The crash-loop campaign (issue 7): `arca backup` SIGKILLed at random moments against a local
//! folder and against an S3 server (moto), and `arca restore` SIGKILLed at random moments.
//!
//! After every killed backup `check` passes at once, the next backup completes and `check
//! --read-data` passes (every round, on both backends); every few rounds and at the end the
//! latest snapshot is restored and compared byte for byte. After every killed restore the next
//! restore into the same target completes, the target equals the source byte for byte (names,
//! kinds, modes, times, bytes) and no temporary `.arca-restore` file is left.
//!
//! The regular test suite runs a few rounds of each; `campaigns/run.sh crash` runs the full
//! counts, set by:
//!
//! - `ARCA_CAMPAIGN_CRASH_LOCAL` kills of backups to a local folder (default 3),
//! - `ARCA_CAMPAIGN_CRASH_S3` kills of backups to S3 (default 2),
//! - `ARCA_CAMPAIGN_CRASH_RESTORE` kills of restores (default 4),
//! - `ARCA_CRASH_SEED` the seed; `ARCA_BIN` another build of `arca` (a release build).

mod common;
mod servers;

use std::fs;
use std::sync::Arc;
use std::time::Instant;

use common::{
    CrashLoop, Env, Scale, assert_same_tree, backup_crash_loop, count, kill_after, leftovers,
    make_source, mutate, repo_counts, seed, show,
};
use rand::Rng;
use rand::rngs::StdRng;

/// Small packs, so that several are uploaded in the middle of every backup.
fn tuning() -> Vec<(String, String)> {
    vec![("ARCA_PACK_SIZE".into(), (2u64 << 20).to_string())]
}

#[test]
fn backup_kills_on_a_local_folder() {
    let kills = count("ARCA_CAMPAIGN_CRASH_LOCAL", 3);
    let mut env = Env::local("arca-campaign-crash-local-");
    env.env = tuning();
    let repo = env.repo_dir.clone().unwrap();
    let report = backup_crash_loop(
        &env,
        &CrashLoop {
            kills,
            max_rounds: 3 * kills,
            seed: seed("ARCA_CRASH_SEED", 0x0c4a_5401),
            scale: Scale(2),
            restore_every: 5,
            counts: Box::new(move || repo_counts(&repo)),
        },
    );
    eprintln!("local: {report:?}");
    assert_eq!(report.killed, kills);
}

#[test]
fn backup_kills_on_s3() {
    let Some(s3) = servers::S3::start() else {
        return;
    };
    s3.create_bucket("crash");
    let kills = count("ARCA_CAMPAIGN_CRASH_S3", 2);
    let mut env_vars = s3.env();
    env_vars.extend(tuning());
    let env = Env::remote(
        "arca-campaign-crash-s3-",
        "s3://crash/repo".into(),
        env_vars,
    );
    let s3 = Arc::new(s3);
    let counts = {
        let s3 = s3.clone();
        move || {
            let objects = s3.objects();
            ["repo/data/", "repo/index/", "repo/snapshots/", "repo/.tmp/"].map(|prefix| {
                objects
                    .iter()
                    .filter(|(b, k, _)| b == "crash" && k.starts_with(prefix))
                    .count()
            })
        }
    };
    let report = backup_crash_loop(
        &env,
        &CrashLoop {
            kills,
            max_rounds: 3 * kills,
            seed: seed("ARCA_CRASH_SEED", 0x0c4a_5402),
            scale: Scale(1),
            restore_every: 5,
            counts: Box::new(counts),
        },
    );
    eprintln!("s3: {report:?}");
    assert_eq!(report.killed, kills);
}

/// `arca restore` SIGKILLed at random moments, one to three times in a row into the same target,
/// then run to the end: the target equals the source and no temporary file is left. Every few
/// rounds the source changes and a new backup is restored; sometimes the target starts empty,
/// sometimes it holds an earlier complete or interrupted restore.
#[test]
fn restore_kills() {
    let wanted = count("ARCA_CAMPAIGN_CRASH_RESTORE", 4);
    let started = Instant::now();
    let mut rng: StdRng = rand::SeedableRng::seed_from_u64(seed("ARCA_CRASH_SEED", 0x0c4a_5403));
    let env = Env::local("arca-campaign-crash-restore-");
    let src = env.root.join("src");
    make_source(&mut rng, &src, Scale(2));
    let src_arg = src.to_str().unwrap().to_string();
    env.ok(&["enable", "--key"]);
    env.ok(&["backup", &src_arg]);
    let target = env.root.join("target");
    let target_arg = target.to_str().unwrap().to_string();
    let restored = target.join(src.strip_prefix("/").unwrap());

    let t = Instant::now();
    env.ok(&["restore", "--target", &target_arg]);
    let mut length = t.elapsed();
    assert_same_tree(&src, &restored);
    eprintln!("a full restore takes {:.2}s", length.as_secs_f64());

    let (mut kills, mut rounds, mut backups, mut fresh) = (0, 0, 0, 0);
    while kills < wanted {
        rounds += 1;
        if rounds % 5 == 0 {
            mutate(&mut rng, &src, rounds);
            env.ok(&["backup", &src_arg]);
            backups += 1;
            // Files deleted from the source would stay in an old restore: start over.
            fs::remove_dir_all(&target).unwrap();
            fresh += 1;
        } else if rng.gen_bool(0.3) {
            fs::remove_dir_all(&target).unwrap();
            fresh += 1;
        }
        let in_a_row = rng.gen_range(1..=3usize).min(wanted - kills);
        let mut this_round = Vec::new();
        for _ in 0..in_a_row {
            let delay = length.mul_f64(0.95 * rng.gen_range(0.0f64..1.0));
            let (killed, ran) = kill_after(
                env.cmd(&["restore", "--target", &target_arg]),
                delay,
                &format!("round {rounds}: restore"),
            );
            if killed {
                kills += 1;
                this_round.push(format!("{:.2}s", delay.as_secs_f64()));
            } else if !target.exists() || ran > length {
                length = ran;
            }
        }
        let t = Instant::now();
        let out = env.run(&["restore", "--target", &target_arg]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {rounds}: the restore after kills at {this_round:?} failed\n{}",
            show(&out)
        );
        let resumed = t.elapsed();
        assert_same_tree(&src, &restored);
        leftovers(&target);
        eprintln!(
            "round {rounds:3}: killed at {this_round:?} of {:.2}s; resumed in {:.2}s; {kills} kills; elapsed {:.1}s",
            length.as_secs_f64(),
            resumed.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    }
    env.ok(&["check", "--read-data"]);
    eprintln!(
        "{kills} restores killed in {rounds} rounds ({backups} new backups, {fresh} fresh targets); total {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
