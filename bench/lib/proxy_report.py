#!/usr/bin/env python3
"""The report of bench/proxy.sh: per layout and connection count, one Markdown row per path — req/s, p50/p99
and the latency each adds to direct's, the proxy's own CPU µs per request, and for Lagoon the CPU of Lagoon +
Redis + Postgres per request (medians of the interleaved runs, min–max) — then the ratios the issue's goals
are stated in, per interleaved run.

usage: proxy_report.py RESULTS CLK_TCK COMMIT"""
import json
import statistics
import sys

results, tck, commit = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = [json.loads(line) for line in open(results)]
paths = ["direct", "nginx", "haproxy", "portkey", "lagoon", "lagoon_limits", "lagoon_2threads"]


def fails(r):
    return r["r"]["errors"] + r["r"]["non2xx"]


def rps(r):
    return r["r"]["requests"] / (r["r"]["duration_us"] / 1e6)


def per_req(ticks, r):
    return ticks / tck * 1e6 / max(r["r"]["requests"], 1)


def med(v):
    return (statistics.median(v), min(v), max(v)) if v else None


def cell(m, fmt="{:,.0f}"):
    if m is None:
        return "–"
    return (fmt + " (" + fmt + "–" + fmt + ")").format(*m)


print(f"# bench/proxy.sh at {commit}\n")
print("Upstream: nginx `return 200` with a fixed 380-byte chat completion. One worker/thread per proxy; wrk "
      "(1 thread) on CPU 1. `pinned`: proxies on CPU 0, upstream on CPU 1; `unpinned`: all but wrk float. "
      "CPU µs/request from /proc (the proxy's own process; for Lagoon also Lagoon + Redis + Postgres, "
      "read once the usage rows are written). Medians of the interleaved runs (min–max).\n")
for layout in dict.fromkeys(r["layout"] for r in rows):
    for c in dict.fromkeys(r["c"] for r in rows if r["layout"] == layout):
        sel = [r for r in rows if r["layout"] == layout and r["c"] == c]
        by = {p: [r for r in sel if r["path"] == p] for p in paths}
        d50 = statistics.median(r["r"]["p50_us"] for r in by["direct"])
        d99 = statistics.median(r["r"]["p99_us"] for r in by["direct"])
        print(f"## {layout}, {c} connections\n")
        print("| path | req/s | p50 µs | p99 µs | added p50 / p99 µs | own CPU µs/request | "
              "Lagoon+Redis+Postgres CPU µs/request | failed |")
        print("|---|---|---|---|---|---|---|---|")
        for p in paths:
            rs = by[p]
            if not rs:
                continue
            p50, p99 = med([r["r"]["p50_us"] for r in rs]), med([r["r"]["p99_us"] for r in rs])
            added = "–" if p == "direct" else f"{p50[0] - d50:,.0f} / {p99[0] - d99:,.0f}"
            stack = med([per_req(r["stack_ticks"], r) for r in rs]) if p.startswith("lagoon") else None
            print(f"| {p} | {cell(med([rps(r) for r in rs]))} | {cell(p50)} | {cell(p99)} | {added} | "
                  f"{cell(med([per_req(r['own_ticks'], r) for r in rs]), '{:.1f}')} | {cell(stack, '{:.1f}')} | "
                  f"{sum(fails(r) for r in rs)} |")
        print()
        for a, b in [("lagoon", "nginx"), ("lagoon_limits", "nginx"), ("lagoon", "haproxy"), ("lagoon", "portkey"),
                     ("lagoon_2threads", "lagoon"), ("nginx", "direct")]:
            pairs = list(zip(by[a], by[b]))
            if not pairs:
                continue
            q = sorted(rps(x) / rps(y) for x, y in pairs)
            cq = sorted(per_req(x["own_ticks"], x) / per_req(y["own_ticks"], y) for x, y in pairs)
            print(f"- {a} / {b}: req/s {statistics.median(q):.2f}× ({q[0]:.2f}–{q[-1]:.2f}); "
                  f"own CPU per request {statistics.median(cq):.2f}× ({cq[0]:.2f}–{cq[-1]:.2f})")
        print()
