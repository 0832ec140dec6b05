#!/usr/bin/env bash
# bench/instructions.sh [OTHER_LAGOON]: user-space instructions per warm request, counted by callgrind
# (valgrind) — a figure that does not move with this shared VM's noise, unlike req/s and CPU time, so a
# change of a few per cent on the hot path can be seen at all. P2's request (non-stream chat, warm key,
# no limits) against bench_origin's fixed-answer upstream, REQUESTS (3000) of them over 16 connections
# after a warm-up; counting is switched on for exactly those (callgrind_control). All threads counted
# (the usage flusher's share included). With OTHER_LAGOON, the same for it and the ratio. Prints Markdown.
# CALLGRIND_KEEP=DIR keeps the callgrind files there, for callgrind_annotate (where the instructions go).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

REQUESTS=${REQUESTS:-3000}
command -v valgrind >/dev/null || { echo "bench: valgrind is missing" >&2; exit 1; }
cmake --build build --target lagoon lagoon-mock-upstream lagoon-loadgen >/dev/null
ulimit -n 65536 2>/dev/null || true
PG_FSYNC=off bench_services pg+redis
[[ -n "${CALLGRIND_KEEP:-}" ]] && trap 'cp "$tmp"/cg.* "$CALLGRIND_KEEP"/ 2>/dev/null; bench_cleanup' EXIT
bench_origin
export LAGOON_LOG_LEVEL=warn LAGOON_THREADS=1 LAGOON_DB_POOL_SIZE=4
export LAGOON_UPSTREAM_URL="http://127.0.0.1:$origin_port/api/v1" LAGOON_UPSTREAM_API_KEY="$mock_key"
build/lagoon users create --name bench >/dev/null
body='{"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello"}]}'

count() {  # BINARY: instructions per request
  local bin=$1 key port pid out=$tmp/cg.$RANDOM
  key=$("$bin" keys create --user bench | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
  port=$(free_port)
  LAGOON_LISTEN="127.0.0.1:$port" LAGOON_USAGE_DIR="$tmp/usage-$port" valgrind --tool=callgrind \
    --instr-atstart=no --callgrind-out-file="$out.%p" "$bin" serve >"$tmp/cg-$port.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  load() { build/lagoon-loadgen --port "$port" --connections 16 --requests "$1" --path /api/v1/chat/completions \
    --key "$key" --body "$body" >/dev/null; }
  load 300
  sleep 1
  callgrind_control -i on "$pid" >/dev/null
  load "$REQUESTS"
  sleep 1  # the usage rows of those requests written
  callgrind_control -i off "$pid" >/dev/null
  kill "$pid"  # callgrind writes its counts as the process ends
  wait "$pid" 2>/dev/null || true
  for _ in $(seq 100); do ls "$out".* >/dev/null 2>&1 && break; sleep 0.1; done
  cat "$out".* | awk '/^summary:|^totals:/ {s += $2} END {print s}' | python3 -c "import sys; print(int(sys.stdin.read()) / $REQUESTS)"
}

this=$(count build/lagoon)
echo "| binary | instructions / request |"
echo "|---|---|"
printf '| this | %.0f |\n' "$this"
if [[ -n "${1:-}" ]]; then
  other=$(count "$1")
  printf '| other | %.0f |\n\nthis / other: %.3f\n' "$other" "$(python3 -c "print($this / $other)")"
fi
