"""Packaging: a light core, extras per integration, every direct import declared.

The static tests read the source (AST) and pyproject.toml. The others run the real CLI and server in
a subprocess whose interpreter cannot import any extra's module (a ``sitecustomize`` on PYTHONPATH
puts a finder first on ``sys.meta_path`` that refuses them), as a ``pip install auditgraph`` without
extras would be. The slow one builds the wheel and installs it, core only, in a fresh virtualenv.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import ROOT, SCENARIOS, free_port

from lineage.cli import cli
from lineage.extras import MODULES

PACKAGES = ("lineage", "governance", "reports")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Modules that are the explain extra's own: only the commands that need it import them, after require().
EXPLAIN_MODULES = {
    "governance.explain",
    "governance.fairness",
    "governance.modelcheck",
    "governance.modelfiles",
    "governance.sdk",
}
BLOCKED = sorted(m for modules in MODULES.values() for m in modules)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings (``name[extra]>=1; marker`` -> ``name``)."""
    return {canonical(re.match(r"[A-Za-z0-9._-]+", r.strip()).group()) for r in requirements}


def sources() -> list[tuple[str, Path]]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return out


def imports(tree: ast.Module, module_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of each import; module level means outside functions and TYPE_CHECKING."""
    found = []

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend((node.lineno, a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.append((node.lineno, node.module))
                found.extend((node.lineno, f"{node.module}.{a.name}") for a in node.names)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and module_level_only:
                continue
            elif isinstance(node, ast.If) and module_level_only and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            else:
                visit(ast.iter_child_nodes(node))

    visit(tree.body)
    return found


def test_every_package_the_code_imports_is_declared_in_pyproject():
    allowed = declared(PYPROJECT["dependencies"])
    for extra, requirements in PYPROJECT["optional-dependencies"].items():
        if extra != "test":  # the code may not need a test tool
            allowed |= declared(requirements)
    distributions = packages_distributions()
    undeclared = []
    for _, path in sources():
        for line, name in imports(ast.parse(path.read_text(), str(path))):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in PACKAGES:
                continue
            names = distributions.get(top)
            if not names:
                undeclared.append(f"{path.relative_to(ROOT)}:{line}: {top} (no installed distribution provides it)")
            elif not any(canonical(d) in allowed for d in names):
                undeclared.append(f"{path.relative_to(ROOT)}:{line}: {top} (from {', '.join(names)})")
    assert not undeclared, (
        "imported but not declared in pyproject.toml [project] dependencies or an extra:\n"
        + "\n".join(sorted(set(undeclared)))
    )


def test_each_extra_in_lineage_extras_is_declared_with_the_distributions_of_its_modules():
    extras = PYPROJECT["optional-dependencies"]
    distributions = packages_distributions()
    for extra, modules in MODULES.items():
        for module in modules:
            names = {canonical(d) for d in distributions.get(module.split(".")[0], [])}
            assert names & declared(extras[extra]), (
                f"{module} is in extra {extra!r} but none of {names} is declared there"
            )
            assert not names & declared(PYPROJECT["dependencies"]), f"{module} is in the core and in extra {extra!r}"
    (everything,) = extras["all"]
    assert set(re.fullmatch(r"auditgraph\[(.*)\]", everything).group(1).split(",")) == set(extras) - {"all", "test"}
    assert "auditgraph[all]" in extras["test"]


def test_no_core_module_imports_an_extra_at_module_level():
    offending = []
    for module, path in sources():
        if module in EXPLAIN_MODULES:
            continue
        for line, name in imports(ast.parse(path.read_text(), str(path)), module_level_only=True):
            if any(name == m or name.startswith(m + ".") for m in [*BLOCKED, *EXPLAIN_MODULES]):
                offending.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert not offending, (
        "import these inside the function that needs them, after lineage.extras.require():\n" + "\n".join(offending)
    )


# --- the core, run with every extra's modules refused ------------------------------------------

SITECUSTOMIZE = f'''
import sys

BLOCKED = {BLOCKED!r}


class RefuseExtras:
    """As if no extra were installed: importing one of their modules fails as a missing module does."""

    def find_spec(self, name, path=None, target=None):
        if any(name == m or name.startswith(m + ".") for m in BLOCKED):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, RefuseExtras())
'''


@pytest.fixture
def core(tmp_path):
    """Run ``auditgraph ARGS`` as a core-only install would (a subprocess): (returncode, stdout, stderr).

    With ``extras=True``, run it here instead, where every extra is installed (and imported already).
    """
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(SITECUSTOMIZE)
    store = f"sqlite:///{tmp_path}/store.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITGRAPH_")}
    env |= {
        "AUDITGRAPH_STORE": store,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")])),
    }

    def run(*args: str, extras: bool = False) -> subprocess.CompletedProcess:
        if extras:
            unset = {k: None for k in os.environ if k.startswith("AUDITGRAPH_")}
            done = CliRunner().invoke(cli, list(args), env={**unset, "AUDITGRAPH_STORE": store}, catch_exceptions=False)
            return subprocess.CompletedProcess(args, done.exit_code, done.stdout, done.stderr)
        return subprocess.run(
            [sys.executable, "-m", "lineage", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )

    run.env = env
    return run


def test_the_blocker_refuses_every_extra_module_and_nothing_else(core):
    probe = (
        "import importlib, sys\nfor m in sys.argv[1:]:\n    try:\n        importlib.import_module(m)\n"
        "        print(m, 'imported')\n    except ImportError:\n        print(m, 'refused')"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *BLOCKED, "click", "fastapi", "jinja2", "pluggy"],
        env=core.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines() == [f"{m} refused" for m in BLOCKED] + [
        f"{m} imported" for m in ("click", "fastapi", "jinja2", "pluggy")
    ]


def test_the_core_cli_lists_every_command_group_without_a_warning(core):
    done = core("--help")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    for group in ("audit", "demo", "governance", "hooks", "ingest", "keys", "lineage", "reports", "serve", "store"):
        assert re.search(rf"^  {group}\s", done.stdout, re.M), f"{group} missing from --help:\n{done.stdout}"


@pytest.mark.slow  # several CLI subprocesses
def test_demo_ingest_lineage_and_audit_verify_run_without_any_extra(core):
    demo = core("demo")
    assert demo.returncode == 0, demo.stderr
    assert "sample: accepted 8, duplicate 0, rejected 0" in demo.stdout
    assert "model:demo/churn-classifier@3" in demo.stdout

    events = sorted((SCENARIOS / "CLL" / "events").glob("*.json"), key=lambda p: int(p.stem))
    assert len(events) == 9, f"the shared corpus is not at {SCENARIOS}"
    ingested = core("ingest", *map(str, events), "--json")
    assert ingested.returncode == 0, ingested.stderr
    assert json.loads(ingested.stdout)["accepted"] == 9

    upstream = core("lineage", "upstream", "dataset:file//tmp/cll_test/tbl1", "--json")
    assert upstream.returncode == 0, upstream.stderr
    sources = {n["id"].split("@")[0] for n in json.loads(upstream.stdout)["nodes"] if n["kind"] == "DatasetVersion"}
    assert sources == {
        "dataset:file//tmp/cll_test/tbl1",
        "dataset:file//tmp/cll_test/cll_source1",
        "dataset:file//tmp/cll_test/cll_source2",
    }

    verified = core("audit", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["ok"] is True and json.loads(verified.stdout)["entries"] == 17


@pytest.mark.slow  # several CLI subprocesses
def test_serve_answers_health_without_any_extra(core, tmp_path):
    port, log = free_port(), tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "lineage", "serve", "--port", str(port), "--no-webhooks"],
            env=core.env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, f"the server exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the server did not answer:\n{log.read_text()}"
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health.status_code == 200 and health.json()["status"] == "ok"
    finally:
        server.terminate()
        server.wait(15)
    assert "could not load" not in log.read_text()


def test_a_command_that_needs_the_explain_extra_exits_3_and_names_the_pip_install(core, tmp_path):
    (tmp_path / "data.csv").write_text("x,y\n1,0\n2,1\n")
    (tmp_path / "model.skops").write_bytes(b"")
    done = core(
        "governance",
        "explain",
        "model:demo/churn-classifier@3",
        "--model-file",
        "model.skops",
        "--data",
        "data.csv",
        "--target",
        "y",
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith(
        "Error: this needs the 'explain' extra: pip install \"auditgraph[explain]\" (No module named 'numpy')"
    ), done.stderr


def test_a_neo4j_store_without_the_driver_says_to_install_the_neo4j_extra(core):
    done = core("lineage", "show", "model:demo/churn-classifier@3", "--store", "neo4j://127.0.0.1:7687")
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("Error: this needs the 'neo4j' extra: pip install \"auditgraph[neo4j]\""), done.stderr


@pytest.mark.slow  # several CLI subprocesses
def test_without_the_signing_extra_an_approval_rule_is_not_evaluated_and_audit_verify_does_not_pass(core, tmp_path):
    assert core("demo", extras=True).returncode == 0
    key = str(tmp_path / "rita.pem")
    keygen = core("governance", "keygen", "Rita Risk", "--role", "model-risk", "--out", key, extras=True)
    assert keygen.returncode == 0, keygen.stderr
    approve = core(
        "governance", "approve", "model:demo/churn-classifier@3", "--role", "model-risk", "--key", key, extras=True
    )
    assert approve.returncode == 0, approve.stderr

    def approval_rule(**kw) -> dict:
        gate = core("governance", "gate", "model:demo/churn-classifier@3", "--policy", "baseline", "--json", **kw)
        assert gate.returncode == 1, gate.stderr  # blocked either way: the demo lacks other evidence
        return next(r for r in json.loads(gate.stdout)["results"] if r["rule"] == "baseline.model-risk-approval")

    assert approval_rule(extras=True)["status"] == "pass"
    rule = approval_rule()
    assert (rule["status"], rule["blocking"]) == ("not_evaluated", True)
    assert "this needs the 'signing' extra: pip install \"auditgraph[signing]\"" in rule["reason"]

    assert core("audit", "verify", extras=True).returncode == 0
    verified = core("audit", "verify")
    assert verified.returncode == 3, verified.stdout + verified.stderr
    assert verified.stdout == "" and 'pip install "auditgraph[signing]"' in verified.stderr


# --- the real thing ----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_wheel_installs_without_numpy_in_a_fresh_virtualenv_and_runs_the_demo(tmp_path):
    """Needs PyPI (the build backend and the core dependencies, pinned by constraints.txt)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path / "dist"), str(src)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = (tmp_path / "dist").glob("auditgraph-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "install", "--quiet", "-c", str(ROOT / "constraints.txt"), str(wheel)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    installed = {
        canonical(p["name"])
        for p in json.loads(
            subprocess.run([*pip, "list", "--format=json"], check=True, capture_output=True, text=True).stdout
        )
    }
    extras_only = {
        "numpy",
        "pandas",
        "scipy",
        "scikit-learn",
        "shap",
        "fairlearn",
        "skops",
        "joblib",
        "neo4j",
        "cryptography",
        "securesystemslib",
        "in-toto-attestation",
        "protobuf",
    }
    assert not installed & extras_only, installed & extras_only
    assert {"auditgraph", "click", "fastapi", "jinja2", "pluggy"} <= installed
    subprocess.run([*pip, "check"], check=True, capture_output=True)

    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AUDITGRAPH_STORE": f"sqlite:///{tmp_path}/s.db",
    }
    demo = subprocess.run(
        [str(venv / "bin" / "auditgraph"), "demo"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert demo.returncode == 0, demo.stderr
    assert "sample: accepted 8, duplicate 0, rejected 0" in demo.stdout and demo.stderr == ""
    (tmp_path / "data.csv").write_text("x,y\n1,0\n2,1\n")
    explain = subprocess.run(
        [
            str(venv / "bin" / "auditgraph"),
            "governance",
            "explain",
            "model:demo/churn-classifier@3",
            "--model-file",
            "data.csv",
            "--data",
            "data.csv",
            "--target",
            "y",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert explain.returncode == 3
    assert 'pip install "auditgraph[explain]"' in explain.stderr
