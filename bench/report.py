#!/usr/bin/env python3
"""Turns bench/run.sh's raw results (JSON lines) into OUT.json (the figures) and OUT.md (the table the
README quotes), each figure beside its goal (issue #8)."""
import json
import statistics
import subprocess
import sys

raw, out, streams, cold_keys, idle_streams = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rows = [json.loads(line) for line in open(raw)]
med = statistics.median


def runs(w, path):
    return [r for r in rows if r["w"] == w and r["path"] == path]


def stat(values):
    return {"median": med(values), "min": min(values), "max": max(values)} if values else None


def failed(w, path):
    return sum(r["r"].get("non2xx", 0) + r["r"].get("errors", 0) for r in runs(w, path) if "r" in r)


fig = {"machine": subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True,
                                 text=True).stdout.strip(),
       "reps": len(runs("P1", "lagoon"))}
for w in ("P1", "P2"):
    fig[w] = {}
    for path in ("direct", "nginx", "portkey", "lagoon", "lagoon_budget"):
        rs = [r["r"] for r in runs(w, path)]
        fig[w][path] = {"p50_us": stat([r["p50_us"] for r in rs]), "p99_us": stat([r["p99_us"] for r in rs]),
                        "rps": stat([r["rps"] for r in rs]), "failed": failed(w, path)}
    cpu = [r["cpu_ticks"] * 1e4 / r["r"]["requests"] for r in runs(w, "lagoon") if r["r"]["requests"]]
    fig[w]["lagoon"]["cpu_us_per_request"] = stat(cpu)
p1 = fig["P1"]
for peer in ("direct", "nginx", "portkey"):
    p1[f"added_p50_us_vs_{peer}"] = p1["lagoon"]["p50_us"]["median"] - p1[peer]["p50_us"]["median"]
    p1[f"added_p99_us_vs_{peer}"] = p1["lagoon"]["p99_us"]["median"] - p1[peer]["p99_us"]["median"]
p2 = fig["P2"]
for peer in ("direct", "nginx", "portkey"):
    p2[f"rps_ratio_vs_{peer}"] = p2["lagoon"]["rps"]["median"] / p2[peer]["rps"]["median"]
p1["budget_added_p50_us"] = p1["lagoon_budget"]["p50_us"]["median"] - p1["lagoon"]["p50_us"]["median"]
p2["budget_rps_ratio"] = p2["lagoon_budget"]["rps"]["median"] / p2["lagoon"]["rps"]["median"]

st, sd = runs("P3", "lagoon"), runs("P3", "direct")
fig["P3"] = {
    "streams": streams,
    "seconds": stat([r["r"]["seconds"] for r in st]),
    "ideal_seconds": stat([r["r"]["seconds"] for r in sd]),
    "completions_per_s": stat([r["r"]["requests"] / r["r"]["seconds"] for r in st]),
    "ideal_completions_per_s": stat([r["r"]["requests"] / r["r"]["seconds"] for r in sd]),
    "ttfb_p50_added_us": med([r["r"]["ttfb_p50_us"] for r in st]) - med([r["r"]["ttfb_p50_us"] for r in sd]),
    "ttfb_p99_added_us": med([r["r"]["ttfb_p99_us"] for r in st]) - med([r["r"]["ttfb_p99_us"] for r in sd]),
    "postgres_backends": max(r["backends"] for r in st),
    "lease_seconds_per_request": med([r["lease_seconds"] / streams for r in st]),
    "failed": failed("P3", "lagoon"),
    "peak_open": max(r.get("peak_open", 0) for r in st),
    "rss_per_open_stream_kib": med([(r["rss_peak_kib"] - r["rss_before_kib"]) / r["peak_open"]
                                    for r in st if r.get("peak_open")]) if any(r.get("peak_open") for r in st) else None,
}
fig["P3"]["percent_of_ideal"] = 100 * fig["P3"]["completions_per_s"]["median"] / fig["P3"]["ideal_completions_per_s"]["median"]
p4 = runs("P4", "lagoon")
fig["P4"] = {"keys": cold_keys, "auths_per_s": stat([r["r"]["requests"] / r["r"]["seconds"] for r in p4]),
             "queries_per_key": med([r["queries"] / cold_keys for r in p4]),
             "queries_per_burst_of_200": max(r["burst_queries"] for r in p4), "failed": failed("P4", "lagoon")}
p5 = runs("P5", "lagoon")
fig["P5"] = {"records_per_s": p5[0]["r"]["rps"], "batch": p5[0]["r"]["batch"], "records": p5[0]["r"]["records"]}
p6 = runs("P6", "lagoon")[0]
fig["P6"] = {"idle_rss_kib": p6["rss_idle_kib"], "open_streams": p6["streams"],
             "rss_per_stream_kib": (p6["rss_open_kib"] - p6["rss_idle_kib"]) / max(p6["streams"], 1)}

goals = {
    "P1 p50 added vs direct ≤ 100 µs": p1["added_p50_us_vs_direct"] <= 100,
    "P1 p99 added vs direct ≤ 500 µs": p1["added_p99_us_vs_direct"] <= 500,
    "P2 ≥ 0.8× nginx": p2["rps_ratio_vs_nginx"] >= 0.8,
    "P2 ≥ 10× Portkey": p2["rps_ratio_vs_portkey"] >= 10,
    "P3 ≥ 95 % of ideal": fig["P3"]["percent_of_ideal"] >= 95,
    "P3 0 lease seconds per warm request": fig["P3"]["lease_seconds_per_request"] == 0,
    "P3 Postgres backends ≤ pool (4)": fig["P3"]["postgres_backends"] <= 4,
    "P3 ≤ 32 KiB per open stream": (fig["P3"]["rss_per_open_stream_kib"] or 1e9) <= 32,
    "P4 ≥ 5,000 auths/s": fig["P4"]["auths_per_s"]["median"] >= 5000,
    "P5 ≥ 50,000 records/s": fig["P5"]["records_per_s"] >= 50000,
    "P6 ≤ 32 KiB per stream": fig["P6"]["rss_per_stream_kib"] <= 32,
}
fig["goals_met"] = goals
json.dump(fig, open(out + ".json", "w"), indent=2)


