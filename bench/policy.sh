#!/usr/bin/env bash
# bench/policy.sh: what a key policy costs on the hot path, in one run — one Lagoon (one reactor thread on
# CPU 0; the mock and the load client on CPU 1) and three warm keys taking turns: no policy, a model and
# endpoint list (checked from the cached record: no Redis call), and a concurrency cap too high to bite
# (one script call to take the slot, one ZREM to give it back). Workload P2 of `make bench`: non-stream
# chat, CONNECTIONS (64) connections, REQUESTS (20000) per run, REPS (5) interleaved runs. Prints one
# Markdown table and the ratios per interleaved triple.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

REPS=${REPS:-5} REQUESTS=${REQUESTS:-20000} CONNECTIONS=${CONNECTIONS:-64}
cmake --build build --target lagoon lagoon-mock-upstream lagoon-loadgen >/dev/null
ulimit -n 65536 2>/dev/null || true
PG_FSYNC=on bench_services pg+redis

bench_mock_and_env
declare -A key
create() { sed -n 's/.*"key":"\([^"]*\)".*/\1/p' <<<"$1"; }
key[none]=$(create "$(build/lagoon keys create --user bench)")
key[lists]=$(create "$(build/lagoon keys create --user bench --models 'qwen*,venice-*,llama-*' --endpoints chat)")
key[cap]=$(create "$(build/lagoon keys create --user bench --max-concurrent 1000000)")

port=$(free_port)
LAGOON_LISTEN="127.0.0.1:$port" LAGOON_USAGE_DIR="$tmp/usage" taskset -c 0 build/lagoon serve >"$tmp/lagoon.log" 2>&1 &
pid=$!
pids+=("$pid")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

body='{"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello"}]}'
run() {  # KIND REQUESTS
  local t0 r
  t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  r=$(taskset -c 1 build/lagoon-loadgen --port "$port" --connections "$CONNECTIONS" --requests "$2" \
    --path /api/v1/chat/completions --key "${key[$1]}" --body "$body")
  echo "{\"side\":\"$1\",\"r\":$r,\"cpu_ticks\":$(( $(awk '{print $14 + $15}' "/proc/$pid/stat") - t0 ))}"
}
for k in none lists cap; do run "$k" 2000 >/dev/null; done
results=$tmp/policy.jsonl
for rep in $(seq "$REPS"); do
  echo "bench/policy: run $rep of $REPS" >&2
  for k in none lists cap; do run "$k" "$REQUESTS" >>"$results"; done
done
refused=$(curl -s "http://127.0.0.1:$port/metrics" | sed -n 's/^lagoon_concurrency_refused_total \(.*\)/\1/p')

python3 bench/lib/interleaved.py "$results" "$REQUESTS" "$(getconf CLK_TCK)" key none,lists,cap \
  lists/none,cap/none
echo
echo "requests refused by the cap during the run (must be 0): ${refused:-0}"
