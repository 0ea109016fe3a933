#!/usr/bin/env bash
# Reproduces the foundation figures of docs/benchmarks.md on this machine:
#   (a) ping closed-loop at 100, 1,000 and 10,000 connections against camshard;
#   (b) idle authenticated connections held 60 s, server RSS and bytes per connection;
#   (c) camshard vs the tokio-tungstenite baseline at 500 and ~19,000 connections (A B A B rounds);
#   plus start-up time to ready with --demo.
# Loopback only; every step is bounded in time. Output: bench/results/foundation-<date>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-10}
IDLE_CONNS=${IDLE_CONNS:-19000}
HOLD=${HOLD:-60}
OUT=bench/results/foundation-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
cargo build --release -p camshard -p camshard-bench >/dev/null
BIN=target/release
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
cat > "$TMP/cs.toml" <<TOML
[server]
max_connections = 19800
# One loopback load generator: the per-address and head-stage caps and the authentication
# deadline (anonymous or in-line connections idle through the ramp) would cut it.
max_connections_per_ip = 0
max_handshakes_per_ip = 0
max_handshakes_per_shard = 20000
auth_timeout_s = 3600
[http.compat_listener]
enabled = false
TOML

start_camshard() {
  "$BIN/camshard" --listen 127.0.0.1:8002 --config "$TMP/cs.toml" --state-dir "$TMP/state" \
    --data-dir "$TMP/data" 2>"$TMP/cs.log" &
  CS=$!
  for _ in $(seq 100); do grep -q '"camshard ready"' "$TMP/cs.log" && break; sleep 0.05; done
}
stop_camshard() { kill -TERM "$CS"; wait "$CS" || true; }

echo "== start-up to ready with --demo (5 runs)" | tee "$OUT/startup.txt"
for i in 1 2 3 4 5; do
  "$BIN/camshard" --demo --listen 127.0.0.1:0 --state-dir "$TMP/demo-state" --data-dir "$TMP/demo-data" \
    2>"$TMP/demo.log" &
  P=$!
  for _ in $(seq 200); do grep -q '"camshard ready"' "$TMP/demo.log" && break; sleep 0.01; done
  grep -o '"startup_ms":[0-9]*' "$TMP/demo.log" | tee -a "$OUT/startup.txt"
  kill -TERM $P; wait $P || true
done

echo "== (a) ping closed loop"
start_camshard
for c in 100 1000 10000; do
  "$BIN/camshard-bench" run --url ws://127.0.0.1:8002/ws --connections $c --duration "$DUR" --warmup 2 \
    --server-pid "$CS" --json "$OUT/ping-$c.json" | tee "$OUT/ping-$c.txt"
done
stop_camshard

echo "== (b) idle authenticated connections, fresh server"
start_camshard
TOKEN=$("$BIN/camshard" token --role viewer --state-dir "$TMP/state")
"$BIN/camshard-bench" run --url ws://127.0.0.1:8002/ws --connections "$IDLE_CONNS" --duration 0 --hold "$HOLD" \
  --auth authenticate --token "$TOKEN" --server-pid "$CS" --json "$OUT/idle.json" | tee "$OUT/idle.txt"
stop_camshard

echo "== (c) camshard vs tokio-tungstenite"
start_camshard
"$BIN/bench-tokio-ping" --listen 127.0.0.1:9002 --threads 2 >/dev/null 2>&1 &
TP=$!
sleep 0.5
"$BIN/camshard-bench" compare --a-url ws://127.0.0.1:8002/ws --a-pid "$CS" \
  --b-url ws://127.0.0.1:9002/ws --b-pid "$TP" --ladder 500,19000 --rounds "$ROUNDS" \
  --duration "$DUR" --warmup 2 --mix ping=1 --label-a camshard --label-b tokio \
  --markdown "$OUT/compare.md" --json "$OUT/compare.json" | tee "$OUT/compare.txt"
kill "$TP"; stop_camshard
echo "results in $OUT"
