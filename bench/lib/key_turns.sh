# Shared by budget.sh and policy.sh: what a key's setting costs on the hot path, in one run — one Lagoon
# (one reactor thread on CPU 0; the mock and the load client on CPU 1) and warm keys taking turns on
# workload P2 of `make bench` (non-stream chat, CONNECTIONS (64) connections, REQUESTS (20000) per run,
# REPS (5) interleaved runs). Source it, create keys into `key[KIND]` with `key_turns_create ARGS…`, then
# `key_turns_serve` and `key_turns_run "KIND …" "A/B,…"`, which prints one Markdown table and the ratios
# A/B per interleaved run; `key_turns_metric NAME` reads one of the Lagoon's metrics afterwards.
. bench/lib/common.sh

REPS=${REPS:-5} REQUESTS=${REQUESTS:-20000} CONNECTIONS=${CONNECTIONS:-64}
cmake --build build --target lagoon lagoon-mock-upstream lagoon-loadgen >/dev/null
ulimit -n 65536 2>/dev/null || true
PG_FSYNC=on bench_services pg+redis
bench_mock_and_env
declare -A key

key_turns_create() { build/lagoon keys create --user bench "$@" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p'; }

key_turns_serve() {
  port=$(free_port)
  LAGOON_LISTEN="127.0.0.1:$port" LAGOON_USAGE_DIR="$tmp/usage" taskset -c 0 build/lagoon serve >"$tmp/lagoon.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
}

key_turns_one() {  # KIND REQUESTS: one load run; loadgen's JSON with the Lagoon's CPU ticks added
  local body='{"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello"}]}' t0 r
  t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  r=$(taskset -c 1 build/lagoon-loadgen --port "$port" --connections "$CONNECTIONS" --requests "$2" \
    --path /api/v1/chat/completions --key "${key[$1]}" --body "$body")
  echo "{\"side\":\"$1\",\"r\":$r,\"cpu_ticks\":$(( $(awk '{print $14 + $15}' "/proc/$pid/stat") - t0 ))}"
}

key_turns_run() {  # "KIND …" "A/B,…": the kinds in turn, then the ratios of their figures to report
  local results=$tmp/turns.jsonl k rep
  for k in $1; do key_turns_one "$k" 2000 >/dev/null; done
  for rep in $(seq "$REPS"); do
    echo "bench/$(basename "$0" .sh): run $rep of $REPS" >&2
    for k in $1; do key_turns_one "$k" "$REQUESTS" >>"$results"; done
  done
  python3 bench/lib/interleaved.py "$results" "$REQUESTS" "$(getconf CLK_TCK)" key "${1// /,}" "$2"
}

key_turns_metric() { curl -s "http://127.0.0.1:$port/metrics" | sed -n "s/^$1 \(.*\)/\1/p"; }
