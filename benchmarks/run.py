"""The benchmark suite. One command:

    python -m benchmarks.run --size 10k            # also 100k, 1m; --neo4j URL adds the Neo4j backend
    python -m benchmarks.run --size 1m --neo4j URL --neo4j-only   # Neo4j alone (its floor graph read from it)

It generates (or reuses) the seeded dataset, then measures, each over repeated
runs with median and p95, and peak RSS where it matters:

* bulk ingest from JSONL through the CLI (events/s), and the ingest floor: the
  same events parsed and inserted raw into SQLite in one transaction;
* HTTP ingest, single events and batches, against a real server on loopback;
* upstream, downstream and impact from models and sources at depth 5, 20 and
  unbounded, and the traversal floor: networkx ancestors/descendants on the
  same graph in memory;
* ``lineage show`` and ``search``;
* the release report of the model version with the largest upstream;
* ``audit verify --graph`` (the whole ledger replayed into a scratch store, every row compared)
  and the check every release makes (only what the gate reads of that model version);
* SHAP explanation of a 10,000-row, 50-feature tree model.

Results go to ``benchmarks/results/<size>-<backend>.json``; ``--markdown``
rewrites the tables in BENCHMARKS.md from every results file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
RESULTS = ROOT / "benchmarks" / "results"
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
TARGETS = {
    "sqlite": {
        "ingest_events_per_s": 20_000,
        "ingest_peak_rss_mb": 300,
        "upstream_model_unbounded_p50_ms": 20,
        "upstream_vs_floor": 5,
        "http_batch_events_per_s": 5_000,
        "report_s": 2,
    },
    "neo4j": {"ingest_events_per_s": 10_000, "upstream_model_unbounded_p50_ms": 30},
}


def timings(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p95_ms": round(samples[min(len(samples) - 1, int(0.95 * len(samples)))], 3),
        "runs": repeat,
    }


def machine() -> dict[str, Any]:
    mem = next((int(line.split()[1]) // 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal")), None)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_mb": mem,
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }


def dataset(size: str) -> Path:
    path = DATA / f"{size}.jsonl"
    if not path.exists():
        from benchmarks.generate import write

        write(SIZES[size], path)
    return path


def cli_ingest(path: Path, url: str) -> dict[str, Any]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "lineage", "ingest", str(path), "--store", url, "--no-progress", "--json"],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    report = json.loads(done.stdout)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "events": report["accepted"],
        "seconds": round(seconds, 2),
        "events_per_s": round(report["accepted"] / seconds),
        "peak_rss_mb": round(rss),
    }


def ingest_floor(path: Path) -> dict[str, Any]:
    """The same events, parsed and inserted raw into SQLite in one transaction: what any store must at least pay."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(f"{tmp}/floor.db", isolation_level=None)
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, run TEXT, body TEXT)")
        start = time.perf_counter()
        db.execute("BEGIN")
        count = 0
        with open(path) as f:
            for line in f:
                event = json.loads(line)
                db.execute("INSERT INTO events (run, body) VALUES (?, ?)", (event["run"]["runId"], line))
                count += 1
        db.execute("COMMIT")
        seconds = time.perf_counter() - start
        db.close()
    return {"events": count, "seconds": round(seconds, 2), "events_per_s": round(count / seconds)}


def graph_floor(store_path: Path):
    import networkx as nx

    db = sqlite3.connect(store_path)
    graph = nx.DiGraph()
    graph.add_edges_from(db.execute("SELECT src, dst FROM edges WHERE type IN ('READ_BY', 'WROTE', 'BUILT')"))
    db.close()
    return graph


def graph_floor_neo4j(store):
    """The same floor graph, read from a Neo4j store (for --neo4j-only runs)."""
    import networkx as nx

    graph = nx.DiGraph()
    rows = store._read("MATCH (a:Node)-[r:READ_BY|WROTE|BUILT]->(b:Node) RETURN a.id AS src, b.id AS dst")
    graph.add_edges_from((r["src"], r["dst"]) for r in rows)
    return graph


def pick_subjects(store) -> dict[str, str]:
    """The model version with the deepest history, and a source dataset that feeds many models."""
    from lineage.graph import Graph

    models = [r.id for r in Graph(store).search("model:", kinds=["model"], limit=10_000) if "@" in r.id]
    latest = max(models, key=lambda m: int(m.rsplit("@", 1)[1]))
    sources = [r.id for r in Graph(store).search("dataset:postgres", kinds=["dataset"], limit=50) if "@" not in r.id]
    return {"model": latest, "source": sources[0]}