def spread(s, f="{:,.0f}"):
    return f"{f.format(s['median'])} ({f.format(s['min'])}–{f.format(s['max'])})"


def mark(name):
    return "✅" if goals[name] else "❌"


md = [f"# `make bench` (bench/run.sh)\n",
      f"{fig['machine']}, 2 cores. Lagoon (1 reactor thread), nginx (1 worker) and Portkey (1 Node process) "
      f"on CPU 0 in turn; mock upstream and load client on CPU 1; Postgres (fsync on) and Redis float. "
      f"Medians of {fig['reps']} interleaved runs (min–max).\n",
      "| workload | path | p50 µs | p99 µs | req/s | failed |", "|---|---|---|---|---|---|"]
for w, c in (("P1", 10), ("P2", 64)):
    for path in ("direct", "nginx", "portkey", "lagoon", "lagoon_budget"):
        f = fig[w][path]
        md.append(f"| {w} ({c} conns) | {path} | {spread(f['p50_us'])} | {spread(f['p99_us'])} | {spread(f['rps'])} "
                  f"| {f['failed']} |")
md += ["", "| figure | measured | goal |", "|---|---|---|",
       f"| P1 p50 added vs direct / nginx / Portkey | {p1['added_p50_us_vs_direct']:+.0f} / {p1['added_p50_us_vs_nginx']:+.0f} / "
       f"{p1['added_p50_us_vs_portkey']:+.0f} µs | ≤ 100 µs vs direct {mark('P1 p50 added vs direct ≤ 100 µs')} |",
       f"| P1 p99 added vs direct / nginx / Portkey | {p1['added_p99_us_vs_direct']:+.0f} / {p1['added_p99_us_vs_nginx']:+.0f} / "
       f"{p1['added_p99_us_vs_portkey']:+.0f} µs | ≤ 500 µs vs direct {mark('P1 p99 added vs direct ≤ 500 µs')} |",
       f"| P2 Lagoon / nginx | {p2['rps_ratio_vs_nginx']:.2f}× | ≥ 0.8× {mark('P2 ≥ 0.8× nginx')} |",
       f"| P2 Lagoon / Portkey | {p2['rps_ratio_vs_portkey']:.1f}× | ≥ 10× {mark('P2 ≥ 10× Portkey')} |",
       f"| P2 Lagoon / direct | {p2['rps_ratio_vs_direct']:.2f}× | – |",
       f"| P2 Lagoon CPU per request | {fig['P2']['lagoon']['cpu_us_per_request']['median']:.1f} µs | – |",
       f"| budgeted key vs unbudgeted: P1 p50 added; P2 req/s | {p1['budget_added_p50_us']:+.0f} µs; "
       f"{p2['budget_rps_ratio']:.2f}× | one Redis round trip |",
       f"| P3 {streams:,} streams: completions/s vs ideal | {fig['P3']['percent_of_ideal']:.1f} % "
       f"({fig['P3']['seconds']['median']:.2f} s vs {fig['P3']['ideal_seconds']['median']:.2f} s) | ≥ 95 % {mark('P3 ≥ 95 % of ideal')} |",
       f"| P3 TTFB added p50 / p99 | {fig['P3']['ttfb_p50_added_us']:+.0f} / {fig['P3']['ttfb_p99_added_us']:+.0f} µs | – |",
       f"| P3 Postgres backends; lease s per request | {fig['P3']['postgres_backends']}; "
       f"{fig['P3']['lease_seconds_per_request']:.6f} | ≤ 4 {mark('P3 Postgres backends ≤ pool (4)')}; 0 lease s "
       f"{mark('P3 0 lease seconds per warm request')} |",
       f"| P3 RSS per open stream ({fig['P3']['peak_open']:,} open at the peak) | "
       + (f"{fig['P3']['rss_per_open_stream_kib']:.1f} KiB" if fig['P3']['rss_per_open_stream_kib'] is not None else "–")
       + f" | ≤ 32 KiB {mark('P3 ≤ 32 KiB per open stream')} |",
       f"| P4 {cold_keys:,} cold keys, pool 4 | {spread(fig['P4']['auths_per_s'])} auths/s; "
       f"{fig['P4']['queries_per_key']:.3f} queries per key; {fig['P4']['queries_per_burst_of_200']} for a burst of 200 on one key "
       f"| ≥ 5,000/s {mark('P4 ≥ 5,000 auths/s')} |",
       f"| P5 usage flush (COPY, batches of {fig['P5']['batch']:,}) | {fig['P5']['records_per_s']:,.0f} records/s "
       f"| ≥ 50,000/s {mark('P5 ≥ 50,000 records/s')} |",
       f"| P6 idle RSS; per open idle stream ({fig['P6']['open_streams']:,} open) | {fig['P6']['idle_rss_kib']:,} KiB; "
       f"{fig['P6']['rss_per_stream_kib']:.1f} KiB | ≤ 32 KiB {mark('P6 ≤ 32 KiB per stream')} |",
       "", "Portkey's streaming path fails against an OpenAI-compatible upstream (TypeError: immutable, its "
       "issues #1389/#1550), so P3 has no Portkey column."]
open(out + ".md", "w").write("\n".join(md) + "\n")
