"""Render the measured tables of BENCHMARKS.md from benchmarks/results/*.json.

    python -m benchmarks.summary          # rewrites the part of BENCHMARKS.md between the markers

Everything above and below the markers is prose written by people; the tables
between them come from the results files only.
"""

from __future__ import annotations

import json

from benchmarks.run import RESULTS, ROOT, TARGETS

DOC = ROOT / "BENCHMARKS.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
ORDER = {"10k": 0, "100k": 1, "1m": 2}


def verdict(value: float | None, target: float | None, higher_is_better: bool) -> str:
    if value is None or target is None:
        return ""
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else f"missed ({value / target:.2f}x target)"


def tables() -> str:
    files = sorted(RESULTS.glob("*.json"), key=lambda p: (ORDER.get(p.stem.split("-")[0], 9), p.stem))
    results = [json.loads(p.read_text()) for p in files]
    if not results:
        return "No results yet: run `python -m benchmarks.run`.\n"
    m = results[0]["machine"]
    lines = [
        f"Measured on: {m['cpus']} cores ({m['cpu']}), {m['memory_mb']} MB, Python {m['python']}, "
        f"SQLite {m['sqlite']}, {m['platform']}.",
        "",
    ]
    lines += [
        "### Ingest",
        "",
        "| size | backend | events | nodes | events/s | floor events/s | floor ratio | peak RSS MB | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        target = TARGETS[r["backend"]]
        floor = r.get("ingest_floor", {}).get("events_per_s")
        eps = r["ingest"]["events_per_s"]
        if eps is None:
            lines.append(
                f"| {r['size']} | {r['backend']} | {r['ingest']['events']:,} | {sum(r['graph'].values()):,} | "
                f"see note | | | | {r.get('note', '')} |"
            )
            continue
        ratio = f"{floor / eps:.1f}x slower" if floor else ""
        lines.append(
            f"| {r['size']} | {r['backend']} | {r['ingest']['events']:,} | {sum(r['graph'].values()):,} | "
            f"{eps:,} | {f'{floor:,}' if floor else ''} | {ratio} | {r['ingest'].get('peak_rss_mb', '')} | "
            f"{verdict(eps, target.get('ingest_events_per_s'), True)} (>= {target.get('ingest_events_per_s'):,}/s) |"
        )
    lines += [
        "",
        "### Traversals (median / p95 ms over repeated runs; result size)",
        "",
        "The floor is networkx's unbounded ancestors (or descendants) of the same start nodes, so for",
        "depth-bounded rows the ratio compares a bounded walk with the whole closure.",
        "",
        "| size | backend | query | p50 ms | p95 ms | nodes | floor p50 ms | x floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t = r["traversal"]
        for key, v in t.items():
            if key.startswith("floor_") or "p50_ms" not in v:
                continue
            name = key.removeprefix("closure_")
            floor_key = (
                "floor_" + "_".join(name.split("_")[:2]) if name.startswith(("upstream", "downstream")) else None
            )
            floor = t.get(floor_key, {}).get("p50_ms") if floor_key else None
            ratio = v["p50_ms"] / floor if floor else None
            times_floor = "" if ratio is None else f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"
            lines.append(
                f"| {r['size']} | {r['backend']} | {key} | {v['p50_ms']} | {v['p95_ms']} | {v.get('nodes', '')} | "
                f"{floor or ''} | {times_floor} |"
            )
    lines += ["", "### HTTP, report, SHAP", "", "| size | measure | value | target |", "|---|---|---|---|"]
    for r in results:
        target = TARGETS[r["backend"]]
        if "http" in r:
            lines.append(f"| {r['size']} | HTTP single events/s | {r['http']['single_events_per_s']:,} | |")
            lines.append(
                f"| {r['size']} | HTTP batch events/s | {r['http']['batch_events_per_s']:,} | "
                f"{verdict(r['http']['batch_events_per_s'], target.get('http_batch_events_per_s'), True)} (>= 5,000/s) |"
            )
        for workers, ka in sorted(r.get("http_keep_alive", {}).items()):
            n = workers.split("_")[1]
            lines.append(
                f"| {r['size']} | HTTP health, --workers {n}: kept-alive / new connection p50 ms | "
                f"{ka['kept_alive']['p50_ms']} / {ka['new_connection']['p50_ms']} | |"
            )
        if "report" in r:
            s = r["report"]["p50_ms"] / 1000
            lines.append(
                f"| {r['size']} | release report ({r['report']['upstream_nodes']} upstream nodes) p50 s | {s:.2f} | "
                f"{verdict(s, target.get('report_s'), False)} (<= 2 s) |"
            )
        if "graph_verify" in r:
            g = r["graph_verify"]
            lines.append(
                f"| {r['size']} | {r['backend']}: audit verify --graph, {g['whole']['entries']:,} entries replayed, "
                f"{g['whole']['rows']:,} rows compared, s | {g['whole']['seconds']} | |"
            )
            lines.append(
                f"| {r['size']} | {r['backend']}: a release's graph check ({g['release']['entries_replayed']:,} entries "
                f"replayed, {g['release']['rows']:,} rows compared) s | {g['release']['seconds']} | |"
            )
        if "shap" in r:
            lines.append(
                f"| {r['size']} | SHAP, 10,000 x 50 tree model, 1,000 rows p50 s | {r['shap']['rows_1000']['p50_ms'] / 1000:.2f} | |"
            )
            lines.append(
                f"| {r['size']} | SHAP, 10,000 x 50 tree model, all 10,000 rows p50 s | {r['shap']['rows_10000']['p50_ms'] / 1000:.2f} | |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{tables()}{END}{tail}")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