def traversals(store, floor, subjects: dict[str, str], repeat: int) -> dict[str, Any]:
    import networkx as nx

    from lineage.graph import Graph
    from lineage.projection import FLOW_EDGES

    out: dict[str, Any] = {}
    for name, node, direction in (
        ("model", subjects["model"], "upstream"),
        ("source", subjects["source"], "downstream"),
    ):
        for depth in (5, 20, None):
            walk = Graph(store).traverse(node, direction, depth=depth, max_nodes=1_000_000)
            key = f"{direction}_{name}_{'unbounded' if depth is None else f'd{depth}'}"
            out[key] = {
                **timings(lambda: Graph(store).traverse(node, direction, depth=depth, max_nodes=1_000_000), repeat),
                "nodes": len(walk.nodes),
                "truncated": walk.truncated,
            }
        starts = Graph(store)._expand(Graph(store).resolve(node), None)
        walker = nx.ancestors if direction == "upstream" else nx.descendants
        out[f"floor_{direction}_{name}"] = timings(lambda: set().union(*(walker(floor, s) for s in starts)), repeat)
        # the closure alone (reachable set and distances), which is what the networkx floor computes;
        # the figures above also resolve the id, annotate kinds and jobs and build the full answer
        out[f"closure_{direction}_{name}"] = timings(
            lambda: store.walk(starts, direction, FLOW_EDGES, None, None, 1_000_000), repeat
        )
    out["impact_source"] = timings(lambda: Graph(store).impact(subjects["source"], max_nodes=1_000_000), repeat)
    out["show_model"] = timings(lambda: Graph(store).node(subjects["model"]), repeat)
    out["search"] = timings(lambda: Graph(store).search("features/p1", limit=50), repeat)
    return out


