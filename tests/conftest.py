"""Fixtures shared by the whole suite.

``store`` is parametrised over every backend: the contract tests are written
once and run on each. SQLite always runs; Neo4j runs when
AUDITGRAPH_TEST_NEO4J_URL names a server (``.ci/run`` starts one). In CI
(CI=true) a missing Neo4j is a failure, never a silent skip.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from lineage.ingest import Document, ingest, read_documents
from lineage.store import open_store

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDITGRAPH_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpus" / "openlineage"
SCENARIOS = CORPUS / "valid" / "compatibility-tests" / "consumer" / "scenarios"
NEO4J_URL = os.environ.get("AUDITGRAPH_TEST_NEO4J_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"


def backends() -> list:
    return ["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j, id="neo4j")]


def make_store(backend: str, tmp_path: Path):
    if backend == "sqlite":
        return open_store(f"sqlite:///{tmp_path}/store.db")
    if not NEO4J_URL:
        if IN_CI:
            pytest.fail("CI=true but AUDITGRAPH_TEST_NEO4J_URL is not set: .ci/run must start Neo4j")
        pytest.skip("no Neo4j server: set AUDITGRAPH_TEST_NEO4J_URL (scripts/neo4j-server start prints it)")
    store = open_store(NEO4J_URL)
    store.drop_everything(confirm=True)
    return store


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


def run_event(job: str, run: str | None = None, *, event_type: str | None = "COMPLETE",
              time: str = "2024-05-01T10:00:00Z", inputs=(), outputs=(), namespace: str = "test",
              run_facets: dict | None = None, job_facets: dict | None = None) -> dict:
    """A minimal, spec-valid RunEvent; datasets are (namespace, name) or full dicts."""
    def ds(item):
        return item if isinstance(item, dict) else {"namespace": item[0], "name": item[1]}

    event = {
        "eventTime": time, "producer": "https://example.com/auditgraph-tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run or str(uuid.uuid4()), "facets": run_facets or {}},
        "job": {"namespace": namespace, "name": job, "facets": job_facets or {}},
        "inputs": [ds(i) for i in inputs], "outputs": [ds(o) for o in outputs],
    }
    if event_type is not None:
        event["eventType"] = event_type
    return event


def snapshot(store) -> dict:
    """The whole graph through the public API: every node with its facets and edges."""
    nodes = store.search(":", limit=10_000)
    out = {}
    for row in nodes:
        node = store.node(row.id)
        node["in"] = sorted((e["src"], e["type"], e["time"]) for e in node["in"])
        node["out"] = sorted((e["dst"], e["type"], e["time"]) for e in node["out"])
        out[row.id] = node
    return out


def load(path: Path):
    return json.loads(path.read_text())


# --- a real HTTP server on loopback --------------------------------------------

import socket
import threading
import time
from contextlib import contextmanager


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
