#!/usr/bin/env bash
# bench/mallocs.sh: heap allocations per request, by thread — the figure issue 21 drives toward zero. One
# Lagoon (LAGOON_THREADS=1) under bench/lib/malloc_count.c (LD_PRELOAD: counts, then calls glibc), a warm
# key without limits, workload P2 (non-stream chat, CONNECTIONS (64) connections, REQUESTS (20000)
# requests); the counters are read before and after the run (SIGUSR2) once the usage rows are flushed,
# and each thread's difference divided by the requests. Prints one Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

REQUESTS=${REQUESTS:-20000} CONNECTIONS=${CONNECTIONS:-64}
cmake --build build --target lagoon lagoon-mock-upstream lagoon-loadgen >/dev/null
ulimit -n 65536 2>/dev/null || true
PG_FSYNC=on bench_services pg+redis
bench_mock_and_env

shim=$tmp/malloc_count.so
cc -O2 -shared -fPIC -ftls-model=initial-exec -o "$shim" bench/lib/malloc_count.c
key=$(build/lagoon keys create --user bench | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
port=$(free_port)
counts=$tmp/counts
LAGOON_THREADS=1 LAGOON_LISTEN="127.0.0.1:$port" LAGOON_USAGE_DIR="$tmp/usage" MALLOC_COUNT_OUT="$counts" \
  LD_PRELOAD="$shim" build/lagoon serve >"$tmp/lagoon.log" 2>&1 &
pid=$!
pids+=("$pid")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

body='{"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello"}]}'
load() {
  build/lagoon-loadgen --port "$port" --connections "$CONNECTIONS" --requests "$1" \
    --path /api/v1/chat/completions --key "$key" --body "$body" >/dev/null
}
snapshot() {  # waits until the usage rows are written, then asks the shim for its counters
  local rows
  for _ in $(seq 100); do
    rows=$(bench_metric "$port" lagoon_usage_queue_depth)
    [[ ${rows:-0} == 0 ]] && break
    sleep 0.1
  done
  sleep 0.5
  kill -USR2 "$pid"
  sleep 0.2
}
load 2000
snapshot
load "$REQUESTS"
snapshot

python3 - "$counts" "$REQUESTS" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
snaps, cur = [], {}
for line in open(path):
    line = line.strip()
    if line == "--":
        snaps.append(cur); cur = {}
        continue
    tid, name, allocs, frees = line.split()
    cur[tid] = (name, int(allocs), int(frees))
a, b = snaps[-2], snaps[-1]
rows, total = [], 0
for tid, (name, allocs, frees) in b.items():
    pa, pf = a.get(tid, (name, 0, 0))[1:]
    da = allocs - pa
    if da == 0:
        continue
    rows.append((name, tid, da / n, (frees - pf) / n))
    total += da
rows.sort(key=lambda r: -r[2])
print(f"| thread | tid | allocations / request | frees / request |")
print("|---|---|---|---|")
for name, tid, a_, f_ in rows:
    print(f"| {name} | {tid} | {a_:.2f} | {f_:.2f} |")
print(f"| **all** | | **{total / n:.2f}** | |")
PY
