#!/usr/bin/env bash
# camshard on io_uring (A, port 8002) vs camshard on epoll (B, port 9002): the same release
# binary started twice with `--runtime uring` and `--runtime epoll`, then bench/compare.sh over
# the connection ladder. ROUNDS (default 3) interleaves A and B at every step; the table gives
# the median B/A ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p camshard -p camshard-bench >/dev/null
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
wait_ready() { for _ in $(seq 200); do grep -q '"camshard ready"' "$1" && return 0; sleep 0.05; done; return 1; }
printf '[server]\nmax_connections = 19800\n[http.compat_listener]\nenabled = false\n' > "$TMP/cs.toml"
start() { # port runtime
  CAMSHARD_LOG_FORMAT=json target/release/camshard --demo --runtime "$2" --listen 127.0.0.1:$1 \
    --config "$TMP/cs.toml" --state-dir "$TMP/s$1" --data-dir "$TMP/d$1" 2>"$TMP/cs$1.log" &
  echo $! > "$TMP/pid$1"
  wait_ready "$TMP/cs$1.log"
  grep -o '"runtime":"[a-z]*"' "$TMP/cs$1.log" | tail -1
}
start 8002 uring
start 9002 epoll
tok() { target/release/camshard --demo token --role viewer --state-dir "$TMP/s$1" --config "$TMP/cs.toml"; }
TOKEN_A=$(tok 8002) TOKEN_B=$(tok 9002) PID_A=$(cat "$TMP/pid8002") PID_B=$(cat "$TMP/pid9002") \
  LABEL_A=io_uring LABEL_B=epoll LABEL="camshard on io_uring vs camshard on epoll" ROUNDS=${ROUNDS:-3} \
  bench/compare.sh ws://127.0.0.1:8002/ws ws://127.0.0.1:9002/ws
