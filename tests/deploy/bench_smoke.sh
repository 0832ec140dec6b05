#!/usr/bin/env bash
# `make bench` in miniature (BENCH_SMOKE=1: every workload with every peer, ~30 s), so the benchmark
# keeps working: each workload must complete with no failed request and sane figures. Its speed is not
# judged here — the goals are for the full run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d /tmp/lagoon-bench-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT
BENCH_SMOKE=1 BENCH_OUT="$out/result" bench/run.sh >"$out/log" 2>&1 || { cat "$out/log"; exit 1; }
python3 - "$out/result.json" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
problems = []
for w in ("P1", "P2"):
    for path in ("direct", "nginx", "portkey", "lagoon"):
        if f[w][path]["failed"]:
            problems.append(f"{w} {path}: {f[w][path]['failed']} failed requests")
        if not f[w][path]["rps"]["median"] > 0:
            problems.append(f"{w} {path}: no throughput")
if f["P3"]["failed"] or f["P3"]["percent_of_ideal"] < 50:
    problems.append(f"P3: {f['P3']}")
if f["P3"]["lease_seconds_per_request"] != 0:
    problems.append("P3: warm streams took Postgres leases")
if f["P4"]["failed"] or f["P4"]["queries_per_key"] != 1 or f["P4"]["queries_per_burst_of_200"] != 1:
    problems.append(f"P4: {f['P4']}")
if not f["P5"]["records_per_s"] > 0:
    problems.append("P5: nothing flushed")
if f["P6"]["open_streams"] < 200 or not f["P6"]["idle_rss_kib"] > 0:
    problems.append(f"P6: {f['P6']}")
proxy = [json.loads(line) for line in open(sys.argv[1].replace(".json", "-proxy.jsonl"))]
for path in ("direct", "nginx", "haproxy", "lagoon", "lagoon_limits"):
    runs = [r for r in proxy if r["path"] == path]
    if not runs or any(r["r"]["errors"] or r["r"]["non2xx"] or not r["r"]["requests"] > 0 for r in runs):
        problems.append(f"proxy {path}: {runs}")
    if path.startswith("lagoon") and not all(r["own_ticks"] > 0 and r["stack_ticks"] >= r["own_ticks"] for r in runs):
        problems.append(f"proxy {path}: no CPU read: {runs}")
mallocs = open(sys.argv[1].replace(".json", "-mallocs.md")).read()
if "**all**" not in mallocs:
    problems.append(f"mallocs: {mallocs}")
for p in problems:
    print("FAIL:", p)
print(open(sys.argv[1].replace(".json", ".md")).read())
sys.exit(1 if problems else 0)
PY
