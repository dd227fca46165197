"""A third-party plugin adds a store backend, a check, a report format and a route, touching none of our code.

``tests/plugin_example`` is the plugin (its README lists each module and entry point). Here it is
"installed" the way a wheel would be: a ``.dist-info`` folder with its entry points on the path of a
real ``auditgraph`` subprocess. Without it, none of the four exists (the first test shows that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from conftest import ROOT
from producers.serving import serving

PLUGIN = ROOT / "tests" / "plugin_example"
ENTRY_POINTS = """\
[auditgraph.stores]
example = auditgraph_example.store:build

[auditgraph.plugins]
example-check = auditgraph_example.check
example-format = auditgraph_example.csv_format
example-route = auditgraph_example.route
"""
RULES = """\
rules:
  - id: few-inputs
    title: Trained from few dataset versions
    rationale: an example rule of the example check
    severity: block
    check: max_upstream_datasets
    params: {{max: {max}}}
"""


pytestmark = pytest.mark.slow  # a dozen CLI subprocesses and a server


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """An environment in which ``auditgraph`` sees the example plugin, and a store of its backend with the demo."""
    tmp_path = tmp_path_factory.mktemp("plugin")
    site = tmp_path / "site"
    info = site / "auditgraph_example-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: auditgraph-example\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(PLUGIN), os.environ.get("PYTHONPATH", "")])}
    env.pop("AUDITGRAPH_STORE", None)
    url = f"example://{tmp_path / 'store'}"
    done = _cli(env, "demo", "--store", url)
    assert done.returncode == 0, done.stderr
    history = json.loads(
        _cli(env, "lineage", "history", "model:demo/churn-classifier", "--json", "--store", url).stdout
    )
    return {"env": env, "url": url, "tmp": tmp_path, "model": history["versions"][-1]["id"]}


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lineage", *map(str, args)], capture_output=True, text=True, timeout=120, env=env
    )


def test_without_the_plugin_none_of_its_parts_exist(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AUDITGRAPH_STORE"}
    done = _cli(env, "demo", "--store", f"example://{tmp_path}")
    assert done.returncode != 0 and "unknown store URL" in done.stderr
    assert "csv" not in _cli(env, "reports", "release", "--help").stdout


def test_the_plugins_backend_holds_a_real_ledger(installed):
    assert (installed["tmp"] / "store" / "ledger.db").exists()
    verified = _cli(installed["env"], "audit", "verify", "--store", installed["url"])
    assert verified.returncode == 0, verified.stderr
    stats = json.loads(_cli(installed["env"], "store", "stats", "--json", "--store", installed["url"]).stdout)
    assert stats["url"].startswith("example://") and stats["ledger"]["entries"] > 0


def test_the_plugins_check_decides_a_gate(installed):
    env, url, tmp = installed["env"], installed["url"], installed["tmp"]
    (tmp / "loose.yaml").write_text(RULES.format(max=50))
    (tmp / "strict.yaml").write_text(RULES.format(max=0))
    passed = _cli(
        env, "governance", "gate", installed["model"], "--policy", tmp / "loose.yaml", "--json", "--store", url
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    [rule] = json.loads(passed.stdout)["results"]
    assert (rule["check"], rule["status"]) == ("max_upstream_datasets", "pass") and rule["observed"] >= 1
    blocked = _cli(
        env, "governance", "gate", installed["model"], "--policy", tmp / "strict.yaml", "--json", "--store", url
    )
    assert blocked.returncode == 1
    assert json.loads(blocked.stdout)["results"][0]["status"] == "fail"


def test_the_plugins_report_format_is_written_recorded_and_verified(installed):
    env, url, tmp = installed["env"], installed["url"], installed["tmp"]
    (tmp / "loose.yaml").write_text(RULES.format(max=50))
    assert (
        _cli(env, "governance", "gate", installed["model"], "--policy", tmp / "loose.yaml", "--store", url).returncode
        == 0
    )
    out = tmp / "report"
    issued = _cli(
        env, "reports", "release", installed["model"], "--out", out, "--format", "csv", "--json", "--store", url
    )
    assert issued.returncode == 0, issued.stderr
    assert set(json.loads(issued.stdout)["files"]) == {"bundle.json", "rules.csv"}
    assert (out / "rules.csv").read_text() == "rule,check,status\nfew-inputs,max_upstream_datasets,pass\n"
    verified = _cli(env, "reports", "verify", out, "--no-anchor", "--store", url)
    assert verified.returncode == 0 and "rules.csv re-renders byte for byte" in verified.stdout
    (out / "rules.csv").write_text("rule,check,status\nfew-inputs,max_upstream_datasets,pass\nforged,x,pass\n")
    tampered = _cli(env, "reports", "verify", out, "--no-anchor", "--store", url)
    assert tampered.returncode == 1 and "rules.csv differs" in tampered.stderr


def test_the_plugins_route_is_served_behind_the_read_scope(installed, tmp_path):
    env, url = installed["env"], installed["url"]
    made = _cli(env, "keys", "create", "reader", "--scope", "read", "--json", "--store", url)
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    with serving(url, tmp_path / "serve.log", env=env) as base:
        assert httpx.get(f"{base}/api/v1/example/kinds", timeout=10).status_code == 401
        answer = httpx.get(f"{base}/api/v1/example/kinds", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["openlineage.event"] > 0
