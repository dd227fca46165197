"""Injection, access control, secrets, hostile payloads, and schemathesis against our OpenAPI document."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import httpx
import pytest
from conftest import ingest_events, live_server, run_event

from lineage.errors import StoreError
from lineage.graph import Graph
from lineage.ids import dataset_id, job_id
from lineage.server import auth
from lineage.server.app import ServerConfig
from lineage.store import open_store

HOSTILE_NAMES = [
    "x'); DROP TABLE ledger; --",
    "`}) MATCH (n) DETACH DELETE n //",
    '" OR 1=1 --',
    "$id} RETURN 1 UNION MATCH (n) RETURN n //",
    "name with\nnewline and \u0000 nul",
    "ünïcødé/路径@v1%2F",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_injection_shaped_names_and_facets_are_stored_verbatim_and_change_nothing_else(store, name):
    ingest_events(store, [run_event("before", outputs=[("db", "kept")])])
    event = run_event(
        name,
        namespace=name,
        inputs=[(name, name)],
        outputs=[("db", name)],
        run_facets={"evil": {"_producer": name, "_schemaURL": name, "q": name}},
    )
    report = ingest_events(store, [event])
    assert report.accepted == 1, report.rejected
    assert Graph(store).resolve(job_id(name, name)).name == name
    assert Graph(store).resolve(dataset_id(name, name)).namespace == name
    assert Graph(store).node(f"run:{event['run']['runId']}")["facets"]["evil"]["q"] == name
    assert Graph(store).resolve("dataset:db/kept").kind == "Dataset"
    assert store.verify().ok and store.head().seq == 2


@pytest.fixture
def secured(tmp_path):
    url = f"sqlite:///{tmp_path}/sec.db"
    with open_store(url) as store:
        tokens = {s: auth.create_key(store, s, [s], "test")[1] for s in auth.SCOPES}
    with live_server(ServerConfig(store_url=url, webhooks=False, max_body_bytes=4 << 20)) as server:
        yield server, tokens, url


@pytest.mark.slow
def test_every_write_route_refuses_no_key_and_a_read_key(secured):
    server, tokens, url = secured
    paths = sorted(p for p, ops in httpx.get(f"{server}/openapi.json").json()["paths"].items() if "post" in ops)
    assert {
        "/api/v1/lineage",
        "/api/v1/lineage/batch",
        "/api/v1/governance/approvals",
        "/api/v1/governance/gate",
    } <= set(paths)
    for path in paths:
        assert httpx.post(f"{server}{path}", json={}).status_code == 401, path
        refused = httpx.post(f"{server}{path}", json={}, headers={"Authorization": f"Bearer {tokens['read']}"})
        assert refused.status_code == 403, path
    with open_store(url) as store:
        assert store.head().seq == len(auth.SCOPES)  # only the keys themselves


def test_keys_are_compared_in_constant_time(monkeypatch, tmp_path):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append((len(a), len(b))) or real(a, b))
    with open_store(f"sqlite:///{tmp_path}/k.db") as store:
        _, token = auth.create_key(store, "k", ["read"], "t")
        verifier = auth.KeyVerifier()
        for bad in (token[:-3] + "abc", "agk_0000000000000000_" + "y" * 43):
            with pytest.raises(auth.AuthError):
                verifier.verify(store, f"Bearer {bad}")
    assert calls == [(64, 64), (64, 64)]  # the unknown key is compared too, against a dummy digest


@pytest.mark.slow
def test_no_secret_appears_in_errors_or_logs(secured, caplog):
    server, tokens, _ = secured
    caplog.set_level(logging.DEBUG)
    secret = tokens["ingest"]
    wrong = secret[:-4] + "zzzz"
    responses = [
        httpx.post(f"{server}/api/v1/lineage", json={"bad": 1}, headers={"Authorization": f"Bearer {t}"})
        for t in (wrong, "Basic " + secret, secret)
    ]
    text = " ".join(r.text for r in responses) + caplog.text
    for needle in (secret.split("_")[2], wrong.split("_")[2]):
        assert needle not in text
    with pytest.raises(StoreError) as e:
        open_store("neo4j://neo4j:hunter2-secret@127.0.0.1:9/")
    assert "hunter2" not in str(e.value) and "neo4j:***@127.0.0.1:9" in str(e.value)


@pytest.mark.slow
def test_the_cli_never_prints_a_store_password(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "lineage", "store", "stats", "--store", "neo4j://neo4j:hunter2-secret@127.0.0.1:9"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 3 and "hunter2" not in done.stdout + done.stderr  # unreachable: unavailable


@pytest.mark.parametrize(
    "body, headers, status",
    [
        (b"[" * 200_000 + b"]" * 200_000, {}, 400),  # nested beyond the parser
        (
            json.dumps(
                {
                    "eventTime": "2024-01-01T00:00:00Z",
                    "run": {"runId": "r", "facets": {"x": json.loads("[" * 80 + "]" * 80)}},
                    "job": {"namespace": "a", "name": "b"},
                }
            ).encode(),
            {},
            422,
        ),  # nested beyond the limit
        (b'{"eventTime": "2024-01-01T00:00:00Z", "run": {"runId": "\xff\xfe"}}', {}, 400),  # invalid UTF-8
        (json.dumps({"eventTime": 5, "run": [], "job": "x", "inputs": {}}).encode(), {}, 422),  # wrong types
        (
            json.dumps(
                {"eventTime": "2024-01-01T00:00:00Z", "run": {"runId": 123}, "job": {"namespace": "a", "name": "b"}}
            ).encode(),
            {},
            422,
        ),
        (b"\x1f\x8b\x08\x00garbage", {"Content-Encoding": "gzip"}, 400),  # not gzip at all
        (b"{}", {"Content-Encoding": "br"}, 415),
    ],
)
@pytest.mark.slow
def test_hostile_payloads_get_a_clear_4xx_and_change_nothing(secured, body, headers, status):
    server, tokens, url = secured
    response = httpx.post(
        f"{server}/api/v1/lineage",
        content=body,
        headers={**headers, "Authorization": f"Bearer {tokens['ingest']}", "Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text[:300]
    assert response.json()["detail"]
    with open_store(url) as store:
        assert store.head().seq == len(auth.SCOPES)


@pytest.mark.slow
def test_a_huge_array_within_the_size_limit_is_handled_without_harm(secured):
    server, tokens, url = secured
    event = run_event("wide", inputs=[("db", f"t{i}") for i in range(20_000)])
    response = httpx.post(
        f"{server}/api/v1/lineage", json=event, headers={"Authorization": f"Bearer {tokens['ingest']}"}, timeout=60
    )
    assert response.status_code == 201
    with open_store(url) as store:
        assert len(Graph(store).node(f"run:{event['run']['runId']}")["in"]) == 20_000
        assert store.verify().ok


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_in_the_openapi_document(secured, tmp_path):
    server, tokens, _ = secured
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{server}/openapi.json",
            "-H",
            f"Authorization: Bearer {tokens['admin']}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "15",
            "--seed",
            "7",
            "--mode",
            "all",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    summary = done.stdout[-1500:]
    assert done.returncode == 0, summary
    assert (tmp_path / ".schemathesis").is_dir()  # its cache is written here, never into the checkout
    assert " passed" in summary and "failed" not in summary.split("Test cases:")[-1]


@pytest.mark.parametrize(
    "name, allowed",
    [
        ("READ_BY]->(m) DETACH DELETE m //", "EDGE_TYPES"),
        ("Node) DETACH DELETE n //", "LABELS"),
        ("read_by", "EDGE_TYPES"),
    ],
)
def test_a_label_or_type_outside_the_fixed_sets_never_reaches_a_neo4j_query(name, allowed):
    """Cypher has no parameters for labels and relationship types: the backend writes them into the query
    text only after checking them against its fixed sets, and the check survives ``python -O``."""
    from lineage.store import neo4j

    with pytest.raises(RuntimeError, match=r"^refusing to write .* into a Cypher query: not one of "):
        neo4j._check_name(name, getattr(neo4j, allowed))
    neo4j._check_name("READ_BY", neo4j.EDGE_TYPES)
    neo4j._check_name("Dataset", neo4j.LABELS)
