#!/usr/bin/env bash
# Runs every cargo-fuzz target under bench/fuzz/fuzz_targets for SECONDS each (default 60),
# starting from the committed seed corpus. Exits non-zero if any target finds a crash.
# The machine has only stable Rust: RUSTC_BOOTSTRAP=1 unlocks the sanitizer flags cargo-fuzz uses.
#
#   bench/fuzz.sh [SECONDS]
set -euo pipefail
secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
status=0
for t in fuzz_targets/*.rs; do
  name=$(basename "$t" .rs)
  mkdir -p "corpus/$name" "artifacts/$name"
  # Work on a scratch copy so new inputs found here do not dirty the committed corpus.
  work=$(mktemp -d)
  cp -r "corpus/$name/." "$work/"
  echo "== $name: ${secs}s"
  if cargo fuzz run "$name" "$work" -- -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 \
       -artifact_prefix="artifacts/$name/" 2>&1 | tee "/tmp/fuzz-$name.log" | grep -E '^(#[0-9]+\s+DONE|Done|==[0-9]+==ERROR|SUMMARY)' ; then :; fi
  if grep -qE 'ERROR: libFuzzer|deadly signal|panicked' "/tmp/fuzz-$name.log"; then
    echo "!! $name: crash, see bench/fuzz/artifacts/$name/"
    status=1
  else
    grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "/tmp/fuzz-$name.log" | tail -1 || true
  fi
  rm -rf "$work"
done
exit $status
