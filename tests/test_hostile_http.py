"""The HTTP server under attack: slow and vanishing clients, bodies in the wrong encoding,
wrong-typed governance bodies, leaky health checks, revoked keys, times past datetime's range.

Timeouts and connection limits are shown on ``auditgraph serve`` run as its own process, with
raw sockets on loopback; the rest on the app under uvicorn in this process (``live_server``).
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import free_port, live_server, run_event, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance import approvals as appr
from lineage.cli import cli
from lineage.server import auth
from lineage.server.app import ServerConfig
from lineage.store import open_store

MODEL = "model:demo/churn-classifier@3"
NOT_JSON = "the body is not JSON (UTF-8 required)"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# --- `auditgraph serve` in its own process, with short deadlines ------------------------


@dataclass
class Served:
    base: str
    port: int
    url: str
    tokens: dict
    log: Path

    def entries(self) -> int:
        with open_store(self.url) as store:
            return store.head().seq


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{home}/served.db"
    with open_store(url) as store:
        tokens = {s: auth.create_key(store, s, [s], "test")[1] for s in ("ingest", "read")}
    port, log = free_port(), home / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
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
                "--header-timeout",
                "1",
                "--body-timeout",
                "1",
                "--limit-concurrency",
                "8",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"the server exited: {log.read_text()}"
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield Served(f"http://127.0.0.1:{port}", port, url, tokens, log)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def health(served: Served) -> int:
    return httpx.get(f"{served.base}/api/v1/health", timeout=5).status_code


def connect(served: Served) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def post_head(served: Served, path: str, length: int, extra: bytes = b"") -> bytes:
    return (
        (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
            f"Authorization: Bearer {served.tokens['ingest']}\r\n"
        ).encode()
        + extra
        + b"\r\n"
    )


@pytest.mark.slow
def test_a_client_that_sends_half_a_request_head_and_stalls_is_answered_408_and_cut_off(served):
    with connect(served) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        answer = read_until_closed(sock)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(b"the request head did not arrive within 1 s")
    assert 0.8 < waited < 4


@pytest.mark.slow
def test_a_client_that_connects_and_sends_nothing_is_cut_off_too(served):
    with connect(served) as sock:
        started = time.monotonic()
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 4


@pytest.mark.slow
def test_a_client_that_stalls_mid_body_gets_408_and_nothing_is_stored(served):
    before = served.entries()
    body = json.dumps(run_event("stalled")).encode()
    with connect(served) as sock:
        sock.sendall(post_head(served, "/api/v1/lineage", len(body)) + body[: len(body) // 2])
        started = time.monotonic()
        answer = read_until_closed(sock)
        waited = time.monotonic() - started
    head, _, detail = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and b"connection: close" in head.lower()
    assert json.loads(detail)["detail"] == f"the body did not arrive within 1 s ({len(body) // 2} bytes received)"
    assert waited < 4 and served.entries() == before


@pytest.mark.slow
def test_a_body_trickled_byte_by_byte_is_cut_off_at_the_body_deadline_not_per_byte(served):
    body = json.dumps(run_event("trickled")).encode()
    with connect(served) as sock:
        sock.sendall(post_head(served, "/api/v1/lineage", len(body)))
        started, answer = time.monotonic(), b""
        sock.settimeout(0.2)
        for byte in body:  # a byte every 0.2 s would keep a per-read timeout happy for minutes
            try:
                sock.sendall(bytes([byte]))
                answer = sock.recv(4096)
                break
            except TimeoutError:
                continue
        assert answer.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < 4


@pytest.mark.slow
def test_past_the_connection_limit_a_new_client_gets_503_and_the_server_recovers(served):
    stalled = [connect(served) for _ in range(10)]
    try:
        for sock in stalled:
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
        wait_until(lambda: health(served) == 503, timeout=5, what="a 503 once the stalled clients fill the server")
    finally:
        for sock in stalled:
            sock.close()
    wait_until(lambda: health(served) == 200, timeout=5, what="the server to recover")


@pytest.mark.slow
def test_a_client_that_disconnects_mid_body_costs_one_log_line_not_a_traceback(served):
    before = served.entries()
    for path in ("/api/v1/lineage", "/api/v1/lineage/batch"):
        with connect(served) as sock:
            sock.sendall(post_head(served, path, 500) + b'{"eventTime": "2024-')
            # Kept: the server must have read those 20 bytes before the client hangs up, and nothing outside
            # the server shows when it has; well within the 1 s body timeout, after which it would answer 408.
            time.sleep(0.3)

    def disconnected():
        lines = [line for line in served.log.read_text().splitlines() if "disconnected" in line]
        return lines if len(lines) >= 2 else None

    lines = wait_until(disconnected, timeout=5, what="both disconnections in the server's log")
    log = served.log.read_text()
    assert lines == [
        f"INFO:     POST {path}: the client disconnected after 20 of its body's bytes"
        for path in ("/api/v1/lineage", "/api/v1/lineage/batch")
    ]
    assert "Traceback" not in log and "Exception in ASGI application" not in log
    assert served.entries() == before


# --- the app on a live server in this process ---------------------------------------------


@pytest.fixture(scope="module")
def governed(tmp_path_factory):
    """A store with the demo's model, keys for every scope and a registered signing key."""
    home = tmp_path_factory.mktemp("governed")
    url = f"sqlite:///{home}/governed.db"
    assert CliRunner().invoke(cli, ["demo", "--store", url]).exit_code == 0
    with open_store(url) as store:
        tokens = {s: auth.create_key(store, s, [s], "test")[1] for s in auth.SCOPES}
        appr.generate_key(store, "Rita Risk", ["model-risk"], home / "rita.pem", "test")
    with live_server(ServerConfig(store_url=url, webhooks=False)) as server:
        yield server, tokens, url, valid_bodies(appr.load_signer(home / "rita.pem"), server, tokens)


