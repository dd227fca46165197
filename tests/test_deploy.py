"""docker-compose.yml and the Dockerfile, tested as far as a machine without a Docker engine allows.

The compose file must parse and reference what exists; the Dockerfile's own
steps (its COPY set and its RUN) are replayed in a fresh virtualenv, and its
command is started there and answers on its health endpoint.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time

import httpx
import pytest
import yaml
from conftest import ROOT, free_port


def dockerfile() -> list[tuple[str, str]]:
    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if raw.strip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            word, _, rest = current.strip().partition(" ")
            lines.append((word.upper(), rest.strip()))
            current = ""
    return lines


def test_compose_runs_neo4j_526_with_a_healthcheck_and_auditgraph_after_it():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    neo4j, server = compose["services"]["neo4j"], compose["services"]["auditgraph"]
    assert neo4j["image"] == "neo4j:5.26-community"
    assert "cypher-shell" in " ".join(neo4j["healthcheck"]["test"])
    assert neo4j["environment"]["NEO4J_AUTH"].startswith("neo4j/${NEO4J_PASSWORD")
    named = {v.split(":")[0] for v in neo4j["volumes"]}
    assert named == set(compose["volumes"]) == {"neo4j-data", "neo4j-logs"}
    assert server["build"] == "." and (ROOT / "Dockerfile").exists()
    assert server["depends_on"] == {"neo4j": {"condition": "service_healthy"}}
    assert server["environment"]["AUDITGRAPH_STORE"] == "neo4j://neo4j:7687"
    assert server["ports"] == ["${AUDITGRAPH_PORT:-5000}:5000"]
    assert not any("PASSWORD" in k and "$" not in str(v) for k, v in server["environment"].items())


def test_the_dockerfile_copies_only_what_exists_and_serves_the_api():
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    for kind, args in steps:
        if kind == "COPY":
            *sources, _ = args.split()
            assert all((ROOT / s).exists() for s in sources), args
    cmd = next(a for k, a in steps if k == "CMD")
    assert cmd == '["serve", "--host", "0.0.0.0", "--port", "5000"]'
    assert any(k == "USER" and a != "root" for k, a in steps)


@pytest.mark.slow
def test_the_dockerfile_steps_install_and_run_in_a_fresh_virtualenv(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    for kind, args in dockerfile():
        if kind == "COPY":
            *sources, target = args.split()
            for source in sources:
                destination = app / (target if target not in ("./", ".") else source)
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(ROOT / source, app / source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    for kind, args in dockerfile():
        if kind == "RUN" and args.startswith("pip "):
            subprocess.run(
                [str(bin_dir / "pip"), *shlex.split(args)[1:]], cwd=app, check=True, capture_output=True, timeout=900
            )
    port = free_port()
    env = {**os.environ, "AUDITGRAPH_STORE": f"sqlite:///{tmp_path}/docker.db", "PATH": f"{bin_dir}:/usr/bin:/bin"}
    server = subprocess.Popen(
        [str(bin_dir / "auditgraph"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None, server.stdout.read().decode()
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.3)
        assert health.json()["status"] == "ok"
    finally:
        server.terminate()
        server.wait(10)
