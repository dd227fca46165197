"""The HTTP API on a real uvicorn server, fed by the real openlineage-python client."""

from __future__ import annotations

import gzip
import json
import uuid

import httpx
import pytest
from conftest import live_server, run_event, scenario_files
from openlineage.client import OpenLineageClient
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpCompression, HttpConfig, HttpTransport

from lineage.graph import Graph
from lineage.server import auth
from lineage.server.app import ServerConfig
from lineage.store import open_store


@pytest.fixture
def store_url(tmp_path):
    return f"sqlite:///{tmp_path}/server.db"


@pytest.fixture
def tokens(store_url):
    with open_store(store_url) as store:
        return {
            scope: auth.create_key(store, f"{scope}-key", [scope], "test")[1]
            for scope in ("ingest", "read", "approve", "admin")
        }


@pytest.fixture
def server(store_url, tokens):
    with live_server(ServerConfig(store_url=store_url, max_body_bytes=1 << 20, hook_backoff=0.01)) as url:
        yield url


def ol_client(url: str, token: str, gzip_on: bool = False) -> OpenLineageClient:
    config = HttpConfig(
        url=url, auth=ApiKeyTokenProvider({"apiKey": token}), compression=HttpCompression.GZIP if gzip_on else None
    )
    return OpenLineageClient(transport=HttpTransport(config))


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def client_event(job: str, state, inputs=(), outputs=(), run_id: str | None = None):
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent

    return RunEvent(
        eventType=state,
        eventTime="2024-05-01T10:00:00Z",
        run=Run(runId=run_id or str(uuid.uuid4())),
        job=Job(namespace="pipeline", name=job),
        producer="https://example.com/test",
        inputs=[InputDataset(namespace="s3://lake", name=n) for n in inputs],
        outputs=[OutputDataset(namespace="s3://lake", name=n) for n in outputs],
    )


@pytest.mark.slow
def test_the_openlineage_client_records_a_pipeline_over_http_with_its_defaults(server, tokens, store_url):
    from openlineage.client.event_v2 import RunState

    client = ol_client(server, tokens["ingest"])
    for job, inputs, outputs in (
        ("extract", [], ["raw"]),
        ("clean", ["raw"], ["clean"]),
        ("train", ["clean"], ["model"]),
    ):
        run_id = str(uuid.uuid4())
        client.emit(client_event(job, RunState.START, inputs, outputs, run_id))
        client.emit(client_event(job, RunState.COMPLETE, inputs, outputs, run_id))
    with open_store(store_url) as store:
        assert store.head().seq == 4 + 6
        walk = Graph(store).traverse("dataset:s3://lake/model", "upstream", kinds=["job"])
        assert {n.id for n in walk.nodes} == {"job:pipeline/extract", "job:pipeline/clean", "job:pipeline/train"}


@pytest.mark.slow
def test_the_corpus_posted_as_one_batch_gives_the_same_lineage_as_the_cli(server, tokens, store_url):
    events = [json.loads(p.read_text()) for p in scenario_files("airflow")]
    response = httpx.post(f"{server}/api/v1/lineage/batch", json=events, headers=bearer(tokens["ingest"]))
    assert (response.status_code, response.json()["accepted"]) == (201, 32)
    with open_store(store_url) as store:
        walk = Graph(store).traverse("dataset:gs://mock-bucket/result.csv", "upstream", kinds=["job"])
    assert {n.id for n in walk.nodes} == {"job:airflow/BQ.download", "job:airflow/BQ.copy", "job:airflow/BQ.upload"}


def test_gzip_bodies_from_the_client_are_accepted(server, tokens, store_url):
    from openlineage.client.event_v2 import RunState

    client = ol_client(server, tokens["ingest"], gzip_on=True)
    response = client.transport.emit(client_event("gz", RunState.COMPLETE, ["in"], ["out"]))
    assert response.request.headers["Content-Encoding"] == "gzip"
    assert (response.status_code, response.json()["status"]) == (201, "accepted")
    with open_store(store_url) as store:
        assert Graph(store).resolve("job:pipeline/gz").kind == "Job"


def test_the_client_configured_from_the_environment_reaches_the_server(server, tokens, store_url, monkeypatch):
    """What an Airflow or Spark deployment does: OPENLINEAGE_URL and OPENLINEAGE_API_KEY."""
    from openlineage.client.event_v2 import RunState

    monkeypatch.setenv("OPENLINEAGE_URL", server)
    monkeypatch.setenv("OPENLINEAGE_API_KEY", tokens["ingest"])
    monkeypatch.delenv("OPENLINEAGE_CONFIG", raising=False)
    client = OpenLineageClient()
    client.emit(client_event("from_env", RunState.COMPLETE))
    with open_store(store_url) as store:
        assert Graph(store).resolve("job:pipeline/from_env").kind == "Job"


