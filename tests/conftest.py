"""Fixtures shared by the whole suite.

``store`` is parametrised over every registered backend (the ``auditgraph.stores``
entry points, ``lineage.store.backends()``): the contract tests are written once
and run on each, on a fresh store that ``TEST_STORES`` makes. Schemes served by
one builder (neo4j, neo4j+s, bolt, ...) are one backend and run the suite once.
A registered backend ``TEST_STORES`` cannot make a store of fails the suite.
SQLite always runs; Neo4j runs when AUDITGRAPH_TEST_NEO4J_URL names a server
(``.ci/run`` starts one). In CI (CI=true) a missing Neo4j is a failure, never a
silent skip.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from lineage.graphcheck import snapshot  # noqa: F401  the whole projected graph, by part and key: what tests compare
from lineage.ingest import Document, ingest, read_documents
from lineage.store import backends as registered_backends
from lineage.store import open_store

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDITGRAPH_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpus" / "openlineage"
SCENARIOS = CORPUS / "valid" / "compatibility-tests" / "consumer" / "scenarios"
NEO4J_URL = os.environ.get("AUDITGRAPH_TEST_NEO4J_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"


def fresh_sqlite(tmp_path: Path):
    return open_store(f"sqlite:///{tmp_path}/store.db")


def fresh_neo4j(tmp_path: Path):
    if not NEO4J_URL:
        if IN_CI:
            pytest.fail("CI=true but AUDITGRAPH_TEST_NEO4J_URL is not set: .ci/run must start Neo4j")
        pytest.skip("no Neo4j server: set AUDITGRAPH_TEST_NEO4J_URL (scripts/neo4j-server start prints it)")
    store = open_store(NEO4J_URL)
    store.drop_everything(confirm=True)
    return store


# How the suite makes a fresh, empty store, by scheme: a backend runs the contract suite on the first of its
# schemes listed here. A third party's backend adds its own line (and its marks, if it needs a server).
TEST_STORES = {"sqlite": fresh_sqlite, "neo4j": fresh_neo4j}
MARKS = {"neo4j": [pytest.mark.neo4j]}


def backends() -> list:
    """One pytest param per registered backend (builder), named by the scheme the suite opens it with."""
    by_builder: dict[str, list[str]] = {}
    for scheme, entry_point in registered_backends().items():
        by_builder.setdefault(entry_point.value, []).append(scheme)
    tested = [next((s for s in schemes if s in TEST_STORES), schemes[0]) for schemes in by_builder.values()]
    return [pytest.param(scheme, marks=MARKS.get(scheme, []), id=scheme) for scheme in tested]


def make_store(scheme: str, tmp_path: Path):
    """A fresh, empty store of the backend registered for ``scheme``."""
    if scheme not in TEST_STORES:
        registered = registered_backends().get(scheme)
        pytest.fail(
            f"the {scheme}:// store backend ({registered.value if registered else 'not registered'}) has no "
            "way to make a test store: add one to TEST_STORES in tests/conftest.py, so that the contract "
            "suite runs on it"
        )
    return TEST_STORES[scheme](tmp_path)


@pytest.fixture(params=backends())
def store(request, tmp_path):
    s = make_store(request.param, tmp_path)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path}/store.db")
    yield s
    s.close()


def corpus_files(*parts: str) -> list[Path]:
    base = CORPUS.joinpath(*parts)
    return sorted(p for p in base.rglob("*.json"))


def scenario_files(name: str) -> list[Path]:
    files = list((SCENARIOS / name / "events").glob("*.json"))
    return sorted(files, key=lambda p: (len(p.stem), p.stem))


def documents(paths: list[Path]):
    for path in paths:
        with open(path, "rb") as stream:
            yield from read_documents(stream, str(path))


def ingest_files(store, paths: list[Path], actor: str = "test"):
    return ingest(store, documents(paths), actor)


def ingest_events(store, events: list[dict], actor: str = "test"):
    return ingest(store, (Document(f"event[{i}]", value=e) for i, e in enumerate(events)), actor)


def run_event(
    job: str,
    run: str | None = None,
    *,
    event_type: str | None = "COMPLETE",
    time: str = "2024-05-01T10:00:00Z",
    inputs=(),
    outputs=(),
    namespace: str = "test",
    run_facets: dict | None = None,
    job_facets: dict | None = None,
) -> dict:
    """A minimal, spec-valid RunEvent; datasets are (namespace, name) or full dicts."""

    def ds(item):
        return item if isinstance(item, dict) else {"namespace": item[0], "name": item[1]}

    event = {
        "eventTime": time,
        "producer": "https://example.com/auditgraph-tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run or str(uuid.uuid4()), "facets": run_facets or {}},
        "job": {"namespace": namespace, "name": job, "facets": job_facets or {}},
        "inputs": [ds(i) for i in inputs],
        "outputs": [ds(o) for o in outputs],
    }
    if event_type is not None:
        event["eventType"] = event_type
    return event


def load(path: Path):
    return json.loads(path.read_text())


# --- a real HTTP server on loopback --------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(config):
    """Run the app under uvicorn on a free loopback port; yield its base URL."""
    import uvicorn

    from lineage.server.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_until(predicate, timeout: float = 15, what: str = "the condition"):
    """Poll ``predicate`` until it returns something true, and return that; fail after ``timeout`` seconds.

    For what a test cannot be told about (a row a background thread writes, a line in a server's
    log); when there is a ``threading.Event`` to wait on, wait on it instead.
    """
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return value


# --- a real model trained on Adult (without sex and race), recorded through the SDK ---------

ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]


@pytest.fixture(scope="session")
def adult(tmp_path_factory):
    import pandas as pd
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder
    from skops.io import dump

    from lineage.sdk import TrainingRun

    base = tmp_path_factory.mktemp("adult")
    d = pd.read_csv(SHARED / "data/adult/adult.data", header=None, names=ADULT_COLUMNS, skipinitialspace=True).dropna()
    csv = base / "adult.csv"
    d.to_csv(csv, index=False)
    X = d.drop(columns=["income", "sex", "race"])
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    model = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), categorical)],
                    remainder="passthrough",
                    verbose_feature_names_out=False,
                ),
            ),
            ("gbm", GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0)),
        ]
    ).fit(X, (d.income == ">50K").astype(int))
    path = base / "income.skops"
    dump(model, path)
    log = base / "events.jsonl"
    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(log), append=True)))
    with TrainingRun("train_income", namespace="ml", code_path=base, client=client) as run:
        run.input("file", str(csv))
        run.model("ml", "income", path=path, version="1", framework="sklearn", task="binary-classification")
    url = f"sqlite:///{base}/adult.db"
    with open_store(url) as store, open(log, "rb") as f:
        assert ingest(store, read_documents(f, "events"), "test").accepted == 2
    return {"url": url, "csv": csv, "model_file": path, "model": model, "data": d, "base": base, "events": log}