def http_ingest(path: Path, count: int = 2000) -> dict[str, Any]:
    """Single events and 500-event batches posted to ``auditgraph serve`` running as its own process
    on loopback, as deployed (the client runs here, on the other core)."""
    import socket

    import httpx

    from lineage.server import auth
    from lineage.store import open_store

    events = []
    with open(path) as f:
        for line in f:
            events.append(json.loads(line))
            if len(events) >= count:
                break
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/http.db"
        with open_store(url) as store:
            _, token = auth.create_key(store, "bench", ["ingest"], "bench")
        headers = {"Authorization": f"Bearer {token}"}
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lineage",
                "serve",
                "--store",
                url,
                "--port",
                str(port),
                "--no-webhooks",
                "--max-body-bytes",
                str(256 << 20),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(timeout=120) as client:
                _wait_for(client, f"{base}/api/v1/health", server)
                single = events[: count // 4]
                start = time.perf_counter()
                for e in single:
                    client.post(f"{base}/api/v1/lineage", json=e, headers=headers).raise_for_status()
                result["single_events_per_s"] = round(len(single) / (time.perf_counter() - start))
                batch = events[count // 4 :]
                start = time.perf_counter()
                for i in range(0, len(batch), 500):
                    client.post(
                        f"{base}/api/v1/lineage/batch", json=batch[i : i + 500], headers=headers
                    ).raise_for_status()
                result["batch_events_per_s"] = round(len(batch) / (time.perf_counter() - start))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return result


def http_keep_alive(requests: int = 200) -> dict[str, Any]:
    """GET /api/v1/health against ``auditgraph serve --workers 1`` and ``--workers 2`` (each its own
    process on loopback): on one kept-alive connection, as every producer's HTTP client holds it,
    and on a new connection per request."""
    import socket

    import httpx

    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lineage",
                    "serve",
                    "--store",
                    f"sqlite:///{tmp}/ka.db",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                    "--no-webhooks",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            url = f"http://127.0.0.1:{port}/api/v1/health"
            try:
                with httpx.Client(timeout=30) as client:
                    _wait_for(client, url, server)
                    kept = timings(lambda: client.get(url).raise_for_status(), requests)
                    close = {"Connection": "close"}  # the server closes it: the next request connects anew
                    fresh = timings(lambda: client.get(url, headers=close).raise_for_status(), requests)
                result[f"workers_{workers}"] = {"kept_alive": kept, "new_connection": fresh}
            finally:
                server.terminate()
                server.wait(timeout=30)
    return result


def _wait_for(client, url: str, server: subprocess.Popen, seconds: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"auditgraph serve exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if client.get(url).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("auditgraph serve did not answer in time")


def report(store, model: str, repeat: int = 3) -> dict[str, Any]:
    from lineage.graph import Graph
    from reports.issue import issue

    with tempfile.TemporaryDirectory() as tmp:
        walk = Graph(store).traverse(model, "upstream", max_nodes=1_000_000)
        t = timings(lambda: issue(store, model, Path(tmp), ["html", "md", "json"], "bench"), repeat)
    return {**t, "upstream_nodes": len(walk.nodes)}


def graph_verify(store, model: str) -> dict[str, Any]:
    """``audit verify --graph`` once (a full replay), and the graph check a release of ``model`` makes."""
    from lineage.graphcheck import check_graph, check_upstream

    start = time.perf_counter()
    whole = check_graph(store)
    whole_s = time.perf_counter() - start
    start = time.perf_counter()
    release = check_upstream(store, model)
    release_s = time.perf_counter() - start
    return {
        "whole": {
            "seconds": round(whole_s, 2),
            "entries": whole.entries,
            "entries_per_s": round(whole.entries / whole_s),
            "rows": sum(whole.compared.values()),
            "ok": whole.ok,
        },
        "release": {
            "seconds": round(release_s, 2),
            "entries_replayed": release.entries,
            "rows": sum(release.compared.values()),
            "scope": release.scope,
            "ok": release.ok,
        },
    }


def shap_benchmark(repeat: int = 3) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import GradientBoostingClassifier

    from governance.explain import explain

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(10_000, 50)), columns=[f"f{i}" for i in range(50)])
    y = (X.f0 + X.f1 * X.f2 + rng.normal(scale=0.5, size=10_000) > 0).astype(int)
    model = GradientBoostingClassifier(n_estimators=100, max_depth=4, random_state=0).fit(X, y)
    result = {}
    for rows in (1_000, 10_000):
        t = timings(lambda: explain(model, X, max_rows=rows), repeat)
        result[f"rows_{rows}"] = t
    result["additivity_max"] = explain(model, X, max_rows=1000)["additivity"]["max"]
    return result


def run(size: str, neo4j: str | None, repeat: int, skip: set[str], neo4j_only: bool = False) -> list[Path]:
    from lineage.store import open_store

    path = dataset(size)
    written = []
    if neo4j_only:
        return [save(run_neo4j(size, path, neo4j, None, None, repeat, skip))]
    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(tmp) / "bench.db"
        results: dict[str, Any] = {
            "size": size,
            "backend": "sqlite",
            "machine": machine(),
            "events": sum(1 for _ in open(path)),
        }
        results["ingest"] = cli_ingest(path, f"sqlite:///{store_path}")
        results["ingest_floor"] = ingest_floor(path)
        with open_store(f"sqlite:///{store_path}") as store:
            results["graph"] = store.stats()["nodes"]
            subjects = pick_subjects(store)
            results["subjects"] = subjects
            results["traversal"] = traversals(store, graph_floor(store_path), subjects, repeat)
            if "report" not in skip:
                results["report"] = report(store, subjects["model"])
            if "graph" not in skip:
                results["graph_verify"] = graph_verify(store, subjects["model"])
        if "http" not in skip:
            results["http"] = http_ingest(path)
            results["http_keep_alive"] = http_keep_alive()
        if "shap" not in skip:
            results["shap"] = shap_benchmark()
        written.append(save(results))
        if neo4j:
            written.append(save(run_neo4j(size, path, neo4j, store_path, subjects, repeat, skip)))
    return written


def run_neo4j(
    size: str,
    path: Path,
    url: str,
    sqlite_path: Path | None,
    subjects: dict[str, str] | None,
    repeat: int,
    skip: frozenset[str] | set[str] = frozenset(),
) -> dict[str, Any]:
    from lineage.store import open_store

    with open_store(url) as store:
        store.drop_everything(confirm=True)
    results: dict[str, Any] = {"size": size, "backend": "neo4j", "machine": machine()}
    results["ingest"] = cli_ingest(path, url)
    with open_store(url) as store:
        results["graph"] = store.stats()["nodes"]
        subjects = subjects or pick_subjects(store)
        floor = graph_floor(sqlite_path) if sqlite_path else graph_floor_neo4j(store)
        results["traversal"] = traversals(store, floor, subjects, repeat)
        if "graph" not in skip:
            results["graph_verify"] = graph_verify(store, subjects["model"])
    return results


def save(results: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{results['size']}-{results['backend']}.json"
    results["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="auditgraph benchmarks")
    parser.add_argument("--size", choices=SIZES, default="10k")
    parser.add_argument("--neo4j", metavar="URL", help="Also benchmark this Neo4j server (it is wiped first).")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--skip", action="append", default=[], choices=["http", "report", "shap", "graph"])
    parser.add_argument("--neo4j-only", action="store_true", help="Benchmark only the Neo4j server given by --neo4j.")
    args = parser.parse_args()
    if args.neo4j_only and not args.neo4j:
        parser.error("--neo4j-only needs --neo4j URL")
    run(args.size, args.neo4j, args.repeat, set(args.skip), args.neo4j_only)


if __name__ == "__main__":
    main()
