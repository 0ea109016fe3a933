#!/usr/bin/env bash
# Reproduces the camera figures of docs/benchmarks.md:
#   (1) event fan-out: one camera.connected event to N subscribed connections (delivery p50/p99);
#   (2) get_camera_list closed loop at 1,000 connections (--demo, 2 synthetic cameras);
#   (3) idle CPU of the server with 2 synthetic cameras, capture idle, over 60 s.
# Loopback only; every step is bounded in time. Output: bench/results/cameras-<date>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
FANOUT=${FANOUT:-10000}
DUR=${DUR:-10}
IDLE_S=${IDLE_S:-60}
OUT=bench/results/cameras-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
cargo build --release -p camshard -p camshard-bench >/dev/null
BIN=target/release
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT

wait_ready() { for _ in $(seq 200); do grep -q '"camshard ready"' "$1" && return 0; sleep 0.05; done; return 1; }

echo "== (1) fan-out of one camera event to $FANOUT connections"
mkdir -p "$TMP/dev" "$TMP/sys/class/video4linux" "$TMP/sys/devices/usb1/1-1/1-1:1.0"
cat > "$TMP/fan.toml" <<TOML
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
[cameras]
dev_root = "$TMP/dev"
sys_root = "$TMP/sys"
emulate_fixtures = true
TOML
"$BIN/camshard" --listen 127.0.0.1:8002 --config "$TMP/fan.toml" --state-dir "$TMP/state" --data-dir "$TMP/data" \
  2>"$TMP/fan.log" &
CS=$!
wait_ready "$TMP/fan.log"
TOKEN=$("$BIN/camshard" token --role viewer --state-dir "$TMP/state" --config "$TMP/fan.toml")
# The trigger plugs in a (fixture-described) camera: sysfs entry first, then the /dev node.
cat > "$TMP/plug.sh" <<SH
set -e
echo SER-FANOUT > "$TMP/sys/devices/usb1/1-1/serial"
mkdir -p "$TMP/sys/class/video4linux/video0"
ln -sfn "$TMP/sys/devices/usb1/1-1/1-1:1.0" "$TMP/sys/class/video4linux/video0/device"
echo '{"driver":"uvcvideo","card":"Fan-out Cam","bus_info":"usb-1","capture":true,"formats":[{"fourcc":"MJPG","sizes":[{"width":640,"height":480,"fps":[15]}]}]}' \
  > "$TMP/sys/class/video4linux/video0/camshard-fixture.json"
touch "$TMP/dev/video0"
SH
"$BIN/camshard-bench" fanout --url ws://127.0.0.1:8002/ws --connections "$FANOUT" --topics camera.connected \
  --token "$TOKEN" --duration 10 --trigger-cmd "sh $TMP/plug.sh" --json "$OUT/fanout.json" | tee "$OUT/fanout.txt"
kill -TERM $CS; wait $CS || true

echo "== (2) get_camera_list at 1,000 connections, and (3) idle CPU"
"$BIN/camshard" --demo --listen 127.0.0.1:8002 --state-dir "$TMP/demo-state" --data-dir "$TMP/demo-data" \
  2>"$TMP/demo.log" &
CS=$!
wait_ready "$TMP/demo.log"
TOKEN=$("$BIN/camshard" --demo token --role viewer --state-dir "$TMP/demo-state")
"$BIN/camshard-bench" run --url ws://127.0.0.1:8002/ws --connections 1000 --duration "$DUR" --warmup 2 \
  --mix get_camera_list=1 --auth authenticate --token "$TOKEN" --server-pid $CS --json "$OUT/camera-list.json" \
  | tee "$OUT/camera-list.txt"
sleep 5
ticks() { awk '{print $14+$15}' /proc/$CS/stat; }
T0=$(ticks); sleep "$IDLE_S"; T1=$(ticks)
HZ=$(getconf CLK_TCK)
awk -v a="$T0" -v b="$T1" -v hz="$HZ" -v s="$IDLE_S" \
  'BEGIN { printf "idle CPU over %ss: %.3f %% of one core\n", s, 100*(b-a)/hz/s }' | tee "$OUT/idle-cpu.txt"
kill -TERM $CS; wait $CS || true
echo "results in $OUT"
