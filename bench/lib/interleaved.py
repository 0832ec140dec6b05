#!/usr/bin/env python3
"""The report of an interleaved comparison on one workload (bench/ab.sh, bench/budget.sh): one Markdown row
per side (req/s, CPU µs per request, p50, p99: medians with min–max; failures) and, for each pair named,
the per-run ratios of req/s and CPU per request.

usage: interleaved.py RESULTS REQUESTS CLK_TCK FIRST_COLUMN SIDE,SIDE… A/B[,A/B…]
RESULTS holds one JSON line per run: {"side": …, "r": <lagoon-loadgen's or bench/lib/wrk_post.lua's JSON>,
"cpu_ticks": …}; REQUESTS is the count of a loadgen run (a wrk run says its own)."""
import json
import statistics
import sys

results, n, tck, column, sides, pairs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], \
    sys.argv[5].split(","), [p.split("/") for p in sys.argv[6].split(",")]
rows = [json.loads(line) for line in open(results)]
by = {s: [r for r in rows if r["side"] == s] for s in sides}


def med(side, f):
    v = [f(r) for r in by[side]]
    return statistics.median(v), min(v), max(v)


rps = lambda r: r["r"]["rps"]
cpu = lambda r: r["cpu_ticks"] / tck * 1e6 / r["r"].get("requests", n)  # wrk runs for a time
p50 = lambda r: r["r"]["p50_us"]
p99 = lambda r: r["r"]["p99_us"]
print(f"| {column} | req/s | CPU µs/request | p50 µs | p99 µs | failed |")
print("|---|---|---|---|---|---|")
for side in sides:
    fails = sum(r["r"]["non2xx"] + r["r"]["errors"] for r in by[side])
    cells = [f"{m:,.1f} ({lo:,.1f}–{hi:,.1f})" for m, lo, hi in (med(side, rps), med(side, cpu), med(side, p50), med(side, p99))]
    print(f"| {side} | " + " | ".join(cells) + f" | {fails} |")
for a, b in pairs:
    runs = list(zip(by[a], by[b]))
    ratios = sorted(rps(x) / rps(y) for x, y in runs)
    cpu_ratios = sorted(cpu(x) / cpu(y) for x, y in runs)
    print(f"\n{a} / {b} req/s per interleaved pair: median {statistics.median(ratios):.3f} "
          f"(min {ratios[0]:.3f}, max {ratios[-1]:.3f}); CPU per request: median {statistics.median(cpu_ratios):.3f}")
