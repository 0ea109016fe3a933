#!/usr/bin/env bash
# Soak (issue 6): ~19,000 authenticated connections (the fd limit of one process here) for
# SOAK seconds (default 600) with an open-loop request mix that includes snapshots (each one a
# file write and a snapshot.taken event to the subscribers of the bench's connections), while RSS
# and the server's open file descriptors are sampled every 30 s. Flat RSS and no fd growth is the
# pass mark. Camera events come from a third camera that the script unplugs and replugs every
# PLUG_S seconds (default 20): discovery watches a fake /dev and /sys (fixture files stand in for
# the V4L2 ioctls, as in the tests), and the mix's subscribe_events calls put the connections that
# make one on the camera topics, so each plug change fans out to thousands of them. RUNTIME (auto,
# uring, epoll; default auto) picks the server's backend. ROUNDS (default 1) runs the whole client
# load that many times against the same server, one after the other: memory that is only at its
# high-water mark is reused by the next round, memory that leaks grows again. Output:
# bench/results/soak-<date>/ (samples.csv, run.txt, run-<round>.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
SOAK=${SOAK:-600}
CONNS=${CONNS:-19000}
RATE=${RATE:-2000}
RUNTIME=${RUNTIME:-auto}
PLUG_S=${PLUG_S:-20}
ROUNDS=${ROUNDS:-1}
OUT=bench/results/soak-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
cargo build --release -p camshard -p camshard-bench >/dev/null
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
wait_ready() { for _ in $(seq 200); do grep -q '"camshard ready"' "$1" && return 0; sleep 0.05; done; return 1; }
# The pluggable camera: a USB device in the fake sysfs, its class entry with a fixture, its node.
USB=$TMP/sys/devices/usb1/1-1
CLASS=$TMP/sys/class/video4linux/video0
mkdir -p "$USB/1-1:1.0" "$TMP/dev"
echo SOAK-PLUG-1 > "$USB/serial"
plug() {
  mkdir -p "$CLASS"
  ln -sfn "$USB/1-1:1.0" "$CLASS/device"
  echo '{"driver":"uvcvideo","card":"Soak Plug Cam","bus_info":"usb-1","capture":true,"formats":[{"fourcc":"MJPG","sizes":[{"width":320,"height":240,"fps":[15]}]}]}' \
    > "$CLASS/camshard-fixture.json"
  : > "$TMP/dev/video0"
}
unplug() { rm -f "$TMP/dev/video0"; rm -rf "$CLASS"; }
plug
# One loopback load generator: per-address/head-stage caps off, a long authentication deadline.
printf '[server]\nmax_connections = 19800\nmax_connections_per_ip = 0\nmax_handshakes_per_ip = 0\nmax_handshakes_per_shard = 20000\nauth_timeout_s = 3600\n[http.compat_listener]\nenabled = false\n[cameras]\nalways_on = true\ndev_root = "%s"\nsys_root = "%s"\nemulate_fixtures = true\n' \
  "$TMP/dev" "$TMP/sys" > "$TMP/soak.toml"
target/release/camshard --demo --runtime "$RUNTIME" --listen 127.0.0.1:8002 --config "$TMP/soak.toml" \
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
plugger() {
  local n=0
  while kill -0 $CS 2>/dev/null; do
    sleep "$PLUG_S"
    if [ $((n % 2)) -eq 0 ]; then unplug; else plug; fi
    n=$((n + 1))
  done
}
plugger &
for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS" | tee -a "$OUT/run.txt"
  target/release/camshard-bench run --url ws://127.0.0.1:8002/ws --connections "$CONNS" \
    --duration "$SOAK" --warmup 5 --rate "$RATE" \
    --mix 'ping=89,get_camera_list=6,get_camera_status=3,take_snapshot=1,subscribe_events=1' \
    --params 'subscribe_events={"topics":["camera.connected","camera.disconnected","camera.status_change"]}' \
    --params 'get_camera_status={"device":"camera0"}' --params 'take_snapshot={"device":"camera1"}' \
    --auth authenticate --token "$TOKEN" --server-pid $CS --json "$OUT/run-$round.json" | tee -a "$OUT/run.txt"
  sleep 31
  # After the clients left: connections closed, descriptors back to the idle count.
  echo "after clients left (round $round): fds=$(ls /proc/$CS/fd | wc -l) rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$CS/status)" | tee -a "$OUT/run.txt"
done
kill -TERM $CS; wait $CS || true
cat "$OUT/samples.csv"
echo "results in $OUT"
