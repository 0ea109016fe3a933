#!/usr/bin/env bash
# Under attack (docs/reliability.md): one release camshard (--demo, 2 shards) and, in one run,
# a quiet legitimate load interleaved with the same load while each attack of camshard-abuse runs
# beside it. Legitimate load: 1,000 connections from 127.0.0.1, in-line viewer auth, closed loop,
# MIX (default ping=4,get_camera_list=1,get_server_info=1), 2 s warm-up + DUR (default 10) s
# measured. The attacker binds its sockets to 127.0.0.2 .. 127.0.0.5, so the server's per-address
# caps count it apart from the legitimate clients. The config raises max_connections_per_ip to
# 2000 (1,000 legitimate connections share 127.0.0.1; the default 256 would refuse most of them)
# and lowers auth_timeout_s to 5 so that anon-slots sees its sockets closed and reconnects within
# the phase; every other cap is the default. Each attack phase is compared with the quiet run just
# before it: req/s and p99 as ratios, legitimate failures (failed connections, error replies,
# timeouts, lost requests, disconnects), and the server's fds and RSS (/proc) at the phase's end.
# Goal: p99 ratio <= 2, req/s ratio >= 0.8, 0 failures, fds and RSS bounded.
# ATTACKS picks a subset. Output: bench/results/abuse-<date>/ (table.md, *.json, attack logs).
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${DUR:-10}
MIX=${MIX:-ping=4,get_camera_list=1,get_server_info=1}
PORT=${PORT:-8012}
ATTACKS=${ATTACKS:-many-keys big-filter anon-slots head-only slowloris-frames ping-flood batch-bomb sub-flood}
OUT=bench/results/abuse-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
cargo build --release -p camshard -p camshard-bench >/dev/null
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
wait_ready() { for _ in $(seq 200); do grep -q '"camshard ready"' "$1" && return 0; sleep 0.05; done; return 1; }
printf '[server]\nmax_connections_per_ip = 2000\nauth_timeout_s = 5\n[runtime]\nshards = 2\n[http.compat_listener]\nenabled = false\n' > "$TMP/abuse.toml"
CAMSHARD_LOG_FORMAT=json target/release/camshard --demo --listen 127.0.0.1:$PORT --config "$TMP/abuse.toml" \
  --state-dir "$TMP/state" --data-dir "$TMP/data" 2>"$TMP/cs.log" &
CS=$!
wait_ready "$TMP/cs.log"
TOKEN=$(target/release/camshard --demo token --role viewer --state-dir "$TMP/state" --config "$TMP/abuse.toml")
URL=ws://127.0.0.1:$PORT/ws
fds() { ls /proc/$CS/fd | wc -l; }
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$CS/status; }
legit() { # name
  target/release/camshard-bench run --url "$URL" -c 1000 --duration "$DUR" --warmup 2 --auth inline \
    --token "$TOKEN" --mix "$MIX" --server-pid $CS --json "$OUT/$1.json" > "$OUT/$1.txt" 2>&1 || true
}
# req/s, p99 (ms), failures of one run's JSON.
parse() {
  jq -r '[.req_per_sec, (.latency_us.p99 / 1000),
    (.connections_failed + ([.auth_failures[]] | add // 0) + ([.error_replies[]] | add // 0)
     + .timeouts + .requests_lost + ([.disconnects[]] | add // 0))] | @tsv' "$1"
}
echo "idle server: fds=$(fds) rss_mib=$(rss_mib)" | tee "$OUT/run.txt"
{
  echo "| attack | attacker replies served / rate-limited / other errors, connects / refused, its CPU | quiet req/s | req/s | ratio | quiet p99 ms | p99 ms | ratio | failures (quiet / attack) | fds | RSS MiB |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
} > "$OUT/table.md"
for a in $ATTACKS; do
  legit "quiet-$a"
  read -r QR QP QF < <(parse "$OUT/quiet-$a.json")
  echo "== $a (quiet: ${QR} req/s, p99 ${QP} ms, ${QF} failures; fds=$(fds) rss_mib=$(rss_mib))" | tee -a "$OUT/run.txt"
  # The attack runs 3 s before and until after the legitimate run (connect + warm-up + measured).
  target/release/camshard-abuse --url "$URL" --attack "$a" --duration $((DUR + 10)) --token "$TOKEN" \
    --sources 4 --threads 4 --sockets 2000 > "$OUT/attacker-$a.txt" 2>&1 &
  AT=$!
  sleep 3
  legit "attack-$a"
  F=$(fds) R=$(rss_mib)
  wait $AT || true
  read -r AR AP AF < <(parse "$OUT/attack-$a.json")
  ATT=$(grep '^{"attack"' "$OUT/attacker-$a.txt" \
    | jq -r '"\(.served) / \(.limited) / \(.errors) / \(.connects) / \(.refused), \(.cpu_s) s CPU"' 2>/dev/null | head -1)
  ATT=${ATT:-?}
  RR=$(awk -v a="$AR" -v q="$QR" 'BEGIN {printf "%.2f", a / q}')
  PR=$(awk -v a="$AP" -v q="$QP" 'BEGIN {printf "%.2f", a / q}')
  echo "   attack: ${AR} req/s (${RR}x), p99 ${AP} ms (${PR}x), ${AF} failures, end of phase fds=$F rss_mib=$R, attacker $ATT" \
    | tee -a "$OUT/run.txt"
  printf '| %s | %s | %.0f | %.0f | %s | %.2f | %.2f | %s | %s / %s | %s | %s |\n' \
    "$a" "$ATT" "$QR" "$AR" "$RR" "$QP" "$AP" "$PR" "$QF" "$AF" "$F" "$R" >> "$OUT/table.md"
  sleep 6 # the attacker's sockets are gone and anonymous ones timed out before the next quiet run
done
echo "after all phases: fds=$(fds) rss_mib=$(rss_mib)" | tee -a "$OUT/run.txt"
kill -TERM $CS; wait $CS || true
cat "$OUT/table.md"
echo "results in $OUT"
