#!/usr/bin/env bash
# Runs every cargo-fuzz target in bench/fuzz/fuzz_targets (or only the TARGETs named) for
# SECONDS each (default 60), starting from the committed seed corpus in
# bench/fuzz/corpus/<target>/. Prints runs and runs/s per target; exits non-zero if any target
# crashes (panic, failed assert, sanitizer report, timeout, OOM) or fails to build. Crash inputs
# land in bench/fuzz/artifacts/<target>/; replay one with
#   (cd bench/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> artifacts/<target>/<file>)
#
# The machine has only stable Rust: RUSTC_BOOTSTRAP=1 unlocks the nightly flags cargo-fuzz uses
# (-Zsanitizer=address). A new target only needs fuzz_targets/<name>.rs, a [[bin]] entry in
# bench/fuzz/Cargo.toml and (ideally) seeds in corpus/<name>/.
#
#   bench/fuzz.sh [SECONDS] [TARGET...]
set -uo pipefail

secs=${1:-60}
[ $# -gt 0 ] && shift
case $secs in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
cd "$here/fuzz" || exit 2

if ! command -v cargo-fuzz >/dev/null; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked || exit 2
fi
export RUSTC_BOOTSTRAP=1

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for t in fuzz_targets/*.rs; do targets+=("$(basename "$t" .rs)"); done
fi

logs=$(mktemp -d)
failed=()
for name in "${targets[@]}"; do
  mkdir -p "corpus/$name" "artifacts/$name"
  # Fuzz a scratch copy, so inputs found here do not dirty the committed seed corpus.
  work=$(mktemp -d)
  cp -r "corpus/$name/." "$work/"
  log="$logs/$name.log"
  echo "== $name: ${secs}s ($(ls "corpus/$name" | wc -l) seeds)"
  cargo fuzz run "$name" "$work" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$PWD/artifacts/$name/" >"$log" 2>&1
  rc=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  cov=$(grep -oE '#[0-9]+[[:space:]]+DONE[[:space:]]+cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+')
  if [ "$rc" -ne 0 ]; then
    if grep -qE '^==[0-9]+== ?ERROR|panicked at|SUMMARY: libFuzzer|deadly signal' "$log"; then
      echo "!! $name: CRASH (exit $rc); input saved under bench/fuzz/artifacts/$name/"
    else
      echo "!! $name: failed (exit $rc; build error?)"
    fi
    grep -E 'panicked at|ERROR|SUMMARY|Test unit written|^error' "$log" | head -20
    echo "   full log: $log"
    failed+=("$name")
  else
    echo "   ok: ${runs:-?} runs, ${rate:-?} runs/s, ${cov:-coverage n/a}, no crash"
    rm -f "$log"
  fi
  rm -rf "$work"
done

rmdir "$logs" 2>/dev/null
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all ${#targets[@]} target(s) ran ${secs}s without a crash"
