#!/usr/bin/env bash
# bench/budget.sh: what a budget costs on the hot path (bench/lib/key_turns.sh: one Lagoon, warm keys
# taking turns on P2, interleaved): no limits and no budget (no Redis call), a requests-per-minute limit
# too high to bite (one script call), and a budget too large to run out plus that limit (still one script
# call: the hold rides in the rate limiter's).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/key_turns.sh

key[none]=$(key_turns_create)
key[limit]=$(key_turns_create --rpm 100000000)
key[budget]=$(key_turns_create --rpm 100000000 --budget 1000000 --period total)
key_turns_serve
key_turns_run "none limit budget" budget/none,budget/limit,limit/none
echo
echo "budget counters seeded from Postgres during the run: $(key_turns_metric lagoon_budget_seeds_total)"