@pytest.mark.slow
def test_a_repeated_event_is_acknowledged_as_a_duplicate(server, tokens):
    event = run_event("j")
    first = httpx.post(f"{server}/api/v1/lineage", json=event, headers=bearer(tokens["ingest"]))
    second = httpx.post(f"{server}/api/v1/lineage", json=event, headers=bearer(tokens["ingest"]))
    assert (first.status_code, first.json()["status"]) == (201, "accepted")
    assert (second.status_code, second.json()["status"], second.json()["seq"]) == (
        201,
        "duplicate",
        first.json()["seq"],
    )


@pytest.mark.slow
def test_a_batch_is_recorded_all_together(server, tokens, store_url):
    events = [run_event(f"j{i}") for i in range(20)]
    response = httpx.post(f"{server}/api/v1/lineage/batch", json=events, headers=bearer(tokens["ingest"]))
    assert response.status_code == 201
    assert (response.json()["accepted"], response.json()["duplicates"]) == (20, 0)
    lines = "\n".join(json.dumps(e) for e in events[:5])
    again = httpx.post(f"{server}/api/v1/lineage/batch", content=lines, headers=bearer(tokens["ingest"]))
    assert again.json()["duplicates"] == 5


@pytest.mark.parametrize("route, wrap", [("lineage", False), ("lineage/batch", True)])
@pytest.mark.slow
def test_numbers_are_recorded_as_the_standard_decoder_reads_them(server, tokens, store_url, route, wrap):
    # the server decodes with orjson, which reads 123456789012345678901234567890 as a float;
    # the ledger must keep the integer and write 1e-05 as the reference encoder does
    event = run_event("numbers")
    text = json.dumps(event)[:-1] + ', "x_big": 123456789012345678901234567890, "x_small": 1e-05}'
    body = f"[{text}]" if wrap else text
    response = httpx.post(f"{server}/api/v1/{route}", content=body, headers=bearer(tokens["ingest"]))
    assert response.status_code == 201, response.text
    with open_store(store_url) as store:
        payload = next(store.entries(kind="openlineage.event")).payload
    assert '"x_big":123456789012345678901234567890' in payload and '"x_small":1e-05' in payload


@pytest.mark.slow
def test_a_batch_with_one_bad_event_stores_nothing_and_names_it(server, tokens, store_url):
    events = [run_event("a"), run_event("b"), {**run_event("c"), "eventType": "BOGUS"}]
    response = httpx.post(f"{server}/api/v1/lineage/batch", json=events, headers=bearer(tokens["ingest"]))
    assert response.status_code == 422
    assert response.json() == {
        "detail": "events[2]: eventType: 'BOGUS' is not one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER"
    }
    with open_store(store_url) as store:
        assert store.head().seq == 4  # only the four key entries


@pytest.mark.parametrize(
    "body, status, detail",
    [
        (b"{not json", 400, "the body is not JSON"),
        (
            json.dumps(
                {"eventTime": "2024-01-01T00:00:00Z", "run": {}, "job": {"namespace": "a", "name": "b"}}
            ).encode(),
            422,
            "run.runId is missing",
        ),
        (json.dumps([1, 2]).encode(), 422, "an event must be a JSON object, got list"),
    ],
)
@pytest.mark.slow
def test_a_bad_event_gets_a_4xx_naming_the_field_and_changes_nothing(server, tokens, store_url, body, status, detail):
    response = httpx.post(f"{server}/api/v1/lineage", content=body, headers=bearer(tokens["ingest"]))
    assert response.status_code == status
    assert detail in response.json()["detail"]
    with open_store(store_url) as store:
        assert store.head().seq == 4


def test_an_oversized_body_gets_413(server, tokens):
    event = run_event("j", run_facets={"big": {"blob": "x" * 1_100_000}})
    response = httpx.post(f"{server}/api/v1/lineage", json=event, headers=bearer(tokens["ingest"]))
    assert response.status_code == 413


