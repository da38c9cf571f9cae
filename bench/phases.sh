#!/bin/bash
# One arca's four phases on an existing corpus, with /usr/bin/time (wall, peak RSS) or heaptrack.
# A quick probe beside bench/run.py (which generates corpora and runs peers); session 4 of
# issue 5 measured memory with it (BENCHMARKS.md, "Memory and size").
#
#   bench/phases.sh ARCA CORPUS WORKDIR [heaptrack]
#   DAY1=1 DAYN=1 RESTORE=1 bench/phases.sh ...   # also a day of use (bench/corpus.py day) and a restore
#
# Results: WORKDIR/time.log ("phase seconds s KiB"), WORKDIR/<phase>.log (arca's JSON);
# with heaptrack, WORKDIR/ht-<phase>.zst for heaptrack_print. WORKDIR is deleted first.
set -e
A=$1; C=$2; O=$3; HT=$4
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$O"; mkdir -p "$O/home"
export HOME=$O/home ARCA_CONFIG_DIR=$O/home/arca ARCA_REPO=$O/repo
unset ARCA_KEY ARCA_KEY_FILE ARCA_LOG
"$A" enable --key > "$O/enable.log" 2>&1
run() {
  local ph=$1; shift
  if [ -n "$HT" ]; then
    heaptrack -o "$O/ht-$ph" "$A" "$@" > "$O/$ph.log" 2>&1
  else
    /usr/bin/time -f "$ph %e s %M KiB" -a -o "$O/time.log" "$A" "$@" > "$O/$ph.log" 2>&1
  fi
}
sync
run day0 --json backup "$C"
run nochange --json backup "$C"
if [ -n "$DAY1" ]; then
  python3 "$here/corpus.py" day --dir "$C" --day "${DAYN:-1}" > "$O/day.log" 2>&1
  run day1 --json backup "$C"
fi
if [ -n "$RESTORE" ]; then
  rm -rf "$O/target"; sync
  run restore --json restore --target "$O/target"
  rm -rf "$O/target"
fi
cat "$O/time.log" 2>/dev/null || true
