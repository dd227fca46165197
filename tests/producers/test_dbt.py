"""dbt as a real producer: the small dbt project in tests/producers/dbt, on DuckDB, run by dbt-ol
(openlineage-dbt) in both of its modes, its events sent over HTTP to a real `auditgraph serve`.

Ground truth is dbt's own target/manifest.json (parent_map, child_map, declared columns) and
run_results.json (which node succeeded). What the producer reports of that DAG differs by mode,
and is written down here rather than guessed:

- default mode (reads run_results.json after dbt ends): model and source parents only, so a
  seed is never an input; column lineage parsed from each model's compiled SQL.
- ``--consume-structured-logs`` (reads dbt's JSON log while it runs): seed parents too, each seed
  a job, and each dbt test a job that writes its audit table; no column lineage.

The pipeline, the same in both modes: ``build`` (everything; ``order_audit`` always fails), then
``run -s customer_revenue`` with SHOP_BREAK_REVENUE set (fails: the table keeps the data of the
build), then ``run -s top_customers`` (reads ``customer_revenue``).

dbt runs from its own virtualenv (``scripts/producer-env dbt`` -> var/producers/dbt, or
AUDITGRAPH_DBT_VENV); without it these tests fail in CI and skip elsewhere. Nothing reaches past
loopback: dbt's usage statistics are off, and HTTP clients that honour a proxy are sent to a
closed port for anything but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import ROOT
from serving import cli, create_key, require, start_server

from lineage.ids import dataset_id, parse_id

pytestmark = pytest.mark.producers

PROJECT = Path(__file__).parent / "dbt"
VENV = Path(os.environ.get("AUDITGRAPH_DBT_VENV", ROOT / "var" / "producers" / "dbt"))
MODES = ("artifacts", "structured-logs")
# What each mode reports as a node's inputs (manifest node id prefixes).
VISIBLE_PARENTS = {"artifacts": ("model.", "source."), "structured-logs": ("model.", "source.", "seed.")}
FAILED_ONLY = "model.shop.order_audit"

# Column lineage of each model, as its SQL in tests/producers/dbt/models says:
# {model: {column: {(parent node, parent column), ...}}}.
SQL_COLUMNS = {
    "model.shop.stg_customers": {
        "customer_id": {("seed.shop.raw_customers", "id")},
        "customer_name": {("seed.shop.raw_customers", "first_name"), ("seed.shop.raw_customers", "last_name")},
        "country": {("seed.shop.raw_customers", "country")},
    },
    "model.shop.stg_orders": {
        "order_id": {("seed.shop.raw_orders", "id")},
        "customer_id": {("seed.shop.raw_orders", "customer_id")},
        "ordered_on": {("seed.shop.raw_orders", "order_date")},
        "amount": {("seed.shop.raw_orders", "amount_cents")},
        "status": {("seed.shop.raw_orders", "status")},
    },
    "model.shop.customer_revenue": {
        "customer_id": {("model.shop.stg_customers", "customer_id")},
        "customer_name": {("model.shop.stg_customers", "customer_name")},
        "revenue": {("model.shop.stg_orders", "amount")},
    },
    "model.shop.top_customers": {
        c: {("model.shop.customer_revenue", c)} for c in ("customer_id", "customer_name", "revenue")
    },
}


def dbt_ol() -> Path:
    return require(VENV / "bin" / "dbt-ol", "dbt virtualenv", "scripts/producer-env dbt (or set AUDITGRAPH_DBT_VENV)")


@dataclass
class Pipeline:
    """One run of the pipeline against its own server; the answers come from its HTTP API."""

    mode: str
    url: str
    read_key: str
    namespace: str
    manifest: dict
    statuses: dict
    emitted: list[int] = field(default_factory=list)
    revenue_after_build: list[str] = field(default_factory=list)
    top_after_build: list[str] = field(default_factory=list)
    store_url: str = ""

    def get(self, path: str, **params) -> dict:
        answer = httpx.get(
            f"{self.url}/api/v1/{path}", params=params, timeout=30, headers={"Authorization": f"Bearer {self.read_key}"}
        )
        assert answer.status_code == 200, (path, params, answer.text)
        return answer.json()

    def dataset(self, node: str) -> str:
        n = self.manifest["nodes"][node]
        return dataset_id(self.namespace, f"{n['database']}.{n['schema']}.{n['alias']}")

    def succeeded(self, node: str) -> bool:
        return self.statuses.get(node) == "success"

    def reported(self, node: str) -> bool:
        """Whether this producer mode reports the node's relation as a dataset."""
        return node.startswith(VISIBLE_PARENTS[self.mode]) and (self.succeeded(node) or node == FAILED_ONLY)

    def versions(self, dataset: str) -> list[str]:
        return [v["id"] for v in self.get("history", id=dataset)["versions"]]


def entity(version_id: str) -> str:
    node = parse_id(version_id)
    return dataset_id(node.namespace, node.name)


