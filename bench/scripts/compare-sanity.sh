#!/usr/bin/env bash
# camshard vs camshard (the comparison's sanity check: ratios should sit near 1.0): starts two
# identical `camshard --demo` servers on 8002 and 9002 and runs bench/compare.sh against them.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p camshard -p camshard-bench >/dev/null
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
wait_ready() { for _ in $(seq 200); do grep -q '"camshard ready"' "$1" && return 0; sleep 0.05; done; return 1; }
printf '[server]\nmax_connections = 19800\n[http.compat_listener]\nenabled = false\n' > "$TMP/cs.toml"
for port in 8002 9002; do
  target/release/camshard --demo --listen 127.0.0.1:$port --config "$TMP/cs.toml" \
    --state-dir "$TMP/s$port" --data-dir "$TMP/d$port" 2>"$TMP/cs$port.log" &
  echo $! > "$TMP/pid$port"
  wait_ready "$TMP/cs$port.log"
done
tok() { target/release/camshard --demo token --role viewer --state-dir "$TMP/s$1" --config "$TMP/cs.toml"; }
TOKEN_A=$(tok 8002) TOKEN_B=$(tok 9002) PID_A=$(cat "$TMP/pid8002") PID_B=$(cat "$TMP/pid9002") \
  LABEL_A=camshard LABEL_B=camshard LABEL="camshard vs camshard (sanity)" \
  bench/compare.sh ws://127.0.0.1:8002/ws ws://127.0.0.1:9002/ws
