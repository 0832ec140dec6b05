#!/usr/bin/env bash
# bench/policy.sh: what a key policy costs on the hot path (bench/lib/key_turns.sh: one Lagoon, warm keys
# taking turns on P2, interleaved): no policy; a model and an endpoint list (checked from the cached
# record: no Redis call); a concurrency cap too high to bite (one script call to take the slot, one ZREM
# to give it back).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/key_turns.sh

key[none]=$(key_turns_create)
key[lists]=$(key_turns_create --models 'qwen*,venice-*,llama-*' --endpoints chat)
key[cap]=$(key_turns_create --max-concurrent 1000000)
key_turns_serve
key_turns_run "none lists cap" lists/none,cap/none
echo
echo "requests refused by the cap during the run (must be 0): $(key_turns_metric lagoon_concurrency_refused_total)"
