"""Checkpoints taken as writes arrive (serve and ingest --checkpoint-every), and the HTTP routes that
publish them: the checkpoint note and inclusion/consistency proofs, checked against the tree."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner
from conftest import live_server, scenario_files
from test_server import client_event, ol_client

from lineage import merkle
from lineage.anchors import CHECKPOINT_KIND
from lineage.checkpoint import LogKey, read_checkpoint
from lineage.cli import cli
from lineage.server import auth
from lineage.server.app import ServerConfig
from lineage.store import open_store


@pytest.fixture
def log_key(tmp_path):
    key = LogKey.generate("test.example/ledger")
    path = tmp_path / "log.key"
    path.write_text(key.text() + "\n")
    return key, path


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_the_server_checkpoints_every_n_writes_and_publishes_the_latest(tmp_path, log_key):
    key, key_file = log_key
    url = f"sqlite:///{tmp_path}/s.db"
    with open_store(url) as store:
        token = auth.create_key(store, "producer", ["ingest", "read"], "test")[1]  # entry 1
    config = ServerConfig(store_url=url, checkpoint_every=3, log_key_file=str(key_file))
    headers = {"Authorization": f"Bearer {token}"}
    with live_server(config) as base:
        assert httpx.get(f"{base}/api/v1/checkpoint", headers=headers).status_code == 404
        client = ol_client(base, token)
        for i in range(5):
            client.emit(client_event(f"job{i}", "COMPLETE", outputs=[f"t{i}"]))
        note = httpx.get(f"{base}/api/v1/checkpoint", headers=headers)
        assert note.status_code == 200 and note.headers["content-type"].startswith("text/plain")
        published = read_checkpoint(note.text, key.verifier())
        anonymous = httpx.get(f"{base}/api/v1/checkpoint")
        assert anonymous.status_code == 401
        inclusion = httpx.get(
            f"{base}/api/v1/proof/inclusion", params={"seq": 2, "size": published.size}, headers=headers
        )
    with open_store(url) as store:
        recorded = [r.value for r in CHECKPOINT_KIND.valid(store)]
        entries = list(store.entries(limit=None))
    # entry 1 is the key, events 2 and 3 make 3 new entries: a checkpoint of 3 (entry 4); events 5, 6, 7: one of 7
    assert [c.size for c in recorded] == [3, 7]
    assert [e.kind for e in entries].count("ledger.checkpoint") == 2
    assert published.size == 7 and published.origin == "test.example/ledger"
    leaves = [merkle.entry_leaf(e.hash) for e in entries]
    assert published.root == merkle.root_of(leaves[:7])
    body = inclusion.json()
    assert body["entry_hash"] == entries[1].hash
    merkle.verify_inclusion(1, 7, leaves[1], [bytes.fromhex(h) for h in body["proof"]], published.root)


def test_proofs_over_http_verify_against_the_published_checkpoint(tmp_path, log_key):
    key, key_file = log_key
    url = f"sqlite:///{tmp_path}/s.db"
    with open_store(url) as store:
        token = auth.create_key(store, "producer", ["ingest", "read"], "test")[1]
    headers = {"Authorization": f"Bearer {token}"}
    with live_server(ServerConfig(store_url=url, checkpoint_every=1, log_key_file=str(key_file))) as base:
        client = ol_client(base, token)
        client.emit(client_event("a", "COMPLETE", outputs=["x"]))
        first = read_checkpoint(httpx.get(f"{base}/api/v1/checkpoint", headers=headers).text, key.verifier())
        for i in range(6):
            client.emit(client_event(f"b{i}", "COMPLETE", inputs=["x"], outputs=[f"y{i}"]))
        last = read_checkpoint(httpx.get(f"{base}/api/v1/checkpoint", headers=headers).text, key.verifier())
        consistency = httpx.get(
            f"{base}/api/v1/proof/consistency", params={"old": first.size, "new": last.size}, headers=headers
        ).json()
        inclusions = [
            httpx.get(f"{base}/api/v1/proof/inclusion", params={"seq": seq, "size": last.size}, headers=headers).json()
            for seq in range(1, last.size + 1)
        ]
        too_far = httpx.get(f"{base}/api/v1/proof/inclusion", params={"seq": 1, "size": 10_000}, headers=headers)
        backwards = httpx.get(
            f"{base}/api/v1/proof/consistency", params={"old": last.size, "new": first.size}, headers=headers
        )
    # every write was followed by a checkpoint, and a checkpoint entry alone does not trigger another
    assert (first.size, last.size) == (2, 14)
    merkle.verify_consistency(
        first.size, last.size, first.root, last.root, [bytes.fromhex(h) for h in consistency["proof"]]
    )
    assert consistency["old_root"] == first.root.hex() and consistency["new_root"] == last.root.hex()
    for body in inclusions:
        leaf = bytes.fromhex(body["leaf_hash"])
        assert leaf == merkle.entry_leaf(body["entry_hash"])
        merkle.verify_inclusion(
            body["leaf_index"], last.size, leaf, [bytes.fromhex(h) for h in body["proof"]], last.root
        )
    with pytest.raises(merkle.ProofError):  # a proof for one entry does not prove another
        merkle.verify_inclusion(
            0,
            last.size,
            merkle.entry_leaf(inclusions[1]["entry_hash"]),
            [bytes.fromhex(h) for h in inclusions[0]["proof"]],
            last.root,
        )
    assert too_far.status_code == 409 and "holds" in too_far.json()["detail"]
    assert backwards.status_code == 409 and "no consistency proof" in backwards.json()["detail"]


def test_ingest_checkpoints_every_n_entries_and_at_the_end(tmp_path, log_key):
    key, key_file = log_key
    url = f"sqlite:///{tmp_path}/s.db"
    files = [str(p) for p in scenario_files("airflow")]
    result = run(
        "ingest",
        *files,
        "--store",
        url,
        "--batch-size",
        "2",
        "--checkpoint-every",
        "4",
        "--log-key-file",
        str(key_file),
        "--json",
    )
    assert result.exit_code == 0, result.output
    with open_store(url) as store:
        sizes = [r.value.size for r in CHECKPOINT_KIND.valid(store)]
        head = store.head().seq
    assert sizes and sizes == sorted(sizes) and sizes[-1] == head - 1  # the last covers every event
    assert all(b - a >= 4 for a, b in zip([0, *sizes], sizes[:-1]))  # none before 4 new entries, but the last
    verify = run("audit", "verify", "--store", url, "--log-key", key.verifier().text(), "--json")
    assert verify.exit_code == 0 and json.loads(verify.output)["ok"]


def test_checkpoint_every_without_a_key_is_refused_before_anything_is_written(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    files = [str(p) for p in scenario_files("airflow")]
    result = run("ingest", *files, "--store", url, "--checkpoint-every", "4")
    assert result.exit_code == 2 and "--log-key-file" in result.output
    with open_store(url) as store:
        assert store.head().seq == 0
