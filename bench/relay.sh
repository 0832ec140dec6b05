#!/usr/bin/env bash
# The chat relay against its peers, in one run on this machine:
#   R1/R2  non-stream completions at 10 and 64 connections: direct to the mock upstream, through nginx
#          (proxy_pass with upstream keep-alive, the plain-proxy baseline), and through Lagoon (which also
#          authenticates, keeps a session and writes a usage row per request): p50/p99 and requests/s;
#          "lagoon-limited" is the same with a key that has RPM and TPM limits (never reached), so each
#          request also runs the rate-limit script in Redis and charges its real tokens afterwards.
#   R3     2,000 concurrent 2-second streams (20 chunks, 100 ms apart) through Lagoon with a pool of 4:
#          wall time vs the same streams direct to the mock (the ideal), Postgres connections open,
#          Postgres lease seconds per request.
# Lagoon and nginx get one worker each on CPU 0; the mock and the load client share CPU 1; Postgres and
# Redis float. Medians of REPS interleaved runs. Writes bench/results/relay-<date>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

REPS=${REPS:-3}
REQUESTS=${REQUESTS:-20000}
STREAMS=${STREAMS:-2000}

command -v nginx >/dev/null || { echo "installing nginx" >&2; apt-get install -y -q nginx-light >/dev/null; }
make -s build >/dev/null
cmake --build build --target lagoon-loadgen >/dev/null

ulimit -n 65536 2>/dev/null || true
bench_services pg+redis
mock_port=$(free_port)
nginx_port=$(free_port)
lagoon_port=$(free_port)

mock_key=$(openssl rand -hex 16)
taskset -c 1 build/lagoon-mock-upstream --listen "127.0.0.1:$mock_port" --api-key "$mock_key" >"$tmp/mock.log" 2>&1 &
pids+=("$!")

bench_nginx "$nginx_port" "$mock_port" "$mock_key"

