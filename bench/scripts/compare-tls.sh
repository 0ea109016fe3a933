#!/usr/bin/env bash
# What TLS costs: camshard with plain ws:// (A, port 8002) vs the same binary with `[server.tls]`
# on (B, port 9002, wss://, a self-signed P-256 certificate), three interleaved rounds per ladder
# step (ROUNDS); the table gives the median A/B ratios.
exec env TLS_B=1 LABEL_A=plain LABEL_B=tls ROUNDS="${ROUNDS:-3}" \
  LABEL="camshard plain vs camshard with TLS" "$(dirname "$0")/compare-camshard.sh"
