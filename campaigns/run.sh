#!/usr/bin/env bash
# Runs the issue 7 campaigns with their full counts (docs/RELIABILITY.md gives the figures):
#
#   campaigns/run.sh crash    200 SIGKILLs of `arca backup` (120 on a local folder, 80 on S3),
#                             50 of `arca restore`
#   campaigns/run.sh faults   100 backup/restore cycles through the fault layer (90 on a local
#                             folder, 10 on S3) at rates 0.01, 0.05 and 0.2
#   campaigns/run.sh local    bad local conditions, with 10 backups of a changing source
#   campaigns/run.sh all      all three
#
# Counts can be changed through the variables below (ARCA_CAMPAIGN_THREADS: tests of one file
# run at once, default 3); seeds through ARCA_CRASH_SEED,
# ARCA_FAULT_SEED and ARCA_LOCAL_SEED. The tests run against a release build of `arca`, at
# nice 10; logs go to target/campaigns/. The S3 parts need moto_server (pip install
# 'moto[server]'), the mounts need root, the clock test needs faketime (apt-get install faketime).
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
: "${ARCA_CAMPAIGN_CRASH_LOCAL:=120}"
: "${ARCA_CAMPAIGN_CRASH_S3:=80}"
: "${ARCA_CAMPAIGN_CRASH_RESTORE:=50}"
: "${ARCA_CAMPAIGN_FAULT_CYCLES:=90}"
: "${ARCA_CAMPAIGN_FAULT_S3_CYCLES:=10}"
: "${ARCA_CAMPAIGN_FAULT_RATES:=0.01,0.05,0.2}"
: "${ARCA_CAMPAIGN_LOCAL_ROUNDS:=10}"
export ARCA_CAMPAIGN_CRASH_LOCAL ARCA_CAMPAIGN_CRASH_S3 ARCA_CAMPAIGN_CRASH_RESTORE \
  ARCA_CAMPAIGN_FAULT_CYCLES ARCA_CAMPAIGN_FAULT_S3_CYCLES ARCA_CAMPAIGN_FAULT_RATES \
  ARCA_CAMPAIGN_LOCAL_ROUNDS
export ARCA_REQUIRE_SERVERS=${ARCA_REQUIRE_SERVERS:-1}

logs=target/campaigns
mkdir -p "$logs"

run() { # test file
  local t=$1
  echo "== $t (log: $logs/$t.log)"
  # Release build: the tests run the release `arca` binary cargo builds for them.
  /usr/bin/time -v nice -n 10 cargo nextest run --release --locked -p arca-cli --test "$t" \
    --no-capture --test-threads "${ARCA_CAMPAIGN_THREADS:-3}" 2>&1 | tee "$logs/$t.log" |
    grep -E '^(  killed|local:|s3:|[0-9]+ (of|restores|backups)|SKIPPED|.*PASS|.*FAIL|.*panicked|\s+(User time|System time|Elapsed))' || true
  grep -qE '^\s+Summary .* [0-9]+ tests? run: [0-9]+ passed' "$logs/$t.log" &&
    ! grep -q 'FAIL' "$logs/$t.log"
}

case $what in
  crash) run campaign_crash ;;
  faults) run campaign_faults ;;
  local) run campaign_local ;;
  all) run campaign_crash && run campaign_faults && run campaign_local ;;
  *) echo "usage: $0 crash|faults|local|all" >&2; exit 2 ;;
esac
