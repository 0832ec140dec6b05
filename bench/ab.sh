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

python3 - "$results" "$REQUESTS" "$(getconf CLK_TCK)" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
n, tck = int(sys.argv[2]), int(sys.argv[3])
def med(side, f):
    v = [f(r) for r in rows if r["side"] == side]
    return statistics.median(v), min(v), max(v)
rps = lambda r: r["r"]["rps"]
cpu = lambda r: r["cpu_ticks"] / tck * 1e6 / n
p50 = lambda r: r["r"]["p50_us"]
p99 = lambda r: r["r"]["p99_us"]
print("| binary | req/s | CPU µs/request | p50 µs | p99 µs | failed |")
print("|---|---|---|---|---|---|")
for side in ("this", "other"):
    fails = sum(r["r"]["non2xx"] + r["r"]["errors"] for r in rows if r["side"] == side)
    cells = [f"{m:,.1f} ({lo:,.1f}–{hi:,.1f})" for m, lo, hi in (med(side, rps), med(side, cpu), med(side, p50), med(side, p99))]
    print(f"| {side} | " + " | ".join(cells) + f" | {fails} |")
pairs = [(a, b) for a, b in zip([r for r in rows if r["side"] == "this"], [r for r in rows if r["side"] == "other"])]
ratios = sorted(rps(a) / rps(b) for a, b in pairs)
cpu_ratios = sorted(cpu(a) / cpu(b) for a, b in pairs)
print(f"\nthis / other req/s per interleaved pair: median {statistics.median(ratios):.3f} (min {ratios[0]:.3f}, max {ratios[-1]:.3f}); "
      f"CPU per request: median {statistics.median(cpu_ratios):.3f}")
PY
