"""Airflow as a real producer: apache-airflow 2.10 with apache-airflow-providers-openlineage, the
two-task DAG in tests/producers/airflow/orders_dag.py run by ``airflow dags test`` on SQLite (no
scheduler), its events sent over HTTP, gzipped, with an API key, to a real two-worker
``auditgraph serve`` on loopback.

Ground truth is the DAG itself: its tasks, their order, the files each declares as inlets and
outlets, and the files they really write. What the provider reports of it, found by running it and
written down here: the DAG is job ``orders_pipeline`` and each task job ``orders_pipeline.<task>``;
each task run's ``parent`` (and its ``root``) facet names the DAG run; ``dags test`` sends the DAG
run's COMPLETE but no START; a ``File(url="file:///abs/path")`` becomes namespace ``file://`` and
name ``abs/path`` (the provider strips the leading slash).

Airflow runs from its own virtualenv (``scripts/airflow-env install`` -> var/producers/airflow);
without it these tests fail in CI and skip elsewhere. Its proxies point at a closed loopback port.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import ROOT
from serving import create_key, require, serving

from lineage.ids import dataset_id

pytestmark = pytest.mark.producers

DAGS = Path(__file__).parent / "airflow"
NAMESPACE = "airflow-tests"
RAW = "order_id,customer_id,amount\n1,10,5.0\n2,11,\n3,10,2.5\n4,12,1.5\n"


def airflow_exe() -> Path:
    return require(
        ROOT / "var" / "producers" / "airflow" / "bin" / "airflow", "Airflow virtualenv", "scripts/airflow-env install"
    )


def airflow_env(base: Path, url: str, key: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE_", "AIRFLOW"))}
    transport = {
        "type": "http",
        "url": url,
        "endpoint": "api/v1/lineage",
        "compression": "gzip",
        "auth": {"type": "api_key", "apiKey": key},
    }
    env.update(
        {
            "AIRFLOW_HOME": str(base / "airflow-home"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{base}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__OPENLINEAGE__NAMESPACE": NAMESPACE,
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
            "AUDITGRAPH_AIRFLOW_DATA": str(base / "data"),
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
            "http_proxy": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


@dataclass
class DagRun:
    """One `airflow dags test` run, done; answers come from the server's HTTP API."""

    url: str
    read_key: str
    data: Path
    log: str

    def get(self, path: str, **params) -> dict:
        answer = httpx.get(
            f"{self.url}/api/v1/{path}", params=params, timeout=30, headers={"Authorization": f"Bearer {self.read_key}"}
        )
        assert answer.status_code == 200, (path, params, answer.text)
        return answer.json()

    def file(self, name: str) -> str:
        return dataset_id("file://", str(self.data / name).lstrip("/"))

    def runs_of(self, job: str) -> list[str]:
        return [e["src"] for e in self.get("nodes", id=f"job:{NAMESPACE}/{job}")["in"] if e["type"] == "RUN_OF"]

    def edges(self, node: str, direction: str, kind: str) -> list[str]:
        key = "dst" if direction == "out" else "src"
        return [e[key] for e in self.get("nodes", id=node)[direction] if e["type"] == kind]


@pytest.fixture(scope="module")
def dag_run(tmp_path_factory):
    exe = airflow_exe()
    base = tmp_path_factory.mktemp("airflow")
    (base / "data").mkdir()
    (base / "data" / "raw_orders.csv").write_text(RAW)
    store_url = f"sqlite:///{base}/store.db"
    ingest_key, read_key = create_key(store_url, "airflow", "ingest"), create_key(store_url, "airflow", "read")
    with serving(store_url, base / "server.log") as url:
        env = airflow_env(base, url, ingest_key)
        migrated = subprocess.run([str(exe), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
        assert migrated.returncode == 0, migrated.stderr[-4000:]
        done = subprocess.run(
            [str(exe), "dags", "test", "orders_pipeline", "2024-06-01"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        yield DagRun(url, read_key, base / "data", done.stdout + done.stderr)


def test_the_dag_ran_and_sent_every_event_over_http(dag_run):
    assert (dag_run.data / "customer_totals.csv").read_text().splitlines() == ["customer_id,total", "10,7.5", "12,1.5"]
    assert dag_run.log.count("Successfully emitted OpenLineage") == 5
    assert "Failed to emit" not in dag_run.log


def test_each_task_run_links_to_its_dag_run(dag_run):
    [dag] = dag_run.runs_of("orders_pipeline")
    for task in ("extract_orders", "summarize"):
        [run] = dag_run.runs_of(f"orders_pipeline.{task}")
        assert dag_run.edges(run, "out", "CHILD_OF") == [dag]
        parent = dag_run.get("nodes", id=run)["facets"]["parent"]
        assert f"run:{parent['root']['run']['runId']}" == dag
    assert sorted(dag_run.edges(dag, "in", "CHILD_OF")) == sorted(
        dag_run.runs_of("orders_pipeline.extract_orders") + dag_run.runs_of("orders_pipeline.summarize")
    )
    assert dag_run.get("nodes", id=dag)["facets"]["_state"]["eventType"] == "COMPLETE"


def test_the_declared_files_flow_from_task_to_task(dag_run):
    [extract] = dag_run.runs_of("orders_pipeline.extract_orders")
    [summarize] = dag_run.runs_of("orders_pipeline.summarize")
    staged = f"{dag_run.file('staged_orders.csv')}@{extract.removeprefix('run:')}"
    assert dag_run.edges(extract, "in", "READ_BY") == [f"{dag_run.file('raw_orders.csv')}@unversioned"]
    assert dag_run.edges(extract, "out", "WROTE") == [staged]
    assert dag_run.edges(summarize, "in", "READ_BY") == [staged]
    assert dag_run.edges(summarize, "out", "WROTE") == [
        f"{dag_run.file('customer_totals.csv')}@{summarize.removeprefix('run:')}"
    ]
    path = dag_run.get("path", **{"from": dag_run.file("raw_orders.csv"), "to": dag_run.file("customer_totals.csv")})
    assert path["found"] is True and extract in path["nodes"] and summarize in path["nodes"]
    impact = json.dumps(dag_run.get("impact", id=dag_run.file("raw_orders.csv")))
    assert all(node in impact for node in (dag_run.file("customer_totals.csv"), "orders_pipeline.summarize"))
