//! Crash safety: `arca backup` is killed with SIGKILL at random moments, 10 times (in at most
//! 20 rounds; a backup may finish before its kill), and every
//! time the next backup completes, `check` passes, and a restore gives back the source byte for
//! byte (see `common::backup_crash_loop` for how the kills are spread over a backup's run).
//!
//! The source is about 60 MB; each round brings 20-28 MB of new data, more than a 16 MiB pack.
//! `check --read-data` runs every round; every other round (and at the end) the latest snapshot
//! is restored and compared with the source byte for byte. The long campaigns (hundreds of
//! kills, local and S3, and kills of restores) are in campaign_crash.rs.
//!
//! Set `ARCA_CRASH_SEED` to replay a run with another seed.

mod common;

use common::{CrashLoop, Env, Scale, backup_crash_loop, repo_counts, seed};

const KILLS: usize = 10;

#[test]
fn backup_survives_sigkill_at_random_moments() {
    let env = Env::local("arca-crash-");
    let repo = env.repo_dir.clone().unwrap();
    let report = backup_crash_loop(
        &env,
        &CrashLoop {
            kills: KILLS,
            max_rounds: 2 * KILLS,
            seed: seed("ARCA_CRASH_SEED", 0x00a7_ca5e_ed01),
            scale: Scale(4),
            restore_every: 2,
            counts: Box::new(move || repo_counts(&repo)),
        },
    );
    assert_eq!(report.killed, KILLS);
}
