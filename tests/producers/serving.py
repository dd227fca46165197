"""What every producer test needs: an ``auditgraph serve`` subprocess on loopback, API keys made with
the CLI, and the producer's own virtualenv, built by the scripts ``.ci/run`` calls.

In CI (CI=true) a missing virtualenv fails the test; elsewhere it is skipped with the command to run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import IN_CI, free_port


def require(path: Path, what: str, install: str) -> Path:
    """``path`` if the producer's install left it there; else fail (CI) or skip, naming the command."""
    if not path.exists():
        reason = f"no {what} ({path}): run {install}"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lineage", *args], capture_output=True, text=True, timeout=60, **kw)


def create_key(store_url: str, name: str, scope: str) -> str:
    made = cli("keys", "create", f"{name}-{scope}", "--scope", scope, "--json", "--store", store_url)
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout)["token"]


def start_server(store_url: str, log: Path, workers: int = 2, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """``auditgraph serve`` on a free loopback port, once /api/v1/health answers; (process, base URL)."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lineage",
                "serve",
                "--store",
                store_url,
                "--port",
                str(port),
                "--no-webhooks",
                "--workers",
                str(workers),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"the server exited: {log.read_text()}"
        assert time.monotonic() < deadline, f"the server did not start: {log.read_text()}"
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)


@contextmanager
def serving(store_url: str, log: Path, workers: int = 2, env: dict | None = None) -> Iterator[str]:
    """A server for the ``with`` block; stopped after it, and its log must then hold no 500 or traceback."""
    proc, base = start_server(store_url, log, workers, env)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log.read_text()
    assert " 500 " not in text and "Traceback" not in text, text[-4000:]
