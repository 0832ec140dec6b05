#!/usr/bin/env bash
# How fast usage records reach Postgres (batches of 1, 100, 1,000, 10,000; COPY vs multi-row INSERT,
# through the flusher's own usage::write_batch), and what Ring::try_push costs the request path.
# Starts its own Postgres (fsync on, as in production). Writes bench/results/usage-<date>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

make -s build >/dev/null
cmake --build build --target lagoon-usage-bench >/dev/null

PG_FSYNC=on bench_services pg
user_id=$(build/lagoon users create --name bench | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
key_id=$(build/lagoon keys create --user bench | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
build/lagoon-usage-bench --key-id "$key_id" --user-id "$user_id" --dir "$tmp/ring" >"$tmp/results.jsonl"

mkdir -p bench/results
out=bench/results/usage-$(date -u +%Y-%m-%d).md
python3 - "$tmp/results.jsonl" >"$out" <<'PY'
import json, sys, subprocess
rows = [json.loads(l) for l in open(sys.argv[1])]
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
print("# Usage pipeline throughput (bench/usage.sh)\n")
print(f"{cpu}; local Postgres 15 with fsync on; one connection; each batch is one transaction "
      "(staging + INSERT … ON CONFLICT DO NOTHING + aggregate UPDATEs).\n")
print("| batch | COPY records/s | multi-row INSERT records/s | COPY / INSERT |")
print("|---|---|---|---|")
flush = {(r["method"], r["batch"]): r["rps"] for r in rows if r["kind"] == "flush"}
for b in sorted({k[1] for k in flush}):
    c, i = flush[("copy", b)], flush[("insert", b)]
    print(f"| {b:,} | {c:,.0f} | {i:,.0f} | {c / i:.2f}× |")
print("\n| Ring::try_push | ns per push |")
print("|---|---|")
for r in rows:
    if r["kind"] == "push":
        print(f"| {r['threads']} thread{'s' if r['threads'] > 1 else ''} pushing | {r['ns_per_push']:.0f} |")
print("\nGoals (issue #4): ≥ 50,000 records/s flushed; try_push in nanoseconds.")
PY
cat "$out"
