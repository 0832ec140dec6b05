#!/usr/bin/env bash
# bench/ab.sh OTHER_LAGOON: this tree's build/lagoon against another lagoon binary (say, main before a
# change), in one run, so a hot-path change gets its figure as a ratio rather than across runs of a
# shared VM. Workload P2: non-stream chat, warm key, no limits, CONNECTIONS (64) connections, wrk for
# SECONDS (5) per run, REPS (5) runs of each interleaved (A B A B …), against bench_origin's fixed-answer
# upstream (the mock would be the bottleneck). Each Lagoon has one reactor thread on CPU 0; the upstream
# and wrk share CPU 1; Postgres and Redis float. Each binary makes its own key with its own CLI (key
# formats may differ between versions). Prints one Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

other=${1:?usage: bench/ab.sh OTHER_LAGOON_BINARY}
REPS=${REPS:-5} SECONDS_PER_RUN=${SECONDS_PER_RUN:-5} CONNECTIONS=${CONNECTIONS:-64}
command -v wrk >/dev/null || { echo "bench: wrk is missing (scripts/install-deps installs it)" >&2; exit 1; }
cmake --build build --target lagoon lagoon-mock-upstream >/dev/null
ulimit -n 65536 2>/dev/null || true
PG_FSYNC=on bench_services pg+redis
bench_origin
taskset -a -p -c 1 "$origin_worker" >/dev/null
export LAGOON_LOG_LEVEL=warn LAGOON_THREADS=1 LAGOON_DB_POOL_SIZE=4 LAGOON_MAX_CONNECTIONS=20000
export LAGOON_UPSTREAM_URL="http://127.0.0.1:$origin_port/api/v1" LAGOON_UPSTREAM_API_KEY="$mock_key"
build/lagoon users create --name bench >/dev/null

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

run() {  # SIDE SECONDS: one load run; prints wrk's JSON with the Lagoon's CPU ticks added
  local t0 r
  t0=$(awk '{print $14 + $15}' "/proc/${pid[$1]}/stat")
  r=$(bench_wrk "${port[$1]}" "$CONNECTIONS" "$2" "${key[$1]}")
  echo "{\"side\":\"$1\",\"r\":$r,\"cpu_ticks\":$(( $(awk '{print $14 + $15}' "/proc/${pid[$1]}/stat") - t0 ))}"
}
run this 1 >/dev/null
run other 1 >/dev/null
results=$tmp/ab.jsonl
for rep in $(seq "$REPS"); do
  echo "bench/ab: run $rep of $REPS" >&2
  run this "$SECONDS_PER_RUN" >>"$results"
  run other "$SECONDS_PER_RUN" >>"$results"
done

python3 bench/lib/interleaved.py "$results" 0 "$(getconf CLK_TCK)" binary this,other this/other
