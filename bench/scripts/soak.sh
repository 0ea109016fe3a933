#!/usr/bin/env bash
# Soak (issue 6): ~19,000 authenticated connections (the fd limit of one process here) for
# SOAK seconds (default 600) with an open-loop request mix that includes snapshots (each one a
# file write and a snapshot.taken event to the subscribers of the bench's connections), while RSS
# and the server's open file descriptors are sampled every 30 s. Flat RSS and no fd growth is the
# pass mark. Output: bench/results/soak-<date>/ (samples.csv, run.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
SOAK=${SOAK:-600}
CONNS=${CONNS:-19000}
RATE=${RATE:-2000}
OUT=bench/results/soak-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
cargo build --release -p camshard -p camshard-bench >/dev/null
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
wait_ready() { for _ in $(seq 200); do grep -q '"camshard ready"' "$1" && return 0; sleep 0.05; done; return 1; }
printf '[server]\nmax_connections = 19800\n[http.compat_listener]\nenabled = false\n[cameras]\nalways_on = true\n' > "$TMP/soak.toml"
target/release/camshard --demo --listen 127.0.0.1:8002 --config "$TMP/soak.toml" \
  --state-dir "$TMP/state" --data-dir "$TMP/data" 2>"$TMP/cs.log" &
CS=$!
wait_ready "$TMP/cs.log"
TOKEN=$(target/release/camshard --demo token --role operator --state-dir "$TMP/state" --config "$TMP/soak.toml")
sample() {
  echo "t_s,rss_kib,fds,threads" > "$OUT/samples.csv"
  local t=0
  while kill -0 $CS 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' /proc/$CS/status)
    fds=$(ls /proc/$CS/fd | wc -l)
    thr=$(awk '/Threads/ {print $2}' /proc/$CS/status)
    echo "$t,$rss,$fds,$thr" >> "$OUT/samples.csv"
    sleep 30; t=$((t + 30))
  done
}
sample &
target/release/camshard-bench run --url ws://127.0.0.1:8002/ws --connections "$CONNS" \
  --duration "$SOAK" --warmup 5 --rate "$RATE" \
  --mix 'ping=90,get_camera_list=6,get_camera_status=3,take_snapshot=1' \
  --params 'get_camera_status={"device":"camera0"}' --params 'take_snapshot={"device":"camera1"}' \
  --auth authenticate --token "$TOKEN" --server-pid $CS --json "$OUT/run.json" | tee "$OUT/run.txt"
sleep 31
# After the clients left: connections closed, descriptors back to the idle count.
echo "after clients left: fds=$(ls /proc/$CS/fd | wc -l) rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$CS/status)" | tee -a "$OUT/run.txt"
kill -TERM $CS; wait $CS || true
cat "$OUT/samples.csv"
echo "results in $OUT"