@pytest.mark.slow
def test_a_gzip_bomb_gets_413_before_it_is_inflated(server, tokens):
    bomb = gzip.compress(b"{" + b" " * 5_000_000 + b"}")
    assert len(bomb) < 1 << 20
    response = httpx.post(
        f"{server}/api/v1/lineage", content=bomb, headers={**bearer(tokens["ingest"]), "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert "decompressed body is over the limit" in response.json()["detail"]


@pytest.mark.slow
def test_writes_without_a_key_or_with_a_read_key_are_refused(server, tokens, store_url):
    event = run_event("j")
    assert httpx.post(f"{server}/api/v1/lineage", json=event).status_code == 401
    assert (
        httpx.post(
            f"{server}/api/v1/lineage", json=event, headers=bearer("agk_0000000000000000_" + "x" * 43)
        ).status_code
        == 401
    )
    refused = httpx.post(f"{server}/api/v1/lineage", json=event, headers=bearer(tokens["read"]))
    assert (refused.status_code, refused.json()["detail"]) == (403, "the API key lacks the 'ingest' scope")
    assert httpx.post(f"{server}/api/v1/lineage", json=event, headers=bearer(tokens["admin"])).status_code == 201


def test_a_revoked_key_stops_working_on_the_very_next_request(server, tokens, store_url):
    """The verifier caches a key's creation record, never its revocation."""
    key_id = tokens["ingest"].split("_")[1]
    assert (
        httpx.post(f"{server}/api/v1/lineage", json=run_event("j"), headers=bearer(tokens["ingest"])).status_code == 201
    )
    with open_store(store_url) as store:
        auth.revoke_key(store, key_id, "test", "rotated")
    response = httpx.post(f"{server}/api/v1/lineage", json=run_event("j"), headers=bearer(tokens["ingest"]))
    assert (response.status_code, response.json()["detail"]) == (401, "the API key has been revoked")


def test_errors_never_echo_the_token(server, tokens):
    secret = tokens["ingest"][:-4] + "abcd"
    response = httpx.post(f"{server}/api/v1/lineage", json=run_event("j"), headers=bearer(secret))
    assert response.status_code == 401 and secret not in response.text and secret.split("_")[2] not in response.text


@pytest.mark.slow
def test_queries_mirror_the_cli_json(server, tokens, store_url):
    from click.testing import CliRunner

    from lineage.cli import cli

    CliRunner().invoke(cli, ["demo", "--store", store_url])
    headers = bearer(tokens["read"])
    model = "model:demo/churn-classifier"
    api = httpx.get(f"{server}/api/v1/upstream", params={"id": model, "kind": ["dataset"]}, headers=headers).json()
    cli_json = json.loads(
        CliRunner()
        .invoke(cli, ["lineage", "upstream", model, "--kind", "dataset", "--json", "--store", store_url])
        .stdout
    )
    assert api == cli_json
    impact = httpx.get(
        f"{server}/api/v1/impact", params={"id": "dataset:s3://demo-lake/raw/customers.csv"}, headers=headers
    )
    assert impact.json()["levels"][-1]["models"] == [model]
    path = httpx.get(
        f"{server}/api/v1/path",
        params={"from": "dataset:s3://demo-lake/raw/customers.csv", "to": model},
        headers=headers,
    )
    assert path.json()["found"] is True
    assert (
        httpx.get(f"{server}/api/v1/search", params={"q": "churn", "kind": "model"}, headers=headers).json()[0]["id"]
        == model
    )
    cols = httpx.get(
        f"{server}/api/v1/columns",
        params={"dataset": "dataset:s3://demo-lake/features/churn.parquet", "field": "plan"},
        headers=headers,
    )
    assert cols.json()["edges"][0]["src_field"] == "plan"
    assert (
        httpx.get(f"{server}/api/v1/history", params={"id": "job:demo/train_churn_model"}, headers=headers).json()[
            "runs"
        ][0]["state"]
        == "COMPLETE"
    )
    assert (
        httpx.get(f"{server}/api/v1/nodes", params={"id": model + "@3"}, headers=headers).json()["kind"]
        == "ModelVersion"
    )


@pytest.mark.slow
def test_reads_need_a_key_unless_public(server, store_url, tokens):
    assert httpx.get(f"{server}/api/v1/search", params={"q": "x"}).status_code == 401
    with live_server(ServerConfig(store_url=store_url, public_reads=True, webhooks=False)) as open_server:
        assert httpx.get(f"{open_server}/api/v1/search", params={"q": "x"}).status_code == 200
        assert httpx.post(f"{open_server}/api/v1/lineage", json=run_event("j")).status_code == 401


@pytest.mark.slow
def test_an_unknown_node_is_404_and_a_bad_id_is_422(server, tokens):
    headers = bearer(tokens["read"])
    assert httpx.get(f"{server}/api/v1/nodes", params={"id": "dataset:a/b"}, headers=headers).status_code == 404
    bad = httpx.get(f"{server}/api/v1/nodes", params={"id": "table:x"}, headers=headers)
    assert bad.status_code == 422 and "unknown id kind 'table'" in bad.json()["detail"]


@pytest.mark.slow
def test_health_and_openapi_are_served(server, tokens):
    health = httpx.get(f"{server}/api/v1/health", headers=bearer(tokens["read"])).json()
    assert health["status"] == "ok" and health["ledger"]["entries"] == 4
    spec = httpx.get(f"{server}/openapi.json").json()
    assert {"/api/v1/lineage", "/api/v1/lineage/batch", "/api/v1/upstream", "/api/v1/impact"} <= set(spec["paths"])
