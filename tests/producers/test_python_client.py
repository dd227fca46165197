"""The openlineage-python client, configured the way its users configure it, against a real
``auditgraph serve`` process on loopback (one worker and two): every transport it ships that
runs here (sync HTTP with gzip and an API key, async HTTP, file then ``auditgraph ingest``,
composite HTTP + file). Each sends the same pipeline, and the answers must be what the
pipeline declares:

    public.orders@v1 --> clean_orders run --> clean.orders --> train_churn run --> model churn
    (both runs are children of the daily run; clean.orders.amount <- public.orders.amount,
     clean.orders.customer <- public.orders.customer_id, and the join key public.orders.status
     indirectly)

Also here: a server with two workers answers kept-alive connections as fast as one worker.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from conftest import free_port, snapshot
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    dataset_type_dataset,
    dataset_version_dataset,
    parent_run,
    schema_dataset,
)

from lineage.graph import Graph
from lineage.server import auth
from lineage.store import open_store

pytestmark = pytest.mark.producers

CLIENT_VERSION = version("openlineage-python")
NS = "producers"
ORDERS = ("postgres://db:5432", "public.orders")
CLEAN = ("warehouse", "clean.orders")
MODEL = ("models", "churn")
RUNS = {
    "daily": "01920000-0000-7000-8000-000000000001",
    "clean": "01920000-0000-7000-8000-000000000002",
    "train": "01920000-0000-7000-8000-000000000003",
}


# --- a real `auditgraph serve` ------------------------------------------------------------------


@contextmanager
def serve(tmp_path: Path, workers: int, *, command: list[str] | None = None):
    """``auditgraph serve`` as its own process on a free loopback port; yields (base URL, store URL, ingest key)."""
    db = tmp_path / f"serve-{workers}-{time.monotonic_ns()}.db"
    store_url = f"sqlite:///{db}"
    with open_store(store_url) as store:
        _, ingest_key = auth.create_key(store, "producer", ["ingest", "read"], "test")
    port = free_port()
    argv = command or [
        sys.executable,
        "-m",
        "lineage",
        "serve",
        "--store",
        store_url,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-webhooks",
    ]
    env = {**os.environ, "AUDITGRAPH_TEST_PORT": str(port), "AUDITGRAPH_TEST_STORE": store_url}
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, server)
        yield base, store_url, ingest_key
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_up(base: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"auditgraph serve exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("auditgraph serve did not answer in time")


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "lineage", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


# --- the pipeline, as a producer declares it ----------------------------------------------------


def _at(minute: int) -> str:
    return f"2024-06-01T02:{minute:02d}:00.000Z"


def _event(state: RunState, minute: int, job: str, run: str, inputs=(), outputs=(), parent: bool = True) -> RunEvent:
    facets = {}
    if parent:
        facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=RUNS["daily"]), job=parent_run.Job(namespace=NS, name="daily")
        )
    return RunEvent(
        eventType=state,
        eventTime=_at(minute),
        producer="https://github.com/OpenLineage/OpenLineage",
        run=Run(runId=run, facets=facets),
        job=Job(namespace=NS, name=job),
        inputs=list(inputs),
        outputs=list(outputs),
    )


def _orders() -> InputDataset:
    fields = [
        schema_dataset.SchemaDatasetFacetFields(name=n, type=t)
        for n, t in (("order_id", "int"), ("customer_id", "int"), ("amount", "decimal"), ("status", "text"))
    ]
    return InputDataset(
        *ORDERS,
        facets={
            "version": dataset_version_dataset.DatasetVersionDatasetFacet("v1"),
            "schema": schema_dataset.SchemaDatasetFacet(fields=fields),
        },
    )


def _clean() -> OutputDataset:
    def source(field: str, kind: str = "DIRECT", subtype: str = "IDENTITY"):
        return column_lineage_dataset.InputField(
            *ORDERS, field, transformations=[column_lineage_dataset.Transformation(type=kind, subtype=subtype)]
        )

    lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            "amount": column_lineage_dataset.Fields(inputFields=[source("amount")]),
            "customer": column_lineage_dataset.Fields(inputFields=[source("customer_id")]),
        },
        dataset=[source("status", "INDIRECT", "FILTER")],
    )
    schema = schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name=n, type=t)
            for n, t in (("customer", "int"), ("amount", "decimal"))
        ]
    )
    return OutputDataset(*CLEAN, facets={"schema": schema, "columnLineage": lineage})


def _model() -> OutputDataset:
    return OutputDataset(*MODEL, facets={"datasetType": dataset_type_dataset.DatasetTypeDatasetFacet("MODEL")})


def pipeline() -> list[RunEvent]:
    """The daily run, its cleaning run (reads orders v1, writes clean.orders) and its training
    run (reads clean.orders, writes the churn model), in the order a scheduler emits them."""
    clean_in = InputDataset(*CLEAN)
    return [
        _event(RunState.START, 0, "daily", RUNS["daily"], parent=False),
        _event(RunState.START, 1, "daily.clean_orders", RUNS["clean"], [_orders()], [_clean()]),
        _event(RunState.COMPLETE, 2, "daily.clean_orders", RUNS["clean"], [_orders()], [_clean()]),
        _event(RunState.START, 3, "daily.train_churn", RUNS["train"], [clean_in], [_model()]),
        _event(RunState.COMPLETE, 4, "daily.train_churn", RUNS["train"], [clean_in], [_model()]),
        _event(RunState.COMPLETE, 5, "daily", RUNS["daily"], parent=False),
    ]


def declared(store) -> dict:
    """The pipeline's lineage as the store answers it: upstream, downstream, columns and child runs."""
    clean_run, train_run = f"run:{RUNS['clean']}", f"run:{RUNS['train']}"
    return {
        "upstream": {n.id for n in Graph(store).traverse("model:models/churn", "upstream").nodes},
        "downstream": {
            n.id for n in Graph(store).traverse("dataset:postgres://db:5432/public.orders", "downstream").nodes
        },
        "columns": {
            (
                e.src,
                e.src_field,
                e.dst,
                e.dst_field,
                e.transformations[0]["type"],
                e.transformations[0]["subtype"],
                e.run,
            )
            for e in Graph(store).columns("dataset:warehouse/clean.orders").edges
        },
        "children": {e["src"] for e in Graph(store).node(f"run:{RUNS['daily']}")["in"] if e["type"] == "CHILD_OF"},
        "runs": (clean_run, train_run),
    }