export LAGOON_LOG_LEVEL=warn
export LAGOON_THREADS=1
export LAGOON_DB_POOL_SIZE=4
export LAGOON_MAX_CONNECTIONS=20000
export LAGOON_UPSTREAM_URL="http://127.0.0.1:$mock_port/api/v1"
export LAGOON_UPSTREAM_API_KEY="$mock_key"
export LAGOON_USAGE_DIR="$tmp/usage"
build/lagoon users create --name bench >/dev/null
key=$(build/lagoon keys create --user bench | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
limited_key=$(build/lagoon keys create --user bench --rpm 2000000000 --tpm 1000000000 |
  sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
LAGOON_LISTEN="127.0.0.1:$lagoon_port" taskset -c 0 build/lagoon serve >"$tmp/lagoon.log" 2>&1 &
lagoon_pid=$!
pids+=("$lagoon_pid")
cpu_ticks() { awk '{print $14 + $15}' "/proc/$lagoon_pid/stat"; }  # user + system, 1/100 s
for port in "$lagoon_port" "$nginx_port" "$mock_port"; do
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
done
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$lagoon_port/readyz" >/dev/null && break; sleep 0.1; done

body='{"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello"}]}'
load() {  # PORT CONNECTIONS REQUESTS KEY BODY
  taskset -c 1 build/lagoon-loadgen --port "$1" --path /api/v1/chat/completions --connections "$2" \
    --requests "$3" --key "$4" --body "$5" || true
}
# Warm-up: connections, the key, the session.
load "$lagoon_port" 10 2000 "$key" "$body" >/dev/null
load "$lagoon_port" 10 2000 "$limited_key" "$body" >/dev/null
load "$nginx_port" 10 2000 "x" "$body" >/dev/null
load "$mock_port" 10 2000 "$mock_key" "$body" >/dev/null

results=$tmp/results.jsonl
: >"$results"
for c in 10 64; do
  for rep in $(seq "$REPS"); do
    echo "{\"w\":\"direct\",\"c\":$c,\"r\":$(load "$mock_port" "$c" "$REQUESTS" "$mock_key" "$body")}" >>"$results"
    echo "{\"w\":\"nginx\",\"c\":$c,\"r\":$(load "$nginx_port" "$c" "$REQUESTS" "x" "$body")}" >>"$results"
    for w in lagoon lagoon-limited; do
      k=$key; [[ $w == lagoon-limited ]] && k=$limited_key
      t0=$(cpu_ticks)
      r=$(load "$lagoon_port" "$c" "$REQUESTS" "$k" "$body")
      echo "{\"w\":\"$w\",\"c\":$c,\"r\":$r,\"cpu_ticks\":$(( $(cpu_ticks) - t0 ))}" >>"$results"
    done
  done
done

stream_body='{"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello"}],"stream":true,"x_mock":{"chunks":20,"gap-ms":100}}'
for rep in $(seq "$REPS"); do
  echo "{\"w\":\"streams-direct\",\"c\":$STREAMS,\"r\":$(load "$mock_port" "$STREAMS" "$STREAMS" "$mock_key" "$stream_body")}" >>"$results"
  before=$(bench_lease_seconds "$lagoon_port")
  r=$(load "$lagoon_port" "$STREAMS" "$STREAMS" "$key" "$stream_body")
  after=$(bench_lease_seconds "$lagoon_port")
  open=$(bench_metric "$lagoon_port" lagoon_db_pool_open)
  echo "{\"w\":\"streams\",\"c\":$STREAMS,\"r\":$r,\"lease_seconds\":$(python3 -c "print($after - $before)"),\"pool_open\":${open:-0}}" >>"$results"
done

mkdir -p bench/results
out=bench/results/relay-$(date -u +%Y-%m-%d).md
python3 - "$results" "$STREAMS" >"$out" <<'PY'
import json, statistics, sys, subprocess
rows = [json.loads(l) for l in open(sys.argv[1])]
streams = int(sys.argv[2])
med = statistics.median
def runs(w, c): return [r["r"] for r in rows if r["w"] == w and r["c"] == c]
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
print("# Chat relay vs direct and nginx (bench/relay.sh)\n")
print(f"{cpu}; Lagoon and nginx: one worker on CPU 0; mock upstream and load client on CPU 1. "
      f"Non-stream completions, medians of {len(runs('direct', 10))} interleaved runs.\n")
print("| conns | path | p50 µs | p99 µs | req/s | p50 added vs direct | req/s vs nginx | Lagoon CPU µs/request |")
print("|---|---|---|---|---|---|---|---|")
for c in (10, 64):
    d50 = med([r["p50_us"] for r in runs("direct", c)])
    nr = med([r["rps"] for r in runs("nginx", c)])
    for w in ("direct", "nginx", "lagoon", "lagoon-limited"):
        if not runs(w, c): continue
        rs = runs(w, c)
        bad = sum(r["non2xx"] + r["errors"] for r in rs)
        p50, p99, rps = med([r["p50_us"] for r in rs]), med([r["p99_us"] for r in rs]), med([r["rps"] for r in rs])
        note = f" ({bad} failed!)" if bad else ""
        full = [r for r in rows if r["w"] == w and r["c"] == c and "cpu_ticks" in r]
        cpu = f"{med([r['cpu_ticks'] * 1e4 / r['r']['requests'] for r in full]):.1f}" if full else "–"
        print(f"| {c} | {w}{note} | {p50:.0f} | {p99:.0f} | {rps:,.0f} | {p50 - d50:+.0f} | {rps / nr:.2f}× | {cpu} |")
if runs("lagoon-limited", 10):
    parts = []
    for c in (10, 64):
        a, b = runs("lagoon", c), runs("lagoon-limited", c)
        parts.append(f"{med([r['rps'] for r in b]) / med([r['rps'] for r in a]):.2f}× the req/s and "
                     f"{med([r['p50_us'] for r in b]) - med([r['p50_us'] for r in a]):+.0f} µs p50 at {c} connections")
    print("\nA key with rate limits (one Redis script call per request, which also carries the previous "
          "request's real-token correction) vs one without: " + "; ".join(parts) + ". Redis is not pinned: on "
          "this 2-core machine its script runs on the same cores as Lagoon and the load client.")
st = [r for r in rows if r["w"] == "streams"]
sd = [r for r in rows if r["w"] == "streams-direct"]
if st:
    secs = [r["r"]["seconds"] for r in st]
    direct = med([r["r"]["seconds"] for r in sd])
    ok = [r["r"]["requests"] - r["r"]["non2xx"] for r in st]
    lease = [r["lease_seconds"] / streams for r in st]
    print(f"\n{streams:,} concurrent streams of 20 chunks 100 ms apart, pool of 4: through Lagoon all done in "
          f"**{med(secs):.2f} s** (min {min(secs):.2f}, max {max(secs):.2f}), direct to the mock {direct:.2f} s: "
          f"completions/s at {direct / med(secs) * 100:.0f} % of direct; {min(ok):,}–{max(ok):,} of {streams:,} "
          f"completed per run; "
          f"Postgres connections open: {max(r['pool_open'] for r in st):.0f}; "
          f"Postgres lease seconds per streamed request: {med(lease):.6f}.")
PY
cat "$out"