def dbt_env(project: Path, duckdb: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE_", "DBT_"))}
    env.update(
        {
            "PATH": f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}",  # dbt-ol runs `dbt` from PATH
            "DBT_PROFILES_DIR": str(project),
            "DBT_DUCKDB_PATH": str(duckdb),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
            "http_proxy": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


def point_at(env: dict, mode: str, project: Path, url: str, key: str) -> None:
    """Both ways users configure the OpenLineage client: environment, or an openlineage.yml."""
    if mode == "artifacts":
        env.update({"OPENLINEAGE_URL": url, "OPENLINEAGE_API_KEY": key})
        return
    config = project / "openlineage.yml"
    config.write_text(
        json.dumps(
            {
                "transport": {
                    "type": "http",
                    "url": url,
                    "compression": "gzip",
                    "auth": {"type": "api_key", "apiKey": key},
                }
            }
        )
    )
    env["OPENLINEAGE_CONFIG"] = str(config)


def run_dbt(exe: Path, mode: str, project: Path, env: dict, *args: str, expect: int) -> int:
    extra = ["--consume-structured-logs"] if mode == "structured-logs" else []
    done = subprocess.run(
        [str(exe), *args, "--project-dir", str(project), *extra],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout + done.stderr
    assert done.returncode == expect, out
    assert "failed to emit" not in out, out
    emitted = re.findall(r"Emitted (\d+) OpenLineage events", out)
    assert emitted, out
    return int(emitted[-1])


def run_pipeline(mode: str, home: Path, workers: int) -> Pipeline:
    exe = dbt_ol()
    project = home / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    duckdb, store_url = home / "shop.duckdb", f"sqlite:///{home}/store.db"
    ingest_key, read_key = create_key(store_url, "dbt", "ingest"), create_key(store_url, "dbt", "read")
    server, url = start_server(store_url, home / "server.log", workers)
    try:
        env = dbt_env(project, duckdb)
        point_at(env, mode, project, url, ingest_key)
        emitted = [run_dbt(exe, mode, project, env, "build", expect=1)]
        target = project / "target"
        manifest = json.loads((target / "manifest.json").read_text())
        statuses = {
            r["unique_id"]: r["status"] for r in json.loads((target / "run_results.json").read_text())["results"]
        }
        p = Pipeline(mode, url, read_key, f"duckdb://{duckdb}", manifest, statuses, store_url=store_url)
        p.revenue_after_build = p.versions(p.dataset("model.shop.customer_revenue"))
        p.top_after_build = p.versions(p.dataset("model.shop.top_customers"))
        emitted.append(
            run_dbt(exe, mode, project, {**env, "SHOP_BREAK_REVENUE": "1"}, "run", "-s", "customer_revenue", expect=1)
        )
        emitted.append(run_dbt(exe, mode, project, env, "run", "-s", "top_customers", expect=0))
        p.emitted = emitted
        yield p
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    yield from run_pipeline("artifacts", tmp_path_factory.mktemp("dbt-artifacts"), workers=1)


@pytest.fixture(scope="module")
def structured_logs(tmp_path_factory):
    # The live mode posts one event per request over kept-alive connections: two workers.
    yield from run_pipeline("structured-logs", tmp_path_factory.mktemp("dbt-structured"), workers=2)


@pytest.fixture(params=MODES)
def pipeline(request) -> Pipeline:
    return request.getfixturevalue(request.param.replace("-", "_"))


def manifest_relations(p: Pipeline, resource_types=("model", "seed", "snapshot", "test")) -> set[str]:
    return {p.dataset(n) for n, node in p.manifest["nodes"].items() if node["resource_type"] in resource_types}


def datasets_at(answer: dict, distance: int) -> set[str]:
    return {entity(n["id"]) for n in answer["nodes"] if n["kind"] == "DatasetVersion" and n["distance"] == distance}


def test_every_event_dbt_ol_emitted_is_in_the_ledger_and_the_chain_verifies(pipeline):
    logged = cli(
        "audit", "log", "--kind", "openlineage.event", "--limit", "100000", "--json", "--store", pipeline.store_url
    )
    assert logged.returncode == 0, logged.stderr
    entries = json.loads(logged.stdout)
    assert len(entries) == sum(pipeline.emitted) > 0
    assert all(e["actor"].endswith(":dbt-ingest") for e in entries), {e["actor"] for e in entries}
    verified = cli("audit", "verify", "--store", pipeline.store_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_upstream_of_every_built_model_is_its_parents_in_the_manifest(pipeline):
    models = [
        n
        for n, node in pipeline.manifest["nodes"].items()
        if node["resource_type"] == "model" and pipeline.succeeded(n)
    ]
    assert len(models) == 4
    for model in models:
        expected = {
            pipeline.dataset(parent) for parent in pipeline.manifest["parent_map"][model] if pipeline.reported(parent)
        }
        answer = pipeline.get("upstream", id=pipeline.dataset(model), depth=2)
        assert datasets_at(answer, 2) == expected, model


def test_downstream_of_every_dataset_is_its_children_in_the_manifest(pipeline):
    """Children that are models or seeds match the manifest (the model that only ever failed is
    left out on both sides: whether it counts is the failed-run test's question); nothing else
    downstream is a relation dbt does not know."""
    known, tables = manifest_relations(pipeline), manifest_relations(pipeline, ("model", "seed"))
    failed = pipeline.dataset(FAILED_ONLY)
    roots = [n for n in pipeline.manifest["nodes"] if pipeline.reported(n) and n != FAILED_ONLY]
    assert len(roots) == {"artifacts": 4, "structured-logs": 6}[pipeline.mode]
    for node in roots:
        expected = {
            pipeline.dataset(child) for child in pipeline.manifest["child_map"][node] if pipeline.reported(child)
        } - {failed}
        found = datasets_at(pipeline.get("downstream", id=pipeline.dataset(node), depth=2), 2)
        assert (found & tables) - {failed} == expected, node
        assert found <= known, (node, found - known)


def manifest_impact(p: Pipeline, root: str) -> dict[str, int]:
    """Distance in jobs from root to every model or seed that dbt built from it (breadth-first)."""
    distances, queue = {}, deque([(root, 0)])
    while queue:
        node, hops = queue.popleft()
        for child in p.manifest["child_map"][node]:
            if child not in distances and p.reported(child) and child != FAILED_ONLY:
                distances[child] = hops + 1
                queue.append((child, hops + 1))
    return {p.dataset(n): d for n, d in distances.items()}


def test_impact_of_every_dataset_is_what_dbt_built_from_it_at_its_distance(pipeline):
    tables, failed = manifest_relations(pipeline, ("model", "seed")), pipeline.dataset(FAILED_ONLY)
    roots = [n for n in pipeline.manifest["nodes"] if pipeline.reported(n) and n != FAILED_ONLY]
    for node in roots:
        answer = pipeline.get("impact", id=pipeline.dataset(node))
        found = {
            d: level["distance"] for level in answer["levels"] for d in level["datasets"] if d in tables and d != failed
        }
        assert found == manifest_impact(pipeline, node), node
        assert not answer["truncated"]
    staging = manifest_impact(pipeline, "model.shop.stg_orders")
    assert staging == {
        pipeline.dataset("model.shop.customer_revenue"): 1,
        pipeline.dataset("model.shop.top_customers"): 2,
    }


def upstream_columns(p: Pipeline, dataset: str, column: str) -> set[tuple[str, str]]:
    answer = p.get("columns", dataset=dataset, field=column, depth=1)
    return {
        (e["src"], e["src_field"])
        for e in answer["edges"]
        if e["direction"] == "upstream" and e["dst"] == dataset and e["dst_field"] == column
    }


def test_column_lineage_of_every_model_matches_its_sql_and_the_manifest_columns(artifacts):
    """Only the default mode sends column lineage (parsed from the compiled SQL)."""
    p = artifacts
    for model, columns in SQL_COLUMNS.items():
        node = p.manifest["nodes"][model]
        assert set(columns) == set(node["columns"]), model  # the expectation names dbt's declared columns
        for column, sources in columns.items():
            for parent, parent_column in sources:  # and only parents and columns the manifest declares
                assert parent in p.manifest["parent_map"][model]
                assert parent_column in p.manifest["nodes"][parent]["columns"]
            expected = {(p.dataset(parent), parent_column) for parent, parent_column in sources}
            assert upstream_columns(p, p.dataset(model), column) == expected, (model, column)


def test_a_seed_named_only_by_column_lineage_is_a_node_with_its_fields(artifacts):
    """The default mode names seeds only as sources of column lineage (issue 15 item 3)."""
    for seed in ("seed.shop.raw_customers", "seed.shop.raw_orders"):
        node = artifacts.get("nodes", id=artifacts.dataset(seed))
        assert node["kind"] == "Dataset"
        used = {f for fields in SQL_COLUMNS.values() for sources in fields.values() for s, f in sources if s == seed}
        for column in used:
            answer = artifacts.get("columns", dataset=artifacts.dataset(seed), field=column, depth=1)
            assert {e["src"] for e in answer["edges"] if e["direction"] == "downstream"} == {artifacts.dataset(seed)}


def test_a_failed_model_run_creates_no_version_that_later_reads_bind_to(pipeline):
    """customer_revenue failed in the second run, so the table still holds the build's data: the
    third run's read of it binds to the build's version."""
    good = pipeline.revenue_after_build
    assert len(good) == 1
    top = pipeline.dataset("model.shop.top_customers")
    newest = [v for v in pipeline.versions(top) if v not in pipeline.top_after_build]
    assert len(newest) == 1
    read = {
        n["id"]
        for n in pipeline.get("upstream", id=newest[0], depth=2)["nodes"]
        if n["kind"] == "DatasetVersion" and n["distance"] == 2
    }
    assert read == set(good)


def test_a_model_that_only_ever_failed_is_not_in_impact_unless_failed_runs_are_asked_for(pipeline):
    failed, root = pipeline.dataset(FAILED_ONLY), pipeline.dataset("model.shop.stg_orders")

    def impacted(**params) -> set[str]:
        return {d for level in pipeline.get("impact", id=root, **params)["levels"] for d in level["datasets"]}

    assert failed not in impacted()
    assert failed in impacted(include_failed="true")
