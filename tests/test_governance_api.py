"""Governance over HTTP, and the webhooks governance decisions raise."""

from __future__ import annotations

import base64
import copy
import json

import httpx
import pytest
from click.testing import CliRunner
from conftest import live_server, wait_until
from test_hooks import Receiver

from governance import approvals as appr
from governance import readmodels, records
from lineage import hooks
from lineage.cli import cli
from lineage.server import auth
from lineage.server.app import ServerConfig
from lineage.store import open_store

MODEL = "model:demo/churn-classifier@3"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITGRAPH_SECRET_KEY", "k")
    url = f"sqlite:///{tmp_path}/api.db"
    CliRunner().invoke(cli, ["demo", "--store", url])
    with open_store(url) as store:
        tokens = {s: auth.create_key(store, s, [s], "test")[1] for s in ("ingest", "read", "govern", "approve")}
        appr.generate_key(store, "Rita Risk", ["model-risk"], tmp_path / "rita.pem", "test")
    return url, tokens, appr.load_signer(tmp_path / "rita.pem")


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
def test_a_signed_approval_posted_over_http_is_verified_and_recorded(env):
    url, tokens, signer = env
    with live_server(ServerConfig(store_url=url, webhooks=False)) as server:
        ev = httpx.get(
            f"{server}/api/v1/governance/evidence", params={"model": MODEL}, headers=bearer(tokens["read"])
        ).json()
        with open_store(url) as store:
            payload = appr.signed_payload(
                MODEL, readmodels.artifact_digest(store, MODEL), "model-risk", signer, ev["digest"], store.head().hash
            )
        tampered = copy.deepcopy(payload)
        statement = appr.envelope_payload(payload)
        statement["predicate"]["decision"] = "reject"
        tampered["envelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        bad = httpx.post(f"{server}/api/v1/governance/approvals", json=tampered, headers=bearer(tokens["approve"]))
        assert (bad.status_code, bad.json()["detail"]) == (422, "signature does not verify (VerificationError)")
        refused = httpx.post(f"{server}/api/v1/governance/approvals", json=payload, headers=bearer(tokens["read"]))
        assert refused.status_code == 403
        ok = httpx.post(f"{server}/api/v1/governance/approvals", json=payload, headers=bearer(tokens["approve"]))
        assert ok.status_code == 201 and ok.json()["duplicate"] is False
        again = httpx.post(f"{server}/api/v1/governance/approvals", json=payload, headers=bearer(tokens["approve"]))
        assert (again.status_code, again.json()["seq"], again.json()["duplicate"]) == (201, ok.json()["seq"], True)
        listed = httpx.get(
            f"{server}/api/v1/governance/approvals", params={"model": MODEL}, headers=bearer(tokens["read"])
        ).json()
    assert [(a["approver"], a["valid"]) for a in listed] == [("Rita Risk", True)]
    assert listed[0]["recorded_by"].startswith("apikey:") and listed[0]["recorded_by"].endswith(
        ":approve"
    )  # the key's name


@pytest.mark.slow
def test_a_revoked_approval_replayed_over_http_with_altered_unsigned_fields_never_counts_again(env):
    url, tokens, signer = env
    with open_store(url) as store:
        payload = appr.signed_payload(
            MODEL,
            readmodels.artifact_digest(store, MODEL),
            "model-risk",
            signer,
            "sha256:" + "0" * 64,
            store.head().hash,
        )
        seq = appr.record_signed(store, payload, "approve").seq
        appr.revoke_approval(store, seq, "signed the wrong version", "approve")
    post = "/api/v1/governance/approvals"
    with live_server(ServerConfig(store_url=url, webhooks=False)) as server:
        with open_store(url) as store:
            head = store.head()
        replay = httpx.post(server + post, json=payload, headers=bearer(tokens["approve"]))
        assert replay.status_code == 409 and "was revoked" in replay.json()["detail"]
        for altered in (
            {**payload, "approver": "Someone Else"},
            {**payload, "role": "model-risk"},
            {**payload, "envelope": {**payload["envelope"], "note": "x"}},
            {**payload, "model": [MODEL]},
            {**payload, "envelope": {**payload["envelope"], "payloadType": 1}},
        ):
            response = httpx.post(server + post, json=altered, headers=bearer(tokens["approve"]))
            assert response.status_code == 422, (altered.keys(), response.text)
        with open_store(url) as store:
            assert store.head() == head
            assert [a.valid for a in readmodels.approvals(store, MODEL)] == [False]


def test_the_gate_over_http_takes_built_in_packs_only(env):
    url, tokens, _ = env
    with live_server(ServerConfig(store_url=url, webhooks=False)) as server:
        result = httpx.post(
            f"{server}/api/v1/governance/gate",
            json={"model": MODEL, "policy": ["baseline"]},
            headers=bearer(tokens["approve"]),
        )
        assert result.status_code == 200 and result.json()["outcome"] == "blocked"
        path = httpx.post(
            f"{server}/api/v1/governance/gate",
            json={"model": MODEL, "policy": ["/etc/passwd"]},
            headers=bearer(tokens["approve"]),
        )
        assert path.status_code == 422 and "built-in packs only" in path.json()["detail"]


@pytest.mark.slow
def test_governance_facts_over_http_need_the_govern_scope_and_an_ingest_key_cannot_write_them(env):
    url, tokens, _ = env
    crm = "dataset:postgres://crm-db:5432/crm.public.customers"
    with open_store(url) as store:
        records.tag(store, crm, ["pii"], "cli:privacy-officer")
        head = store.head()
    with live_server(ServerConfig(store_url=url, webhooks=False)) as server:
        for scope in ("read", "ingest", "approve"):  # a producer's key cannot lift a pii tag or post a metric
            assert (
                httpx.post(
                    f"{server}/api/v1/governance/tags",
                    json={"node": crm, "tags": ["pii"], "remove": True},
                    headers=bearer(tokens[scope]),
                ).status_code
                == 403
            ), scope
            assert (
                httpx.post(
                    f"{server}/api/v1/governance/evaluations",
                    json={"model": MODEL, "metrics": {"auc": 0.99}},
                    headers=bearer(tokens[scope]),
                ).status_code
                == 403
            ), scope
        with open_store(url) as store:
            assert store.head() == head
        assert (
            httpx.post(
                f"{server}/api/v1/governance/tags",
                json={"node": crm, "tags": ["gold"]},
                headers=bearer(tokens["govern"]),
            ).status_code
            == 201
        )
        assert (
            httpx.post(
                f"{server}/api/v1/governance/evaluations",
                json={"model": MODEL, "metrics": {"auc": "high"}},
                headers=bearer(tokens["govern"]),
            ).status_code
            == 422
        )
    with open_store(url) as store:
        assert set(records.tags_of(store, crm)) == {"pii", "gold"}
        [entry] = [e for e in store.entries(kind="governance.tag") if '"gold"' in e.payload]
        assert entry.actor.endswith(":govern")  # the API key's name


@pytest.mark.slow
def test_a_blocked_gate_and_a_release_from_the_cli_fire_webhooks_from_the_server(env):
    """The server tails the ledger, so decisions made with the CLI reach subscribers too."""
    url, tokens, signer = env
    receiver = Receiver()
    with open_store(url) as store:
        hook_id, secret = hooks.subscribe(
            store, receiver.url, ["governance.check_failed", "governance.release_decided"], "t", allow_private=True
        )
    with live_server(ServerConfig(store_url=url, hook_backoff=0.01, allow_private_targets=True)):
        gated = CliRunner().invoke(cli, ["governance", "gate", MODEL, "--policy", "baseline", "--store", url])
        assert gated.exit_code == 1, gated.output
        wait_until(lambda: receiver.requests)
        head, body = receiver.requests[0]
        assert hooks.verify_signature(secret, head["X-Auditgraph-Signature"], body)
        failed = json.loads(body)["data"]
        assert failed["model"] == MODEL and failed["outcome"] == "blocked"
        assert "baseline.model-risk-approval" in {f["rule"] for f in failed["failed"]}
    receiver.close()
