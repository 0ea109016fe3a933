#!/usr/bin/env bash
# Two camshard servers side by side: the same release binary started as `camshard --demo` on
# 8002 (A, `--runtime $RUNTIME_A`) and 9002 (B, `--runtime $RUNTIME_B`), then bench/compare.sh
# over the connection ladder. TLS_B=1 serves B over TLS (`[server.tls]` with a throwaway
# self-signed P-256 certificate from openssl; B's URL becomes wss://). LABEL_A / LABEL_B / LABEL
# name them in the table; ROUNDS, MIX, LADDER, DUR and OUT pass through to bench/compare.sh.
# BIN_A / BIN_B run other builds (default: this checkout's release binary), for before/after runs.
#
#   RUNTIME_A=uring RUNTIME_B=epoll bench/scripts/compare-camshard.sh
#   TLS_B=1 bench/scripts/compare-camshard.sh
#   BIN_A=/tmp/old/target/release/camshard LABEL_A=before LABEL_B=after bench/scripts/compare-camshard.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNTIME_A=${RUNTIME_A:-auto} RUNTIME_B=${RUNTIME_B:-auto} TLS_B=${TLS_B:-0}
BIN_A=${BIN_A:-target/release/camshard} BIN_B=${BIN_B:-target/release/camshard}
cargo build --release -p camshard -p camshard-bench >/dev/null
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
wait_ready() { for _ in $(seq 200); do grep -q '"camshard ready"' "$1" && return 0; sleep 0.05; done; return 1; }
# One loopback load generator: per-address/head-stage caps off, a long authentication deadline.
printf '[server]\nmax_connections = 19800\nmax_connections_per_ip = 0\nmax_handshakes_per_ip = 0\nmax_handshakes_per_shard = 20000\nauth_timeout_s = 3600\n[http.compat_listener]\nenabled = false\n' > "$TMP/cs8002.toml"
cp "$TMP/cs8002.toml" "$TMP/cs9002.toml"
SCHEME_B=ws
if [ "$TLS_B" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
  printf '[server.tls]\nenabled = true\ncert_path = "%s"\nkey_path = "%s"\n' "$TMP/cert.pem" "$TMP/key.pem" \
    >> "$TMP/cs9002.toml"
  SCHEME_B=wss
fi
start() { # port runtime binary
  CAMSHARD_LOG_FORMAT=json "$3" --demo --runtime "$2" --listen 127.0.0.1:$1 \
    --config "$TMP/cs$1.toml" --state-dir "$TMP/s$1" --data-dir "$TMP/d$1" 2>"$TMP/cs$1.log" &
  echo $! > "$TMP/pid$1"
  wait_ready "$TMP/cs$1.log"
  echo "port $1: $(grep -o '"runtime":"[a-z]*"' "$TMP/cs$1.log" | tail -1)"
}
start 8002 "$RUNTIME_A" "$BIN_A"
start 9002 "$RUNTIME_B" "$BIN_B"
tok() { target/release/camshard --demo token --role viewer --state-dir "$TMP/s$1" --config "$TMP/cs$1.toml"; }
TOKEN_A=$(tok 8002) TOKEN_B=$(tok 9002) PID_A=$(cat "$TMP/pid8002") PID_B=$(cat "$TMP/pid9002") \
  LABEL_A=${LABEL_A:-camshard} LABEL_B=${LABEL_B:-camshard} \
  bench/compare.sh ws://127.0.0.1:8002/ws "$SCHEME_B://127.0.0.1:9002/ws"