ORDERS_V1 = "dataset:postgres://db:5432/public.orders@v1"
CLEAN_V = f"dataset:warehouse/clean.orders@{RUNS['clean']}"
MODEL_V = f"model:models/churn@{RUNS['train']}"
FLOW = {
    ORDERS_V1,
    f"run:{RUNS['clean']}",
    "job:producers/daily.clean_orders",
    CLEAN_V,
    f"run:{RUNS['train']}",
    "job:producers/daily.train_churn",
    MODEL_V,
}
PIPELINE = {
    "upstream": FLOW,
    "downstream": FLOW,
    "columns": {
        (
            "dataset:postgres://db:5432/public.orders",
            "amount",
            "dataset:warehouse/clean.orders",
            "amount",
            "DIRECT",
            "IDENTITY",
            f"run:{RUNS['clean']}",
        ),
        (
            "dataset:postgres://db:5432/public.orders",
            "customer_id",
            "dataset:warehouse/clean.orders",
            "customer",
            "DIRECT",
            "IDENTITY",
            f"run:{RUNS['clean']}",
        ),
        (
            "dataset:postgres://db:5432/public.orders",
            "status",
            "dataset:warehouse/clean.orders",
            None,
            "INDIRECT",
            "FILTER",
            f"run:{RUNS['clean']}",
        ),
    },
    "children": {f"run:{RUNS['clean']}", f"run:{RUNS['train']}"},
    "runs": (f"run:{RUNS['clean']}", f"run:{RUNS['train']}"),
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The graph of the pipeline's events as the client writes them (it adds its own facets),
    ingested directly in the order they were emitted."""
    from conftest import documents
    from openlineage.client.transport.file import FileConfig, FileTransport

    from lineage.ingest import ingest

    base = tmp_path_factory.mktemp("reference")
    log = base / "events.jsonl"
    emit_pipeline(OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(log), append=True))))
    with open_store(f"sqlite:///{base}/store.db") as store:
        assert ingest(store, documents([log]), "test").accepted == 6
        return snapshot(store)


# --- the client, configured as its users configure it ------------------------------------------


@pytest.fixture(params=[1, 2], ids=["one-worker", "two-workers"])
def server(request, tmp_path):
    with serve(tmp_path, request.param) as running:
        yield running


@pytest.fixture(autouse=True)
def openlineage_environment(monkeypatch):
    """Each test starts without OPENLINEAGE* variables and leaves none behind (the client itself
    copies OPENLINEAGE_URL into OPENLINEAGE__TRANSPORT__... variables of this process)."""
    for name in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(name)
    yield
    for name in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        del os.environ[name]


def configure(monkeypatch, tmp_path: Path, transport: dict) -> None:
    """An openlineage.yml named by OPENLINEAGE_CONFIG, as the client's documentation has it."""
    path = tmp_path / "openlineage.yml"
    path.write_text(json.dumps({"transport": transport}))  # JSON is YAML
    monkeypatch.setenv("OPENLINEAGE_CONFIG", str(path))


def http(base: str, key: str, kind: str = "http") -> dict:
    return {"type": kind, "url": base, "compression": "gzip", "auth": {"type": "api_key", "apiKey": key}}


def emit_pipeline(client: OpenLineageClient) -> None:
    for event in pipeline():
        client.emit(event)
    client.close()


def assert_pipeline_recorded(store_url: str, reference: dict) -> None:
    with open_store(store_url) as store:
        assert declared(store) == PIPELINE
        assert snapshot(store) == reference


def test_sync_http_from_openlineage_url_and_api_key_records_the_pipeline(server, monkeypatch, reference):
    base, store_url, key = server
    monkeypatch.setenv("OPENLINEAGE_URL", base)
    monkeypatch.setenv("OPENLINEAGE_API_KEY", key)
    emit_pipeline(OpenLineageClient())
    assert_pipeline_recorded(store_url, reference)


def test_sync_http_with_gzip_from_openlineage_yml_records_the_pipeline(server, monkeypatch, tmp_path, reference):
    from openlineage.client.transport.http import HttpCompression, HttpTransport

    base, store_url, key = server
    configure(monkeypatch, tmp_path, http(base, key))
    client = OpenLineageClient()
    assert isinstance(client.transport, HttpTransport) and client.transport.compression is HttpCompression.GZIP
    emit_pipeline(client)
    assert_pipeline_recorded(store_url, reference)


def test_a_wrong_api_key_in_openlineage_yml_records_nothing(server, monkeypatch, tmp_path):
    base, store_url, _ = server
    configure(monkeypatch, tmp_path, http(base, "not-a-key"))
    client = OpenLineageClient()
    with pytest.raises(Exception, match="401"):
        client.emit(pipeline()[0])
    with open_store(store_url) as store:
        assert Graph(store).search(":", limit=10) == []


def test_async_http_delivers_the_same_graph_as_sync_http(server, monkeypatch, tmp_path, reference):
    from openlineage.client.transport.async_http import AsyncHttpTransport

    base, store_url, key = server
    configure(monkeypatch, tmp_path, {**http(base, key, "async_http"), "max_concurrent_requests": 10})
    client = OpenLineageClient()
    assert isinstance(client.transport, AsyncHttpTransport)
    for event in pipeline():
        client.emit(event)
    assert client.transport.wait_for_completion(timeout=60)
    assert client.transport.get_stats() == {"pending": 0, "success": 6, "failed": 0}
    client.close()
    assert_pipeline_recorded(store_url, reference)


def test_file_transport_then_auditgraph_ingest_records_the_pipeline(monkeypatch, tmp_path, reference):
    log = tmp_path / "events.jsonl"
    configure(monkeypatch, tmp_path, {"type": "file", "log_file_path": str(log), "append": True})
    emit_pipeline(OpenLineageClient())
    store_url = f"sqlite:///{tmp_path}/file.db"
    assert json.loads(cli("ingest", str(log), "--store", store_url, "--json"))["accepted"] == 6
    assert_pipeline_recorded(store_url, reference)


def test_composite_http_and_file_record_the_pipeline_once(server, monkeypatch, tmp_path, reference):
    base, store_url, key = server
    log = tmp_path / "events.jsonl"
    configure(
        monkeypatch,
        tmp_path,
        {
            "type": "composite",
            "continue_on_failure": False,
            "transports": {
                "auditgraph": http(base, key),
                "archive": {"type": "file", "log_file_path": str(log), "append": True},
            },
        },
    )
    emit_pipeline(OpenLineageClient())
    assert len(log.read_text().splitlines()) == 6
    report = json.loads(cli("ingest", str(log), "--store", store_url, "--json"))  # the archive, replayed
    assert (report["accepted"], report["duplicates"]) == (0, 6)
    assert_pipeline_recorded(store_url, reference)


# --- kept-alive connections to a multi-worker server --------------------------------------------

# Two workers on a listener bound the way gunicorn and uvicorn before 0.55 bind it: a socket whose
# ``proto`` is 0, so asyncio leaves Nagle's algorithm on for the connections it accepts.
PLAIN_LISTENER = """
import json, os, socket
from uvicorn.supervisors import Multiprocess
from lineage.server.app import ServerConfig
from lineage.server.limits import uvicorn_config

port = int(os.environ["AUDITGRAPH_TEST_PORT"])
config = ServerConfig(store_url=os.environ["AUDITGRAPH_TEST_STORE"], webhooks=False)
os.environ["AUDITGRAPH_SERVE_CONFIG"] = json.dumps(config.__dict__)
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", port))
sock.set_inheritable(True)
uv = uvicorn_config("lineage.server.factory:app", factory=True, workers=2, header_timeout=10.0,
                    host="127.0.0.1", port=port, log_level="warning")
Multiprocess(uv, sockets=[sock]).run()
"""


def kept_alive_ms(bases: list[str], rounds: int = 40) -> list[float]:
    """The fastest fifth (20th percentile, ms) of GET /api/v1/health on one kept-alive connection
    per server, the servers asked in turn. Load on the machine (2 shared cores) only adds time, so
    the fast end shows what the server costs, while a stall of Nagle's algorithm against the
    client's delayed ACK is a floor of ~40 ms under every request it hits."""
    clients = [httpx.Client(base_url=base, timeout=10) for base in bases]
    samples: list[list[float]] = [[] for _ in bases]
    try:
        for _ in range(5):  # the connection is open and past its first exchanges
            for client in clients:
                client.get("/api/v1/health").raise_for_status()
        for _ in range(rounds):
            for client, times in zip(clients, samples):
                start = time.perf_counter()
                client.get("/api/v1/health").raise_for_status()
                times.append((time.perf_counter() - start) * 1000)
    finally:
        for client in clients:
            client.close()
    return [statistics.quantiles(times, n=5)[0] for times in samples]


def test_kept_alive_requests_to_two_workers_are_as_fast_as_to_one(tmp_path):
    plain = [sys.executable, "-c", PLAIN_LISTENER]
    with serve(tmp_path, 1) as one, serve(tmp_path, 2) as two, serve(tmp_path, 2, command=plain) as two_plain:
        one_ms, two_ms, plain_ms = kept_alive_ms([one[0], two[0], two_plain[0]])
    bound = 3 * one_ms  # a stall is ~40 ms on a request one worker answers in a few ms
    assert two_ms <= bound, f"auditgraph serve --workers 2: {two_ms:.1f} ms, --workers 1: {one_ms:.1f} ms"
    assert plain_ms <= bound, f"2 workers on a proto-0 listener: {plain_ms:.1f} ms, --workers 1: {one_ms:.1f} ms"
