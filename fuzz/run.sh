#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [TARGET...]: builds every fuzz target (cargo fuzz, AddressSanitizer,
# debug assertions) and runs each for SECONDS (default 600), one after another, nice'd.
# Inputs that grow coverage go to $FUZZ_WORK/<target> (default /tmp/fuzzwork), logs to
# $FUZZ_LOGS/<target>.log (default /tmp/fuzzlogs); the committed seeds in fuzz/corpus/<target>
# are read, never written. A crash, panic, leak, out-of-memory (over 256 MiB in one allocation or
# 512 MiB in all) or a run over 10 s fails the run and leaves its input in fuzz/artifacts/<target>/.
# Only the stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets it take cargo fuzz's -Z flags.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
export RUSTC_BOOTSTRAP=1
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
cargo fuzz build
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
bin=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release
logs=${FUZZ_LOGS:-/tmp/fuzzlogs}
work=${FUZZ_WORK:-/tmp/fuzzwork}
mkdir -p "$logs"
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "artifacts/$t"
  start=$(date +%s)
  if nice -n 10 "$bin/$t" -max_total_time="$secs" -rss_limit_mb=512 -malloc_limit_mb=256 \
      -timeout=10 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
      "$work/$t" "corpus/$t" >"$logs/$t.log" 2>&1; then
    verdict=ok
  else
    verdict=FAILED
    failed+=("$t")
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$logs/$t.log" | tail -n 1 | grep -o '[0-9]*' || echo '?')
  corpus=$(find "$work/$t" "corpus/$t" -type f | wc -l)
  printf '%-36s %-6s %4ss  execs %-10s cov %-6s corpus %s\n' \
    "$t" "$verdict" "$(($(date +%s) - start))" "$execs" "$cov" "$corpus"
  if [ "$verdict" = FAILED ]; then
    grep -m 5 -E 'ERROR|panicked|Test unit written' "$logs/$t.log" | sed 's/^/    /' || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]} (logs in $logs)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${secs}s each with no failure"
