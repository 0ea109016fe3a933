#!/usr/bin/env bash
# Reproduces the snapshot and recording figures of docs/benchmarks.md:
#   (1) take_snapshot latency on a warm camera at 1 and 50 concurrent requesters (closed loop);
#   (2) take_snapshot from a cold camera (capture stopped after 1 s idle; a request every 2.5 s);
#   (3) start_recording / stop_recording reply latency (2 s recordings, fmp4 and mp4) — once the
#       recorder lands; set RECORDING=1 to include it.
# Loopback only; every step is bounded in time. Output: bench/results/media-<date>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${DUR:-10}
ROUNDS=${ROUNDS:-10}
OUT=bench/results/media-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
cargo build --release -p camshard -p camshard-bench >/dev/null
BIN=target/release
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
wait_ready() { for _ in $(seq 200); do grep -q '"camshard ready"' "$1" && return 0; sleep 0.05; done; return 1; }
cat > "$TMP/media.toml" <<TOML
[http.compat_listener]
enabled = false
[cameras]
idle_stop_s = 1
TOML
"$BIN/camshard" --demo --listen 127.0.0.1:8002 --config "$TMP/media.toml" --state-dir "$TMP/state" \
  --data-dir "$TMP/data" 2>"$TMP/cs.log" &
CS=$!
wait_ready "$TMP/cs.log"
TOKEN=$("$BIN/camshard" --demo token --role operator --state-dir "$TMP/state" --config "$TMP/media.toml")
SNAP='take_snapshot={"device":"camera0"}'

echo "== (2) cold camera (capture idle-stopped before each request)"
"$BIN/camshard-bench" sequence --url ws://127.0.0.1:8002/ws --token "$TOKEN" --rounds "$ROUNDS" \
  --step "$SNAP" --step sleep=2.5 --json "$OUT/snapshot-cold.json" | tee "$OUT/snapshot-cold.txt"

echo "== (1) warm camera, 1 and 50 requesters"
for c in 1 50; do
  RATE=""; [ $c = 1 ] && RATE="--rate 500"  # one connection: stay under its 1000/s rate limit
  "$BIN/camshard-bench" run --url ws://127.0.0.1:8002/ws --connections $c --duration "$DUR" --warmup 2 $RATE \
    --mix take_snapshot=1 --params 'take_snapshot={"device":"camera0"}' --auth authenticate --token "$TOKEN" \
    --server-pid $CS --json "$OUT/snapshot-warm-$c.json" | tee "$OUT/snapshot-warm-$c.txt"
done

if [ "${RECORDING:-0}" = 1 ]; then
echo "== (3) recording start/stop"
for f in fmp4 mp4; do
  "$BIN/camshard-bench" sequence --url ws://127.0.0.1:8002/ws --token "$TOKEN" --rounds "$ROUNDS" \
    --step "start_recording={\"device\":\"camera1\",\"format\":\"$f\"}" --step sleep=2 \
    --step 'stop_recording={"device":"camera1"}' --json "$OUT/recording-$f.json" | tee "$OUT/recording-$f.txt"
done
fi
kill -TERM $CS; wait $CS || true
echo "results in $OUT"
