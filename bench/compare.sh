#!/usr/bin/env bash
# Published comparison (issue 6): runs the same connection ladder (50, 100, 500, 1,000, 5,000,
# 10,000) and method mix against two running servers, interleaved A B at every step, and appends
# a side-by-side table (accepted connections, req/s, p50/p99, errors, RSS, CPU) to a markdown
# file (default docs/benchmarks.md).
#
#   bench/compare.sh URL_A URL_B
#
# Environment: TOKEN_A / TOKEN_B (JWT or API key, sent with `authenticate`; empty = no auth),
# PID_A / PID_B (server processes to sample for RSS and CPU), LABEL_A / LABEL_B (names in the
# table), LABEL (heading), MIX (default
# ping=4,get_camera_list=1,get_server_info=1), LADDER, DUR (seconds per run, 10), ROUNDS (1),
# OUT (markdown file).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 URL_A URL_B" >&2; exit 2; }
cd "$(dirname "$0")/.."
A=$1 B=$2
MIX=${MIX:-ping=4,get_camera_list=1,get_server_info=1}
LADDER=${LADDER:-50,100,500,1000,5000,10000}
DUR=${DUR:-10}
ROUNDS=${ROUNDS:-1}
OUT=${OUT:-docs/benchmarks.md}
LABEL=${LABEL:-"$A vs $B"}
cargo build --release -p camshard-bench >/dev/null
args=(compare --a-url "$A" --b-url "$B" --ladder "$LADDER" --mix "$MIX" --duration "$DUR"
      --warmup 2 --rounds "$ROUNDS" --label-a "${LABEL_A:-A}" --label-b "${LABEL_B:-B}")
[ -n "${TOKEN_A:-}" ] && args+=(--a-auth authenticate --a-token "$TOKEN_A")
[ -n "${TOKEN_B:-}" ] && args+=(--b-auth authenticate --b-token "$TOKEN_B")
[ -n "${PID_A:-}" ] && args+=(--a-pid "$PID_A")
[ -n "${PID_B:-}" ] && args+=(--b-pid "$PID_B")
TMP=$(mktemp)
{
  echo
  echo "### Comparison: $LABEL"
  echo
  echo "\`bench/compare.sh $A $B\` (mix \`$MIX\`, $DUR s per run, $ROUNDS round(s), $(date -u +%Y-%m-%d))."
  echo
} > "$TMP"
target/release/camshard-bench "${args[@]}" --markdown "$TMP"
cat "$TMP" >> "$OUT"
rm -f "$TMP"
echo "table appended to $OUT"
