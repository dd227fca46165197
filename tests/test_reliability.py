"""Crash safety and concurrency, with real processes, real SIGKILLs and real servers."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest
from conftest import NEO4J_URL, ROOT, free_port, make_store, snapshot, wait_until

from lineage.server import auth
from lineage.store import open_store

pytestmark = pytest.mark.slow  # real writer and server processes killed at random moments, trial after trial

WRITER = """
import json, random, sys, uuid
from lineage.ingest import Document, ingest
from lineage.store import open_store

url, seed, count, shared = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)

def event(run, i):
    return {"eventType": "COMPLETE", "eventTime": f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "producer": "https://example.com/crash-test", "run": {"runId": run},
            "job": {"namespace": "crash", "name": f"job{i % 7}"},
            "inputs": [{"namespace": "db", "name": f"t{i % 11}"}], "outputs": [{"namespace": "db", "name": f"t{(i + 1) % 11}"}]}

events = [event(str(uuid.UUID(int=rng.getrandbits(128), version=4)), i) for i in range(count)]
events += [event(str(uuid.UUID(int=10**30 + k, version=4)), k) for k in range(shared)]  # the same in every writer
rng.shuffle(events)
store = open_store(url)
i = 0
while i < len(events):
    n = rng.randint(1, 40)
    chunk = events[i:i + n]
    report = ingest(store, (Document(f"e{i + k}", value=e) for k, e in enumerate(chunk)), "writer", batch=n)
    assert not report.rejected, report.rejected
    for e in chunk:  # acknowledged: the batch has committed
        print("ACK", e["run"]["runId"], flush=True)
    i += n
print("DONE", flush=True)
"""


def start_writer(url: str, seed: int, count: int, shared: int = 0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(seed), str(count), str(shared)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def read_acks(proc: subprocess.Popen, seconds: float) -> list[str]:
    acks: list[str] = []

    def pump():
        for line in proc.stdout:
            if line.startswith("ACK "):
                acks.append(line.split()[1])

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    thread.join(5)
    return acks


def assert_consistent(url: str, acked: list[str]) -> int:
    """The store opens, the chain verifies, every acked event is there, and the graph is exactly its ledger's projection."""
    with open_store(url) as store:
        result = store.verify()
        assert result.ok, result.first_break
        recorded = {e.subject for e in store.entries(kind="openlineage.event")}
        missing = set(f"run:{a}" for a in acked) - recorded
        assert not missing, f"{len(missing)} acknowledged events lost"
        graph = snapshot(store)
        store.rebuild()
        assert snapshot(store) == graph, "the graph was not the projection of its ledger (a half-applied event)"
        return store.head().seq


@pytest.mark.parametrize("trial", range(12))
def test_a_killed_ingesting_process_loses_nothing_acknowledged_and_half_applies_nothing(tmp_path, trial):
    url = f"sqlite:///{tmp_path}/crash.db"
    rng = random.Random(trial)
    proc = start_writer(url, seed=trial, count=3000)
    acked = read_acks(proc, rng.uniform(0.6, 3.0))
    seq = assert_consistent(url, acked)
    assert seq >= len(acked)


SERVER_LOAD_SECONDS = 2.0


def up(base: str, server: subprocess.Popen) -> bool:
    assert server.poll() is None, "the server exited"
    try:
        return httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_killed_server_under_http_load_loses_nothing_it_acknowledged(tmp_path):
    for trial in range(3):
        url = f"sqlite:///{tmp_path}/server{trial}.db"
        with open_store(url) as store:
            _, token = auth.create_key(store, "load", ["ingest"], "test")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "lineage", "serve", "--port", str(port), "--store", url, "--no-webhooks"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: up(base, server), timeout=30, what="the server to answer")
        acked: list[str] = []
        stop = threading.Event()

        def load(worker: int):
            rng = random.Random(worker * 100 + trial)
            with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=5) as client:
                i = 0
                while not stop.is_set():
                    n = rng.choice([1, 1, 5, 20])
                    events = [
                        {
                            "eventTime": "2024-01-01T00:00:00Z",
                            "eventType": "COMPLETE",
                            "producer": "p",
                            "run": {"runId": f"{worker}-{trial}-{i + k}"},
                            "job": {"namespace": "load", "name": f"w{worker}"},
                            "outputs": [{"namespace": "db", "name": f"t{(i + k) % 5}"}],
                        }
                        for k in range(n)
                    ]
                    i += n
                    try:
                        if n == 1:
                            r = client.post(f"{base}/api/v1/lineage", json=events[0])
                        else:
                            r = client.post(f"{base}/api/v1/lineage/batch", json=events)
                    except httpx.HTTPError:
                        return  # the server is gone
                    if r.status_code == 201:
                        acked.extend(e["run"]["runId"] for e in events)

        threads = [threading.Thread(target=load, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        time.sleep(random.Random(trial).uniform(0.5, SERVER_LOAD_SECONDS))
        server.send_signal(signal.SIGKILL)
        server.wait()
        stop.set()
        for t in threads:
            t.join(10)
        assert acked, "the load generator got nothing acknowledged"
        assert_consistent(url, acked)


# --- concurrency ------------------------------------------------------------------


def half_applied_sqlite(path) -> int:
    """In one read transaction: ledger entries whose run node is missing."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN")
        runs = {r[0] for r in db.execute("SELECT subject FROM ledger WHERE kind = 'openlineage.event'")}
        nodes = {r[0] for r in db.execute("SELECT id FROM nodes WHERE kind = 'Run'")}
        db.execute("COMMIT")
        return len(runs - nodes)
    finally:
        db.close()


def half_applied_neo4j(store) -> int:
    rows = store._read(
        "MATCH (e:LedgerEntry {kind: 'openlineage.event'}) "
        "WHERE NOT EXISTS { MATCH (n:Node {id: e.subject}) } RETURN count(e) AS c"
    )
    return rows[0]["c"]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def test_concurrent_writers_keep_one_unbroken_chain_and_readers_never_see_half_an_event(tmp_path, backend):
    store = make_store(backend, tmp_path)
    url = f"sqlite:///{tmp_path}/store.db" if backend == "sqlite" else NEO4J_URL
    writers, each, shared = 4, 150, 40
    procs = [start_writer(url, seed=100 + w, count=each, shared=shared) for w in range(writers)]
    seen_half = []
    while any(p.poll() is None for p in procs):
        seen_half.append(
            half_applied_sqlite(tmp_path / "store.db") if backend == "sqlite" else half_applied_neo4j(store)
        )
        time.sleep(0.05)
    for p in procs:
        out, err = p.communicate()
        assert p.returncode == 0, err[-2000:]
        assert out.strip().endswith("DONE")
    assert seen_half and max(seen_half) == 0
    result = store.verify()
    assert result.ok, result.first_break
    assert result.entries == writers * each + shared  # every event once, the shared ones not duplicated
    subjects = [e.subject for e in store.entries(kind="openlineage.event")]
    assert len(subjects) == len(set(subjects))
    store.close()
