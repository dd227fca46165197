"""Webhooks: the retraining trigger, signatures, retries, and never blocking ingestion."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from conftest import ingest_events, live_server, run_event, wait_until

from lineage import hooks
from lineage.server import auth
from lineage.server.app import ServerConfig
from lineage.store import open_store

WARN_ONLY = """\
rules:
  - id: documented
    title: Owners recorded
    rationale: a warning never blocks, so the release goes through
    severity: warn
    check: documentation
"""


def release(store, model: str, tmp_path) -> None:
    """A real release through the gate: the retraining trigger watches released (or approved) versions."""
    from governance import gate
    from governance.rules import load_policy

    policy = tmp_path / "warn-only.yaml"
    policy.write_text(WARN_ONLY)
    result, seq = gate.release(store, model, load_policy([str(policy)]), "test")
    assert result.outcome == "pass" and seq


class Receiver:
    """A real HTTP server on loopback that records what it is sent."""

    def __init__(self, fail_first: int = 0, hold: threading.Event | None = None):
        self.requests: list[tuple[dict, bytes]] = []
        self.fail_first, self.hold, self.arrived = fail_first, hold, threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                receiver.arrived.set()
                if receiver.hold:
                    receiver.hold.wait(10)
                code = 500 if len(receiver.requests) <= receiver.fail_first else 204
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture(autouse=True)
def secret_key(monkeypatch):
    monkeypatch.setenv("AUDITGRAPH_SECRET_KEY", "test-server-key")


@pytest.fixture
def setup(tmp_path):
    url = f"sqlite:///{tmp_path}/hooks.db"
    with open_store(url) as store:
        _, token = auth.create_key(store, "pipeline", ["ingest"], "test")
    return url, {"Authorization": f"Bearer {token}"}


def train_and_release(server: str, headers: dict, store_url: str) -> None:
    events = [
        run_event("features", time="2024-01-01T00:00:00Z", inputs=[("db", "raw")], outputs=[("s3://lake", "features")]),
        run_event(
            "train",
            time="2024-01-02T00:00:00Z",
            inputs=[("s3://lake", "features")],
            outputs=[
                {
                    "namespace": "ml",
                    "name": "churn",
                    "facets": {
                        "datasetType": {"_producer": "x", "_schemaURL": "y", "datasetType": "MODEL"},
                        "version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "1"},
                    },
                }
            ],
        ),
    ]
    assert httpx.post(f"{server}/api/v1/lineage/batch", json=events, headers=headers).status_code == 201
    with open_store(store_url) as store:
        release(store, "model:ml/churn@1", Path(store_url.removeprefix("sqlite:///")).parent)


def new_features_version(server: str, headers: dict) -> dict:
    event = run_event(
        "features", time="2024-02-01T00:00:00Z", inputs=[("db", "raw")], outputs=[("s3://lake", "features")]
    )
    assert httpx.post(f"{server}/api/v1/lineage", json=event, headers=headers).status_code == 201
    return event


@pytest.mark.slow
def test_a_new_upstream_version_fires_a_signed_retraining_webhook_naming_the_model(setup):
    store_url, headers = setup
    receiver = Receiver()
    with open_store(store_url) as store:
        hook_id, secret = hooks.subscribe(store, receiver.url, ["lineage.upstream_version"], "test", allow_private=True)
    with live_server(ServerConfig(store_url=store_url, hook_backoff=0.01, allow_private_targets=True)) as server:
        train_and_release(server, headers, store_url)
        assert receiver.requests == []  # training a model is not a new upstream version of a watched model
        event = new_features_version(server, headers)
        wait_until(lambda: receiver.requests)
        head, body = receiver.requests[0]
        assert hooks.verify_signature(secret, head["X-Auditgraph-Signature"], body)
        assert not hooks.verify_signature("wrong", head["X-Auditgraph-Signature"], body)
        assert not hooks.verify_signature(secret, head["X-Auditgraph-Signature"], body + b" ")
        payload = json.loads(body)
        assert payload["event"] == head["X-Auditgraph-Event"] == "lineage.upstream_version"
        assert payload["data"]["model"] == "model:ml/churn@1"
        assert payload["data"]["new_version"] == f"dataset:s3://lake/features@{event['run']['runId']}"
        assert (
            payload["data"]["path"][0] == "dataset:s3://lake/features"
            and payload["data"]["path"][-1] == "model:ml/churn@1"
        )
        with open_store(store_url) as store:
            wait_until(lambda: hooks.deliveries(store, hook_id))
            [log] = hooks.deliveries(store, hook_id)
    assert (log["status"], log["attempts"], log["http_status"]) == ("delivered", 1, 204)
    receiver.close()


@pytest.mark.slow
def test_a_failing_receiver_is_retried_with_backoff_and_the_outcome_logged(setup):
    store_url, headers = setup
    receiver = Receiver(fail_first=2)
    with open_store(store_url) as store:
        hook_id, _ = hooks.subscribe(store, receiver.url, ["lineage.upstream_version"], "test", allow_private=True)
    with live_server(ServerConfig(store_url=store_url, hook_backoff=0.01, allow_private_targets=True)) as server:
        train_and_release(server, headers, store_url)
        new_features_version(server, headers)
        with open_store(store_url) as store:
            wait_until(lambda: hooks.deliveries(store, hook_id))
            [log] = hooks.deliveries(store, hook_id)
    assert (log["status"], log["attempts"]) == ("delivered", 3)
    assert len({h["X-Auditgraph-Delivery"] for h, _ in receiver.requests}) == 1  # one delivery, three attempts
    receiver.close()


@pytest.mark.slow
def test_a_receiver_that_never_succeeds_is_logged_as_failed(setup):
    store_url, headers = setup
    receiver = Receiver(fail_first=99)
    with open_store(store_url) as store:
        hook_id, _ = hooks.subscribe(store, receiver.url, ["lineage.upstream_version"], "test", allow_private=True)
    with live_server(
        ServerConfig(store_url=store_url, hook_backoff=0.01, hook_attempts=3, allow_private_targets=True)
    ) as server:
        train_and_release(server, headers, store_url)
        new_features_version(server, headers)
        with open_store(store_url) as store:
            wait_until(lambda: hooks.deliveries(store, hook_id))
            [log] = hooks.deliveries(store, hook_id)
    assert (log["status"], log["attempts"], log["http_status"]) == ("failed", 3, 500)
    receiver.close()


@pytest.mark.slow
def test_a_stuck_receiver_does_not_block_ingestion(setup):
    store_url, headers = setup
    release = threading.Event()
    receiver = Receiver(hold=release)
    with open_store(store_url) as store:
        hooks.subscribe(store, receiver.url, ["lineage.upstream_version"], "test", allow_private=True)
    with live_server(ServerConfig(store_url=store_url, hook_backoff=0.01, allow_private_targets=True)) as server:
        train_and_release(server, headers, store_url)
        new_features_version(server, headers)
        assert receiver.arrived.wait(15)  # the receiver now holds the delivery open
        more = [run_event(f"other{i}") for i in range(20)]
        response = httpx.post(f"{server}/api/v1/lineage/batch", json=more, headers=headers, timeout=5)
        assert response.status_code == 201 and not release.is_set()
        release.set()
    receiver.close()


def test_subscriptions_are_ledger_entries_and_can_be_removed(setup):
    store_url, _ = setup
    with open_store(store_url) as store:
        hook_id, secret = hooks.subscribe(store, "https://ci.example.com/x", ["governance.check_failed"], "alice")
        assert [h["hook_id"] for h in hooks.subscriptions(store)] == [hook_id]
        assert secret == hooks.secret_for(hook_id) and secret not in json.dumps(
            list(store.entries(kind=hooks.SUBSCRIBED))[0].model_dump()
        )
        hooks.unsubscribe(store, hook_id, "alice")
        assert hooks.subscriptions(store) == []
        with pytest.raises(Exception, match="events must be some of"):
            hooks.subscribe(store, "https://x", ["nope"], "alice")
        with pytest.raises(Exception, match="must start with http"):
            hooks.subscribe(store, "ftp://x", ["governance.check_failed"], "alice")


def test_an_old_signature_is_refused():
    body = b'{"a":1}'
    header = hooks.sign("s", int(time.time()) - 600, body)
    assert not hooks.verify_signature("s", header, body)
    assert hooks.verify_signature("s", header, body, tolerance=900)


@pytest.mark.slow
def test_the_version_a_model_was_trained_on_never_triggers_it(setup):
    """Planning runs after the fact; a model released since must not be 'retrained' on its own data."""
    store_url, headers = setup
    with live_server(ServerConfig(store_url=store_url, webhooks=False)) as server:
        train_and_release(server, headers, store_url)
    with open_store(store_url) as store:
        runs = [e.subject for e in store.entries(kind="openlineage.event")]
        assert hooks.retraining_triggers(store, runs) == []


def test_a_model_whose_only_approval_is_a_rejection_is_not_watched(setup, tmp_path):
    """Only a valid approval or a release makes a model watched; a signed rejection does not."""
    from governance import approvals, readmodels

    store_url, headers = setup
    events = [
        run_event(
            "train",
            time="2024-01-02T00:00:00Z",
            inputs=[("s3://lake", "features")],
            outputs=[
                {
                    "namespace": "ml",
                    "name": "churn",
                    "facets": {
                        "datasetType": {"_producer": "x", "_schemaURL": "y", "datasetType": "MODEL"},
                        "version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "1"},
                    },
                }
            ],
        )
    ]
    newer = run_event(
        "features", time="2024-02-01T00:00:00Z", inputs=[("db", "raw")], outputs=[("s3://lake", "features")]
    )
    with open_store(store_url) as store:
        ingest_events(store, events)
        approvals.generate_key(store, "Rita Risk", ["model-risk"], tmp_path / "rita.pem", "admin")
        approvals.approve(
            store,
            "model:ml/churn@1",
            "model-risk",
            approvals.load_signer(tmp_path / "rita.pem"),
            "sha256:" + "0" * 64,
            "test",
            decision="reject",
        )
        assert [a.decision for a in readmodels.approvals(store, "model:ml/churn@1") if a.valid] == ["reject"]
        ingest_events(store, [newer])
        assert hooks.retraining_triggers(store, [f"run:{newer['run']['runId']}"]) == []
        approvals.generate_key(store, "Omar Officer", ["model-risk"], tmp_path / "omar.pem", "admin")
        # an approval alone does not outweigh the rejection: still not approved
        approvals.approve(
            store,
            "model:ml/churn@1",
            "model-risk",
            approvals.load_signer(tmp_path / "omar.pem"),
            "sha256:" + "0" * 64,
            "test",
        )
        assert hooks.retraining_triggers(store, [f"run:{newer['run']['runId']}"]) == []
        release(store, "model:ml/churn@1", tmp_path)
        [trigger] = hooks.retraining_triggers(store, [f"run:{newer['run']['runId']}"])
        assert trigger["model"] == "model:ml/churn@1"


@pytest.mark.slow
def test_an_entry_written_as_soon_as_the_dispatcher_has_started_raises_its_event(setup, tmp_path):
    """start() returns once the dispatcher has read the head it tails from, however slowly its store opens."""
    store_url, _ = setup
    receiver = Receiver()
    trained = run_event(
        "train",
        time="2024-01-02T00:00:00Z",
        inputs=[("s3://lake", "features")],
        outputs=[
            {
                "namespace": "ml",
                "name": "churn",
                "facets": {
                    "datasetType": {"_producer": "x", "_schemaURL": "y", "datasetType": "MODEL"},
                    "version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "1"},
                },
            }
        ],
    )
    newer = run_event(
        "features", time="2024-02-01T00:00:00Z", inputs=[("db", "raw")], outputs=[("s3://lake", "features")]
    )
    with open_store(store_url) as store:
        hooks.subscribe(store, receiver.url, ["lineage.upstream_version"], "test", allow_private=True)
        ingest_events(store, [trained])
        release(store, "model:ml/churn@1", tmp_path)

    def slow_store():
        time.sleep(0.5)  # a store that is slow to open (a remote Neo4j): not a wait for anything
        return open_store(store_url)

    dispatcher = hooks.Dispatcher(slow_store, backoff=0.01, allow_private=True).start()
    try:
        with open_store(store_url) as store:
            ingest_events(store, [newer])
        [(_, body)] = wait_until(lambda: receiver.requests, what="the retraining webhook")
    finally:
        dispatcher.stop()
    assert json.loads(body)["data"]["new_version"] == f"dataset:s3://lake/features@{newer['run']['runId']}"
    receiver.close()
