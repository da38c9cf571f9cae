#!/usr/bin/env bash
# fuzz/sanitize.sh [CRATE...]: runs the test suites of the crates where it applies (default:
# arca-crypto, arca-format, arca-client, arca-vault's unit tests) under AddressSanitizer, which
# catches use-after-free, out-of-bounds access and leaks in the Rust code and what it calls.
# Miri needs a nightly toolchain, which this project cannot fetch; ASan on the stable toolchain
# takes -Zsanitizer through RUSTC_BOOTSTRAP=1. C code built by the -sys crates (zstd, SQLite)
# is not instrumented. Builds into fuzz/target/sanitize so the main target dir is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=(arca-crypto arca-format arca-client arca-vault)
args=()
for c in "${crates[@]}"; do args+=(-p "$c"); done
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes"
export RUSTDOCFLAGS="$RUSTFLAGS"
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:abort_on_error=1"
export CARGO_TARGET_DIR=${SANITIZE_TARGET_DIR:-fuzz/target/sanitize}
# The vault's PostgreSQL tests need a server; arca-vault runs its unit tests (--lib) only,
# the others every test target.
lib_only=()
for c in "${crates[@]}"; do [ "$c" = arca-vault ] && lib_only+=(1); done
if [ ${#lib_only[@]} -gt 0 ]; then
  others=()
  for c in "${crates[@]}"; do [ "$c" = arca-vault ] || others+=(-p "$c"); done
  nice -n 10 cargo nextest run --target x86_64-unknown-linux-gnu --no-fail-fast -p arca-vault --lib
  [ ${#others[@]} -eq 0 ] || nice -n 10 cargo nextest run --target x86_64-unknown-linux-gnu --no-fail-fast "${others[@]}"
else
  nice -n 10 cargo nextest run --target x86_64-unknown-linux-gnu --no-fail-fast "${args[@]}"
fi
