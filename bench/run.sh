#!/usr/bin/env bash
# `make bench`: Lagoon beside its peers on this machine, in one run, as ratios (issues #8 and #21).
#   bench/proxy.sh first: P1/P2 against a fixed-answer nginx upstream that is never the bottleneck — direct,
#       nginx, HAProxy, Portkey, Lagoon without and with RPM/TPM limits; pinned and unpinned layouts; req/s,
#       p50/p99 added, own CPU µs per request and Lagoon + Redis + Postgres (bench/results/<date>-proxy.md)
#   bench/mallocs.sh: heap allocations per warm request, by thread
#   then, on the mock upstream (the streams need it; its own rate caps P1/P2 here, so they are reported
#   beside, not instead of, the proxy figures):
#   P1  non-stream, warm key, 10 connections, zero-delay mock: p50/p99 added vs direct, nginx, Portkey
#   P2  non-stream, 64 connections: req/s of Lagoon / nginx, / Portkey, / direct
#       (P1 and P2 also with a budgeted key, beside the unbudgeted one: what a budget costs)
#   P3  STREAMS (10,000, or what the descriptor limit allows: each needs two in Lagoon) concurrent SSE
#       streams of 2 s (20 chunks), pool 4: completions/s vs ideal (direct), RSS per open stream,
#       TTFB p50/p99 added, Postgres backends, lease seconds per request
#   P4  COLD_KEYS distinct cold keys, pool 4: auths/s; Postgres queries for a burst of 200 on one key
#   P5  usage flush (COPY, batches of 1,000, fsync on): records/s
#   P6  memory: idle RSS; RSS per open idle stream (IDLE_STREAMS open at once)
# Lagoon (1 reactor thread), nginx (1 worker) and Portkey (one Node process) take turns on CPU 0; the
# mock upstream and the load client share CPU 1; Postgres and Redis float. Medians of REPS interleaved
# runs with min–max. Writes bench/results/<date>.json and .md (or $BENCH_OUT.json/.md).
# BENCH_SMOKE=1: every workload, tiny, in ~20 s — what `make test` runs to keep this script working.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# Each open stream holds two descriptors in Lagoon (client and upstream); keep 200 for everything else.
stream_cap=$(( ($(ulimit -n) - 200) / 2 ))
if [[ "${BENCH_SMOKE:-0}" == 1 ]]; then
  REPS=1 REQUESTS=1000 PEER_REQUESTS=300 STREAMS=100 CHUNKS=4 COLD_KEYS=300 IDLE_STREAMS=200 USAGE_RECORDS=10000
  proxy_env=(DURATION=1 REPS=1 LAYOUTS=pinned CONNECTIONS=64) malloc_env=(REQUESTS=1000)
else
  REPS=${REPS:-3} REQUESTS=${REQUESTS:-20000} PEER_REQUESTS=${PEER_REQUESTS:-4000} STREAMS=${STREAMS:-10000}
  CHUNKS=20 COLD_KEYS=${COLD_KEYS:-10000} IDLE_STREAMS=${IDLE_STREAMS:-5000} USAGE_RECORDS=${USAGE_RECORDS:-200000}
  proxy_env=(PROXY_PORTKEY=1) malloc_env=()
fi
(( STREAMS > stream_cap )) && STREAMS=$stream_cap
out=${BENCH_OUT:-bench/results/$(date -u +%Y-%m-%d)}

