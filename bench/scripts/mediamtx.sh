#!/usr/bin/env bash
# Reproduces the MediaMTX figures of docs/benchmarks.md, against the in-repo MediaMTX test double
# (tests/mediamtx-double) on loopback:
#   (1) MediaMTX API calls per minute at idle (2 demo cameras, no client): only the health probe,
#       one request every 5 s (every 12th of them is the safety-net path list);
#   (2) get_stream_status at 1,000 connections (each call reads the live path from the double),
#       with ping at 1,000 connections in the same run as the reference;
#   (3) publisher CPU per camera at 640x480/15 fps (ffmpeg libx264 ultrafast), and what feeding
#       it costs the server.
# Output: bench/results/mediamtx-<date>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${DUR:-10}
IDLE=${IDLE:-60}
OUT=bench/results/mediamtx-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
cargo build --release -p camshard -p camshard-bench -p mediamtx-double >/dev/null
BIN=target/release
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
wait_ready() { for _ in $(seq 200); do grep -q '"camshard ready"' "$1" && return 0; sleep 0.05; done; return 1; }
metric() { curl -s http://127.0.0.1:8002/metrics | awk -v m="$1" '$1==m {print $2}'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# The double: API on 19997, RTSP on 18554; stdin held open by a sleeping pipe.
mkfifo "$TMP/hold"
"$BIN/mediamtx-double" --api 127.0.0.1:19997 --rtsp 127.0.0.1:18554 <"$TMP/hold" >"$TMP/double.out" &
exec 3>"$TMP/hold"
sleep 0.3
cat > "$TMP/mtx.toml" <<TOML
[http.compat_listener]
enabled = false
[mediamtx]
enabled = true
api_url = "http://127.0.0.1:19997"
rtsp_publish_url = "rtsp://127.0.0.1:18554"
[streaming]
publish = "on_request"
TOML
"$BIN/camshard" --demo --listen 127.0.0.1:8002 --config "$TMP/mtx.toml" --state-dir "$TMP/state" \
  --data-dir "$TMP/data" 2>"$TMP/cs.log" &
CS=$!
wait_ready "$TMP/cs.log"
TOKEN=$("$BIN/camshard" --demo token --role operator --state-dir "$TMP/state" --config "$TMP/mtx.toml")

echo "== (1) API calls at idle over ${IDLE}s (after 5 s of start-up reconciliation)"
sleep 5
a=$(metric camshard_mediamtx_requests_total)
sleep "$IDLE"
b=$(metric camshard_mediamtx_requests_total)
echo "requests in ${IDLE}s: $((b - a)) => $(( (b - a) * 60 / IDLE )) per minute" | tee "$OUT/idle-calls.txt"

echo "== (2) get_stream_status vs ping at 1,000 connections"
for m in ping get_stream_status; do
  "$BIN/camshard-bench" run --url ws://127.0.0.1:8002/ws --connections 1000 --duration "$DUR" --warmup 2 \
    --mix $m=1 --params 'get_stream_status={"device":"camera0"}' --auth authenticate --token "$TOKEN" \
    --server-pid $CS --json "$OUT/$m-1000.json" | tee "$OUT/$m-1000.txt"
done

echo "== (3) publisher CPU, camera0 640x480/15 fps"
"$BIN/camshard-bench" sequence --url ws://127.0.0.1:8002/ws --token "$TOKEN" --rounds 1 \
  --step 'start_streaming={"device":"camera0"}' | tee "$OUT/start-streaming.txt"
sleep 3
PUB=$(pgrep -f 'rtsp://127.0.0.1:18554/camera0' | head -1)
HZ=$(getconf CLK_TCK)
p0=$(cpu_ticks "$PUB"); c0=$(cpu_ticks "$CS"); sleep 20; p1=$(cpu_ticks "$PUB"); c1=$(cpu_ticks "$CS")
{
  echo "publisher ffmpeg: $(( (p1 - p0) * 100 / (20 * HZ) ))% of a core"
  echo "camshard (capture + JPEG + feeding, 2 cameras capturing): $(( (c1 - c0) * 100 / (20 * HZ) ))% of a core"
} | tee "$OUT/publisher-cpu.txt"
kill -TERM $CS; wait $CS || true
exec 3>&-
echo "results in $OUT"
