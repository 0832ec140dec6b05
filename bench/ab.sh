#!/usr/bin/env bash
# bench/ab.sh OTHER_LAGOON: this tree's build/lagoon against another lagoon binary (say, main before a
# change), in one run, so a hot-path change gets its figure as a ratio rather than across runs of a
# shared VM. Workload P2 of `make bench`: non-stream chat, warm key, no limits, CONNECTIONS (64) connections,
# REQUESTS (20000) per run, REPS (5) runs of each interleaved (A B A B …). Each Lagoon has one reactor
# thread on CPU 0; the mock and the load client share CPU 1; Postgres and Redis float. Each binary makes
# its own key with its own CLI (key formats may differ between versions). Prints one Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

other=${1:?usage: bench/ab.sh OTHER_LAGOON_BINARY}
REPS=${REPS:-5} REQUESTS=${REQUESTS:-20000} CONNECTIONS=${CONNECTIONS:-64}
cmake --build build --target lagoon lagoon-mock-upstream lagoon-loadgen >/dev/null
ulimit -n 65536 2>/dev/null || true
PG_FSYNC=on bench_services pg+redis

bench_mock_and_env

declare -A port pid key
for side in this other; do
  bin=build/lagoon
  [[ $side == other ]] && bin=$other
  key[$side]=$("$bin" keys create --user bench | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
  port[$side]=$(free_port)
  LAGOON_LISTEN="127.0.0.1:${port[$side]}" LAGOON_USAGE_DIR="$tmp/usage-$side" taskset -c 0 "$bin" serve \
    >"$tmp/lagoon-$side.log" 2>&1 &
  pid[$side]=$!
  pids+=("${pid[$side]}")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:${port[$side]}/readyz" >/dev/null && break; sleep 0.1; done
done

body='{"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello"}]}'
run() {  # SIDE REQUESTS: one load run; prints loadgen's JSON with the Lagoon's CPU ticks added
  local t0 r
  t0=$(awk '{print $14 + $15}' "/proc/${pid[$1]}/stat")
  r=$(taskset -c 1 build/lagoon-loadgen --port "${port[$1]}" --connections "$CONNECTIONS" --requests "$2" \
    --path /api/v1/chat/completions --key "${key[$1]}" --body "$body")
  echo "{\"side\":\"$1\",\"r\":$r,\"cpu_ticks\":$(( $(awk '{print $14 + $15}' "/proc/${pid[$1]}/stat") - t0 ))}"
}
run this 2000 >/dev/null
run other 2000 >/dev/null
results=$tmp/ab.jsonl
for rep in $(seq "$REPS"); do
  echo "bench/ab: run $rep of $REPS" >&2
  run this "$REQUESTS" >>"$results"
  run other "$REQUESTS" >>"$results"
done

python3 bench/lib/interleaved.py "$results" "$REQUESTS" "$(getconf CLK_TCK)" binary this,other this/other
