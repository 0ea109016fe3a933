#!/usr/bin/env bash
# Reproduces the "Fleet (NATS)" figures of docs/benchmarks.md: one `nats-server -js` and three
# camshard release hosts (plus `off`, a twin of h0 without [fleet]), all started by
# camshard-fleet-bench itself. RUNS (default 2) whole runs back to back, to see the noise; extra
# arguments go to every run (e.g. --ab-rounds 6, --parts ab, --runtime epoll).
# Loopback only; a run takes under 3 minutes. Output: bench/results/fleet-<date>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-2}
OUT=bench/results/fleet-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || {
  echo "needs nats-server: apt-get install -y nats-server" >&2; exit 1; }
cargo build --release -p camshard -p camshard-bench >/dev/null
for i in $(seq "$RUNS"); do
  target/release/camshard-fleet-bench --json "$OUT/run$i.json" "$@" | tee "$OUT/run$i.md"
done
echo "results in $OUT"
