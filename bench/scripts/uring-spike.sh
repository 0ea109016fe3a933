#!/usr/bin/env bash
# The io_uring socket-path spike of issue 17 (docs/benchmarks.md, "io_uring socket path: the
# spike"): camshard-uring-spike serving the same minimal WebSocket JSON-RPC ping four ways, each
# a one-shard process pinned to SERVER_CPU, against camshard-bench pinned to CLIENT_CPU:
#
#   a  glommio's own TcpStream (today's io_uring backend)
#   b  tokio current_thread over mio (today's epoll backend)
#   c  glommio + a second ring (COOP_TASKRUN, multishot accept/recv, provided buffers, batched
#      sends), idle wait on the ring's eventfd read through glommio — the design of issue 17
#   d  the same ring with DEFER_TASKRUN, idle wait in its own io_uring_enter: glommio is
#      starved while it waits, so not a design — the ceiling of the socket path alone
#
# Closed loop, interleaved a b c d at every step, ROUNDS rounds; prints per-run lines and a
# Markdown table of medians with ratios to b. Then idle CPU and RSS per idle connection.
#
#   bench/scripts/uring-spike.sh                       # LADDER=500,5000 ROUNDS=3 DUR=5
#   LADDER=500 ROUNDS=1 DUR=3 bench/scripts/uring-spike.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
LADDER=${LADDER:-500,5000} ROUNDS=${ROUNDS:-3} DUR=${DUR:-5} WARMUP=${WARMUP:-2}
SERVER_CPU=${SERVER_CPU:-0} CLIENT_CPU=${CLIENT_CPU:-1} IDLE_CONNS=${IDLE_CONNS:-5000}
SERVERS=${SERVERS:-a b c d}
cargo build --release -p camshard-bench >/dev/null
ulimit -n "$(ulimit -Hn)"
# Several glommio processes at once: their registered io memory counts against memlock.
ulimit -l unlimited 2>/dev/null || ulimit -l "$(ulimit -Hl)"
SPIKE=target/release/camshard-uring-spike BENCH=target/release/camshard-bench
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT

declare -A PORT=([a]=9101 [b]=9102 [c]=9103 [d]=9104)
declare -A ARGS=([a]="--mode glommio" [b]="--mode epoll" [c]="--mode ring --setup coop --idle glommio"
                 [d]="--mode ring --setup defer --idle ring")
declare -A PID
for s in $SERVERS; do
  # SO_REUSEPORT would silently share the port with a leftover server and halve what we see.
  if ss -Hltn "sport = :${PORT[$s]}" | grep -q .; then echo "port ${PORT[$s]} is in use" >&2; exit 1; fi
  # shellcheck disable=SC2086
  $SPIKE ${ARGS[$s]} --cpu "$SERVER_CPU" --listen "127.0.0.1:${PORT[$s]}" >"$TMP/$s.log" 2>&1 &
  PID[$s]=$!
done
sleep 1
for s in $SERVERS; do echo "$s: $(tr '\n' ' ' < "$TMP/$s.log")"; done

run() { # server conns out.json [extra args]
  local s=$1 c=$2 out=$3; shift 3
  taskset -c "$CLIENT_CPU" $BENCH run --url "ws://127.0.0.1:${PORT[$s]}/ws" -c "$c" --threads 1 \
    --procs 1 --connect-rate 5000 --server-pid "${PID[$s]}" --json "$out" "$@" >/dev/null 2>&1 || true
}

# Idle, first (while the servers are fresh: memory freed after a load run stays in the
# allocator and would hide the cost of new connections): CPU with no connection, then RSS per
# connection and CPU with IDLE_CONNS idle ones.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for s in $SERVERS; do
  t0=$(ticks "${PID[$s]}"); sleep 5; t1=$(ticks "${PID[$s]}")
  run "$s" "$IDLE_CONNS" "$TMP/idle-$s.json" --duration 0 --hold 12 &
  sleep 8; t2=$(ticks "${PID[$s]}"); sleep 4; t3=$(ticks "${PID[$s]}")
  wait $!
  python3 - "$TMP/idle-$s.json" "$s" "$((t1 - t0))" "$((t3 - t2))" <<'EOF' || echo "idle $s: no result"
import json, sys
j = json.load(open(sys.argv[1]))
b = j.get("bytes_per_connection")
print(f"idle {sys.argv[2]}: {sys.argv[3]} ticks/5 s with no connection, {sys.argv[4]} ticks/4 s "
      f"with {j['connections_ok']} idle connections; RSS per idle connection "
      f"{(b or 0) / 1024:.2f} KiB")
EOF
done


IFS=, read -ra STEPS <<< "$LADDER"
for r in $(seq "$ROUNDS"); do
  for c in "${STEPS[@]}"; do
    for s in $SERVERS; do
      run "$s" "$c" "$TMP/load-$c-$s-$r.json" --duration "$DUR" --warmup "$WARMUP"
      python3 - "$TMP/load-$c-$s-$r.json" "$s" "$c" "$r" <<'EOF' || echo "round $r conns $c $s: no result"
import json, sys
j = json.load(open(sys.argv[1])); srv = j.get("server") or {}
cpu = (srv.get("cpu_percent") or 0) / 100
rps = j["req_per_sec"]
print(f"round {sys.argv[4]} conns {sys.argv[3]:>5} {sys.argv[2]}: {rps:9.0f} req/s  "
      f"p99 {j['latency_us']['p99']:6d} µs  cpu {cpu*100:5.1f}%  "
      f"{(cpu / rps * 1e6 if rps else 0):5.2f} µs/req  ok {j['connections_ok']}")
EOF
      sleep 1
    done
  done
done

python3 - "$TMP" "$LADDER" "$SERVERS" <<'EOF'
import glob, json, statistics as st, sys
tmp, ladder, servers = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split()
print("\n| conns | server | req/s | p99 µs | server CPU µs/req | req/s ÷ b | CPU/req ÷ b |")
print("|---:|---|---:|---:|---:|---:|---:|")
for c in ladder:
    med = {}
    for s in servers:
        runs = [json.load(open(f)) for f in sorted(glob.glob(f"{tmp}/load-{c}-{s}-*.json"))]
        runs = [j for j in runs if j["req_per_sec"]]
        if not runs:
            continue
        rps = [j["req_per_sec"] for j in runs]
        cpr = [((j.get("server") or {}).get("cpu_percent") or 0) / 100 / j["req_per_sec"] * 1e6
               for j in runs if j["req_per_sec"]]
        p99 = [j["latency_us"]["p99"] for j in runs]
        med[s] = (st.median(rps), st.median(p99), st.median(cpr) if cpr else 0)
    for s in med:
        rps, p99, cpr = med[s]
        rb = med.get("b")
        ratio = f"{rps / rb[0]:.2f}" if rb and rb[0] else "-"
        cratio = f"{cpr / rb[2]:.2f}" if rb and rb[2] else "-"
        print(f"| {int(c):,} | {s} | {rps:,.0f} | {p99:,} | {cpr:.2f} | {ratio} | {cratio} |")
EOF
for s in $SERVERS; do kill -0 "${PID[$s]}" 2>/dev/null || echo "server $s died: $(cat "$TMP/$s.log")"; done