def head_of(url: str):
    with open_store(url) as store:
        return store.head()


EVENT = json.dumps(run_event("encoded", run="0b7f7a4e-6f8e-4c43-9a55-1f6bd4a0c1d2", outputs=[("db", "t")]))
BODIES = {
    "/api/v1/lineage": EVENT,
    "/api/v1/lineage/batch": f"[{EVENT}]",
    "/api/v1/governance/tags": json.dumps({"node": "dataset:db/t", "tags": ["pii"]}),
    "/api/v1/governance/evaluations": json.dumps({"model": MODEL, "metrics": {"auc": 0.9}}),
    "/api/v1/governance/gate": json.dumps({"model": MODEL, "policy": ["baseline"]}),
    "/api/v1/governance/approvals": json.dumps({"model": MODEL, "envelope": {}}),
}
ENCODINGS = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-8-sig"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("path", sorted(BODIES))
@pytest.mark.slow
def test_a_body_not_in_utf_8_gets_400_on_every_json_route_and_changes_nothing(governed, path, encoding):
    server, tokens, url, _ = governed
    before = head_of(url)
    response = httpx.post(
        f"{server}{path}",
        content=BODIES[path].encode(encoding),
        headers={**bearer(tokens["admin"]), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(f"{NOT_JSON}: ")
    assert head_of(url) == before


@pytest.mark.parametrize("path", ["/api/v1/lineage", "/api/v1/governance/tags"])
def test_a_latin_1_body_and_a_gzipped_utf_16_body_get_400_too(governed, path):
    server, tokens, url, _ = governed
    before = head_of(url)
    latin = BODIES[path].replace('"t"', '"caf\u00e9"').replace('"pii"', '"caf\u00e9"').encode("latin-1")
    for body, headers in ((latin, {}), (gzip.compress(BODIES[path].encode("utf-16")), {"Content-Encoding": "gzip"})):
        response = httpx.post(
            f"{server}{path}",
            content=body,
            headers={**headers, **bearer(tokens["admin"]), "Content-Type": "application/json"},
        )
        assert (response.status_code, response.json()["detail"][: len(NOT_JSON)]) == (400, NOT_JSON)
    assert head_of(url) == before


def test_health_without_a_valid_key_tells_only_status_and_version(governed):
    server, tokens, url, _ = governed
    for headers in ({}, bearer("agk_0000000000000000_" + "x" * 43), {"Authorization": "Basic x"}):
        response = httpx.get(f"{server}/api/v1/health", headers=headers)
        assert response.json() == {"status": "ok", "version": "0.1.0"}
        assert url.removeprefix("sqlite:///") not in response.text
    detailed = httpx.get(f"{server}/api/v1/health", headers=bearer(tokens["read"])).json()
    assert detailed["store"] == url and detailed["ledger"]["entries"] == head_of(url).seq


@pytest.mark.slow
def test_a_key_revoked_from_the_cli_is_refused_on_the_very_next_request(governed):
    server, tokens, url, _ = governed
    with open_store(url) as store:
        key_id, token = auth.create_key(store, "soon-revoked", ["read"], "test")
    query = {"params": {"id": "dataset:db/t"}, "headers": bearer(token)}
    assert httpx.get(f"{server}/api/v1/health", headers=bearer(token)).json()["store"] == url
    assert httpx.get(f"{server}/api/v1/search", params={"q": "t"}, headers=bearer(token)).status_code == 200
    done = subprocess.run(
        [sys.executable, "-m", "lineage", "keys", "revoke", key_id, "--store", url],
        capture_output=True,
        text=True,
        env={**os.environ, "AUDITGRAPH_API_KEY": tokens["admin"]},
    )  # the store has admin keys
    assert done.returncode == 0, done.stderr
    refused = httpx.get(f"{server}/api/v1/nodes", **query)
    assert (refused.status_code, refused.json()["detail"]) == (401, "the API key has been revoked")
    assert "store" not in httpx.get(f"{server}/api/v1/health", headers=bearer(token)).json()


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
@pytest.mark.parametrize(
    "route, params",
    [
        ("upstream", {"id": MODEL}),
        ("downstream", {"id": MODEL}),
        ("impact", {"id": MODEL}),
        ("path", {"from": MODEL, "to": MODEL}),
    ],
)
def test_an_as_of_time_past_what_datetime_holds_gets_422_on_every_route(governed, route, params, value):
    server, tokens, _, _ = governed
    response = httpx.get(f"{server}/api/v1/{route}", params={**params, "as_of": value}, headers=bearer(tokens["read"]))
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"as_of: {value!r}")


def test_an_event_time_past_what_datetime_holds_gets_422_naming_the_field_and_is_not_stored(governed):
    server, tokens, url, _ = governed
    before = head_of(url)
    event = run_event("overflow", time="9999-12-31T23:59:59-23:59")
    single = httpx.post(f"{server}/api/v1/lineage", json=event, headers=bearer(tokens["ingest"]))
    batch = httpx.post(
        f"{server}/api/v1/lineage/batch", json=[run_event("fine"), event], headers=bearer(tokens["ingest"])
    )
    assert (single.status_code, batch.status_code) == (422, 422)
    assert single.json()["detail"].startswith("eventTime: ") and batch.json()["detail"].startswith(
        "events[1]: eventTime: "
    )
    assert head_of(url) == before


# --- type confusion on the governance routes ------------------------------------------------


def valid_bodies(signer, server, tokens) -> dict[str, dict]:
    evidence = httpx.get(
        f"{server}/api/v1/governance/evidence", params={"model": MODEL}, headers=bearer(tokens["read"])
    )
    signed = appr.signed_payload(MODEL, "0" * 64, "model-risk", signer, evidence.json()["digest"], "0" * 64)
    return {
        "tags": {"node": "dataset:db/t", "tags": ["pii"], "remove": False},
        "evaluations": {"model": MODEL, "metrics": {"auc": 0.91}, "dataset": None},
        "gate": {"model": MODEL, "policy": ["baseline"]},
        "approvals": signed,
    }


# Where each route's fields are, as paths into its body; every one of them is a string, a list,
# an object, a number or a flag, and gets a value of another type.
FIELDS = {
    "tags": {("node",): str, ("tags",): list, ("tags", 0): str, ("remove",): bool},
    "evaluations": {("model",): str, ("metrics",): dict, ("metrics", "auc"): float, ("dataset",): str},
    "gate": {("model",): str, ("policy",): list, ("policy", 0): str},
    "approvals": {
        ("model",): str,
        ("envelope",): dict,
        ("envelope", "payload"): str,
        ("envelope", "payloadType"): str,
        ("envelope", "signatures"): list,
        ("envelope", "signatures", 0): dict,
        ("envelope", "signatures", 0, "keyid"): str,
        ("envelope", "signatures", 0, "sig"): str,
    },
}
scalars = (
    st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.booleans() | st.none() | st.text(max_size=8)
)
nested = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def wrong_for(kind: type):
    not_none = nested.filter(lambda v: v is not None)
    return {
        str: nested.filter(lambda v: not isinstance(v, str) and v is not None),
        list: not_none.filter(lambda v: not isinstance(v, list)),
        dict: not_none.filter(lambda v: not isinstance(v, dict)),
        bool: not_none.filter(lambda v: not isinstance(v, bool)),
        float: nested.filter(lambda v: isinstance(v, bool) or not isinstance(v, (int, float))),
    }[kind]


confusions = st.sampled_from([(route, path, kind) for route, fields in FIELDS.items() for path, kind in fields.items()])


def replaced(body, path, value):
    body = json.loads(json.dumps(body))
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(confusion=confusions, data=st.data())
@pytest.mark.slow
def test_a_wrong_typed_value_in_any_governance_field_gets_422_and_is_never_stored(governed, confusion, data):
    server, tokens, url, bodies = governed
    route, path, kind = confusion
    body = bodies[route]
    value = data.draw(wrong_for(kind), label="value")
    before = head_of(url)
    response = httpx.post(
        f"{server}/api/v1/governance/{route}", json=replaced(body, path, value), headers=bearer(tokens["admin"])
    )
    assert response.status_code == 422, (route, path, value, response.text)
    assert head_of(url) == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(sorted(FIELDS)), name=st.text(min_size=1, max_size=10), value=nested)
@pytest.mark.slow
def test_an_unknown_field_in_any_governance_body_gets_422_and_is_never_stored(governed, route, name, value):
    server, tokens, url, bodies = governed
    body = bodies[route]
    if name in body:
        return
    before = head_of(url)
    response = httpx.post(
        f"{server}/api/v1/governance/{route}", json={**body, name: value}, headers=bearer(tokens["admin"])
    )
    assert response.status_code == 422, (route, name, response.text)
    assert head_of(url) == before


def test_the_server_config_never_shows_the_store_password_in_its_repr():
    from lineage.server.app import ServerConfig

    assert "hun/ter2" not in repr(ServerConfig(store_url="neo4j://neo4j:hun/ter2@127.0.0.1:7687"))
