#!/usr/bin/env bash
# What authentication costs, measured as ratios in one run on this machine:
#   A1  GET /healthz (no auth)                      vs
#   A2  GET /api/v1/key with a warm key (L1 hit)    vs
#   A3  GET /api/v1/key with L1 disabled (Redis hit on every request)
# over 1 connection (latency) and 32 connections (throughput; Lagoon's one reactor thread is then
# saturated, so 1/throughput is its CPU time per request), each REPS times interleaved, medians
# reported; then
#   A4  a cold-key storm: 10,000 distinct keys, each requested once, 64 connections, pool size 4,
#       L1 and Redis empty: auths/s and Postgres queries per key.
# Load comes from bench/loadgen.cpp (wrk cannot stop after an exact set of requests). Lagoon runs with
# 1 reactor thread pinned to CPU 0, the load client on CPU 1; Postgres and Redis float.
# Writes bench/results/auth-<date>.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

REPS=${REPS:-3}
SEQUENTIAL_REQUESTS=${SEQUENTIAL_REQUESTS:-20000}
PARALLEL_REQUESTS=${PARALLEL_REQUESTS:-200000}
STORM_KEYS=${STORM_KEYS:-10000}
make -s build >/dev/null
cmake --build build --target lagoon-loadgen >/dev/null

bench_services pg+redis
export LAGOON_LOG_LEVEL=warn
export LAGOON_THREADS=1
user_id=$(build/lagoon users create --name bench | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
warm_key=$(build/lagoon keys create --user bench | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
python3 bench/lib/make_keys.py "$STORM_KEYS" "$LAGOON_KEY_PEPPER" "$user_id" "$tmp/keys.txt" "$tmp/keys.copy"
as_pg "$PG_BIN/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres lagoon \
  -c "\\copy api_keys(user_id, prefix, digest) FROM '$tmp/keys.copy'"

# start_lagoon PORT [VAR=value…]: lagoon serve on CPU 0, waited for.
start_lagoon() {
  local port=$1
  shift
  env "$@" LAGOON_LISTEN="127.0.0.1:$port" LAGOON_USAGE_DIR="$tmp/usage-$port" taskset -c 0 build/lagoon serve >"$tmp/lagoon-$port.log" 2>&1 &
  pids+=("$!")
  LAST_PID=$!
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "lagoon on $port did not become ready" >&2; cat "$tmp/lagoon-$port.log" >&2; exit 1
}

# load PORT PATH CONNECTIONS REQUESTS [KEY]: one run of the load client on CPU 1; prints its JSON line.
load() {
  taskset -c 1 build/lagoon-loadgen --port "$1" --path "$2" --connections "$3" --requests "$4" ${5:+--key "$5"} || true
}

l1_port=$(free_port)
start_lagoon "$l1_port"
nol1_port=$(free_port)
start_lagoon "$nol1_port" LAGOON_AUTH_CACHE_SIZE=0

results=$tmp/results.jsonl
: >"$results"
for c in 1 32; do
  n=$([[ $c -eq 1 ]] && echo "$SEQUENTIAL_REQUESTS" || echo "$PARALLEL_REQUESTS")
  for rep in $(seq "$REPS"); do
    echo "{\"w\":\"A1\",\"c\":$c,\"r\":$(load "$l1_port" /healthz "$c" "$n")}" >>"$results"
    echo "{\"w\":\"A2\",\"c\":$c,\"r\":$(load "$l1_port" /api/v1/key "$c" "$n" "$warm_key")}" >>"$results"
    echo "{\"w\":\"A3\",\"c\":$c,\"r\":$(load "$nol1_port" /api/v1/key "$c" "$n" "$warm_key")}" >>"$results"
  done
done


# The storm: a fresh process (empty L1) and an empty Redis for each repetition.
kill "$LAST_PID" 2>/dev/null || true
for rep in $(seq "$REPS"); do
  redis-cli -p "$redis_port" FLUSHALL >/dev/null
  storm_port=$(free_port)
  start_lagoon "$storm_port"
  r=$(taskset -c 1 build/lagoon-loadgen --port "$storm_port" --path /api/v1/key --connections 64 \
        --keys-file "$tmp/keys.txt" || true)
  queries=$(bench_metric "$storm_port" 'lagoon_auth_lookups_total{layer="postgres",result="hit"}')
  ok=$(bench_metric "$storm_port" 'lagoon_auth_requests_total{outcome="ok"}')
  echo "{\"w\":\"A4\",\"c\":64,\"r\":$r,\"queries\":${queries:-0},\"ok\":${ok:-0}}" >>"$results"
  kill "$LAST_PID"
done

mkdir -p bench/results
out=bench/results/auth-$(date -u +%Y-%m-%d).md
python3 - "$results" "$STORM_KEYS" >"$out" <<'PY'
import json, statistics, sys, subprocess
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = int(sys.argv[2])
def runs(w, c): return [r["r"] for r in rows if r["w"] == w and r["c"] == c]
def med(xs): return statistics.median(xs)
def spread(xs, f="{:.1f}"): return f"{f.format(min(xs))}–{f.format(max(xs))}"
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
print("# Authentication cost (bench/auth.sh)\n")
print(f"{cpu}; Lagoon: 1 reactor thread on CPU 0, log level warn; load client on CPU 1. "
      f"Medians of {len(runs('A1', 1))} interleaved runs (min–max).\n")
print("| workload | 1 conn: p50 µs | 32 conns: req/s | CPU µs per request | added vs A1 |")
print("|---|---|---|---|---|")
base_cpu = med([1e6 / r["rps"] for r in runs("A1", 32)])
names = {"A1": "A1 /healthz, no auth", "A2": "A2 /api/v1/key, warm key (L1 hit)",
         "A3": "A3 /api/v1/key, L1 off (Redis hit)"}
for w in ("A1", "A2", "A3"):
    lat = [r["p50_us"] for r in runs(w, 1)]
    rps = [r["rps"] for r in runs(w, 32)]
    cpu_us = [1e6 / x for x in rps]
    bad = sum(r["non2xx"] + r["errors"] for r in runs(w, 1) + runs(w, 32))
    note = "" if bad == 0 else f" ({bad} failed requests!)"
    print(f"| {names[w]}{note} | {med(lat):.1f} ({spread(lat)}) | {med(rps):,.0f} ({spread(rps, '{:,.0f}')}) "
          f"| {med(cpu_us):.2f} | {med(cpu_us) - base_cpu:+.2f} µs |")
storm = [r for r in rows if r["w"] == "A4"]
if storm:
    aps = [r["r"]["requests"] / r["r"]["seconds"] for r in storm]
    q = [r["queries"] / keys for r in storm]
    ok = [r["ok"] for r in storm]
    print(f"\nA4 cold-key storm: {keys:,} distinct keys once each, 64 connections, pool 4, L1 and Redis empty: "
          f"**{med(aps):,.0f} auths/s** ({spread(aps, '{:,.0f}')}); Postgres queries per key {med(q):.3f}; "
          f"authenticated {min(ok):,.0f}–{max(ok):,.0f} of {keys:,} per run; "
          f"p50 {med([r['r']['p50_us'] for r in storm]) / 1000:.1f} ms, p99 {med([r['r']['p99_us'] for r in storm]) / 1000:.1f} ms.")
print("\nGoals (issue #3): an L1 hit adds ≤ 10 µs per request (A2 − A1 CPU, which also includes rendering "
      "the ~120-byte JSON answer); the cold storm ≥ 5,000 auths/s.")
PY
cat "$out"