command -v nginx >/dev/null || { echo "bench: nginx is missing (scripts/install-deps installs nginx-light)" >&2; exit 1; }
if [[ ! -f bench/peers/node_modules/@portkey-ai/gateway/build/start-server.js ]]; then
  (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
cmake --build build --target lagoon lagoon-mock-upstream lagoon-loadgen lagoon-usage-bench >/dev/null

if [[ "${BENCH_PROXY:-1}" == 1 ]]; then  # BENCH_PROXY=0: the mock workloads alone, for a quick look
  echo "bench: bench/proxy.sh" >&2
  env "${proxy_env[@]}" PROXY_OUT="$out-proxy" bench/proxy.sh >/dev/null
  echo "bench: bench/mallocs.sh" >&2
  env "${malloc_env[@]}" bench/mallocs.sh >"$out-mallocs.md"
fi

PG_FSYNC=on bench_services pg+redis
[[ -n "${BENCH_PIN_PG:-}" ]] && for p in $(pgrep -f "postgres -D|postgres: "); do taskset -a -c -p "$BENCH_PIN_PG" "$p" >/dev/null; done
results=$tmp/results.jsonl
: >"$results"
emit() { echo "$1" >>"$results"; }

mock_port=$(free_port)
mock_key=$(openssl rand -hex 16)
taskset -c 1 build/lagoon-mock-upstream --listen "127.0.0.1:$mock_port" --api-key "$mock_key" >"$tmp/mock.log" 2>&1 &
pids+=("$!")

nginx_port=$(free_port)
bench_nginx "$nginx_port" "$mock_port" "$mock_key"

portkey_port=$(free_port)
taskset -c 0 node -r ./bench/peers/loopback.cjs bench/peers/node_modules/@portkey-ai/gateway/build/start-server.js \
  --port="$portkey_port" --headless >"$tmp/portkey.log" 2>&1 &
pids+=("$!")

export LAGOON_LOG_LEVEL=warn LAGOON_THREADS=1 LAGOON_DB_POOL_SIZE=4 LAGOON_MAX_CONNECTIONS=20000
export LAGOON_UPSTREAM_URL="http://127.0.0.1:$mock_port/api/v1" LAGOON_UPSTREAM_API_KEY="$mock_key"
user_id=$(build/lagoon users create --name bench | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
key=$(build/lagoon keys create --user bench | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
# A key with a budget (more than the run can spend): each request holds its most against it and settles,
# in the one Redis script call a rate limit would use — the unbudgeted key makes none.
budget_key=$(build/lagoon keys create --user bench --budget 1000000 --period total \
  | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
start_lagoon() {  # PORT [USAGE_DIR]: a fresh Lagoon on CPU 0; sets LAST_PID
  LAGOON_LISTEN="127.0.0.1:$1" LAGOON_USAGE_DIR="${2:-$tmp/usage-$1}" taskset -c 0 build/lagoon serve \
    >"$tmp/lagoon-$1.log" 2>&1 &
  LAST_PID=$!
  pids+=("$LAST_PID")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.1; done
  echo "bench: lagoon on $1 did not become ready" >&2
  exit 1
}
lagoon_port=$(free_port)
start_lagoon "$lagoon_port"
lagoon_pid=$LAST_PID
for port in "$nginx_port" "$mock_port" "$portkey_port"; do
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
done

body='{"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello"}]}'
load() {  # PORT CONNECTIONS REQUESTS [loadgen options…]
  local port=$1 c=$2 n=$3
  shift 3
  taskset -c 1 build/lagoon-loadgen --port "$port" --connections "$c" --requests "$n" "$@" || true
}
path=/api/v1/chat/completions
direct() { load "$mock_port" "$1" "$2" --path $path --key "$mock_key" --body "${3:-$body}"; }
via_nginx() { load "$nginx_port" "$1" "$2" --path $path --body "$body"; }
via_portkey() {
  load "$portkey_port" "$1" "$2" --path /v1/chat/completions --key "$mock_key" --body "$body" \
    --header "x-portkey-provider: openai" --header "x-portkey-custom-host: http://127.0.0.1:$mock_port/v1"
}
via_lagoon() { load "$lagoon_port" "$1" "$2" --path $path --key "$key" --body "${3:-$body}"; }
via_lagoon_budget() { load "$lagoon_port" "$1" "$2" --path $path --key "$budget_key" --body "$body"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "bench: warming up" >&2
direct 10 500 >/dev/null; via_nginx 10 500 >/dev/null; via_portkey 10 200 >/dev/null; via_lagoon 10 1000 >/dev/null
via_lagoon_budget 10 1000 >/dev/null

# P1 and P2: interleaved repetitions, every peer in each.
for c in 10 64; do
  w=$([[ $c -eq 10 ]] && echo P1 || echo P2)
  for rep in $(seq "$REPS"); do
    echo "bench: $w run $rep of $REPS" >&2
    emit "{\"w\":\"$w\",\"path\":\"direct\",\"r\":$(direct "$c" "$REQUESTS")}"
    emit "{\"w\":\"$w\",\"path\":\"nginx\",\"r\":$(via_nginx "$c" "$REQUESTS")}"
    emit "{\"w\":\"$w\",\"path\":\"portkey\",\"r\":$(via_portkey "$c" "$PEER_REQUESTS")}"
    t0=$(cpu_ticks "$lagoon_pid")
    r=$(via_lagoon "$c" "$REQUESTS")
    emit "{\"w\":\"$w\",\"path\":\"lagoon\",\"r\":$r,\"cpu_ticks\":$(( $(cpu_ticks "$lagoon_pid") - t0 ))}"
    emit "{\"w\":\"$w\",\"path\":\"lagoon_budget\",\"r\":$(via_lagoon_budget "$c" "$REQUESTS")}"
  done
done

# P3: concurrent streams, 2 s each (CHUNKS chunks 100 ms apart).
backends() {
  as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -tAc \
    "SELECT count(*) FROM pg_stat_activity WHERE datname = 'lagoon' AND pid <> pg_backend_pid()"
}
stream_body="{\"model\":\"llama-3.3-70b\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"stream\":true,\"x_mock\":{\"chunks\":$CHUNKS,\"gap-ms\":100}}"
for rep in $(seq "$REPS"); do
  echo "bench: P3 run $rep of $REPS ($STREAMS streams)" >&2
  emit "{\"w\":\"P3\",\"path\":\"direct\",\"r\":$(direct "$STREAMS" "$STREAMS" "$stream_body")}"
  before=$(bench_lease_seconds "$lagoon_port")
  rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$lagoon_pid/status")
  peak=0
  via_lagoon "$STREAMS" "$STREAMS" "$stream_body" >"$tmp/p3.json" &
  load_pid=$!
  while kill -0 "$load_pid" 2>/dev/null; do  # Lagoon's memory with the most streams open
    open=$(bench_metric "$lagoon_port" lagoon_http_streams_active)
    if [[ "${open%.*}" -gt "${peak%% *}" ]]; then peak="${open%.*} $(awk '/VmRSS/ {print $2}' "/proc/$lagoon_pid/status")"; fi
    sleep 0.1
  done
  wait "$load_pid" || true
  r=$(cat "$tmp/p3.json")
  after=$(bench_lease_seconds "$lagoon_port")
  emit "{\"w\":\"P3\",\"path\":\"lagoon\",\"r\":$r,\"lease_seconds\":$(python3 -c "print($after - $before)"),\"backends\":$(backends),\"rss_before_kib\":$rss_before,\"peak_open\":${peak%% *},\"rss_peak_kib\":${peak#* }}"
done

# P4: cold keys, each once, against a fresh Lagoon with an empty Redis; then one cold key 200 times at once.
echo "bench: P4 ($COLD_KEYS cold keys)" >&2
python3 bench/lib/make_keys.py "$COLD_KEYS" "$LAGOON_KEY_PEPPER" "$user_id" "$tmp/keys.txt" "$tmp/keys.copy"
as_pg "$PG_BIN/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -d lagoon \
  -c "\\copy api_keys(user_id, prefix, digest) FROM '$tmp/keys.copy'"
kill "$lagoon_pid"
for rep in $(seq "$REPS"); do
  redis-cli -p "$redis_port" FLUSHALL >/dev/null
  port=$(free_port)
  start_lagoon "$port"
  r=$(taskset -c 1 build/lagoon-loadgen --port "$port" --path /api/v1/key --connections 64 --keys-file "$tmp/keys.txt" || true)
  queries=$(bench_metric "$port" 'lagoon_auth_lookups_total{layer="postgres",result="hit"}')
  burst_key=$(build/lagoon keys create --user bench | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
  load "$port" 200 200 --path /api/v1/key --key "$burst_key" >/dev/null
  burst=$(bench_metric "$port" 'lagoon_auth_lookups_total{layer="postgres",result="hit"}')
  emit "{\"w\":\"P4\",\"path\":\"lagoon\",\"r\":$r,\"queries\":${queries:-0},\"burst_queries\":$(( ${burst:-0} - ${queries:-0} ))}"
  kill "$LAST_PID"
done

# P5: the flusher's write path into this Postgres (fsync on).
echo "bench: P5" >&2
key_id=$(build/lagoon keys create --user bench | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
emit "{\"w\":\"P5\",\"path\":\"lagoon\",\"r\":$(build/lagoon-usage-bench --key-id "$key_id" --user-id "$user_id" \
  --batches 1000 --methods copy --records "$USAGE_RECORDS" --push 0)}"

# P6: memory of a fresh process, idle and with IDLE_STREAMS streams open and waiting.
echo "bench: P6 ($IDLE_STREAMS idle streams)" >&2
port=$(free_port)
start_lagoon "$port"
via() { load "$port" "$1" "$2" --path $path --key "$key" --body "${3:-$body}"; }
via 4 200 >/dev/null  # the key, the session and the upstream pool warmed, as a serving process is
sleep 0.5
rss_idle=$(awk '/VmRSS/ {print $2}' "/proc/$LAST_PID/status")
idle_body="{\"model\":\"llama-3.3-70b\",\"messages\":[],\"stream\":true,\"x_mock\":{\"chunks\":2,\"gap-ms\":60000}}"
taskset -c 1 build/lagoon-loadgen --port "$port" --path $path --connections "$IDLE_STREAMS" --requests "$IDLE_STREAMS" \
  --key "$key" --body "$idle_body" >/dev/null 2>&1 &
idle_load=$!
open=0
for _ in $(seq 600); do
  open=$(bench_metric "$port" lagoon_http_streams_active)
  [[ "${open%.*}" -ge "$IDLE_STREAMS" ]] && break
  sleep 0.1
done
sleep 0.5
rss_open=$(awk '/VmRSS/ {print $2}' "/proc/$LAST_PID/status")
kill "$idle_load" 2>/dev/null || true
emit "{\"w\":\"P6\",\"path\":\"lagoon\",\"rss_idle_kib\":$rss_idle,\"rss_open_kib\":$rss_open,\"streams\":${open%.*}}"
kill "$LAST_PID"

mkdir -p "$(dirname "$out")"
python3 bench/report.py "$results" "$out" "$STREAMS" "$COLD_KEYS" "$IDLE_STREAMS"
[[ "${BENCH_PROXY:-1}" == 1 ]] && {
  echo
  echo "## Proxy throughput and CPU against a fixed-answer upstream (bench/proxy.sh)"
  echo
  sed '1,/^## /{/^## /!d}' "$out-proxy.md" | sed 's/^## /### /'
  echo "## Heap allocations per warm request (bench/mallocs.sh)"
  echo
  cat "$out-mallocs.md"
} >>"$out.md"
cat "$out.md"
