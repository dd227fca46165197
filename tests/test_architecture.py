"""The dependency direction is reports -> governance -> lineage, never back."""

from __future__ import annotations

import ast

import pytest

from conftest import ROOT

FORBIDDEN = {"lineage": ("governance", "reports"), "governance": ("reports",)}


def imports(package: str):
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                yield path, [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                yield path, [node.module]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_never_imports_the_ones_above_it(package):
    bad = [(str(p.relative_to(ROOT)), m) for p, names in imports(package) for m in names
           if m.split(".")[0] in FORBIDDEN[package]]
    assert bad == []


def test_nothing_unpickles_or_evaluates_code():
    """Rule files and model files are data: no pickle/joblib load, no eval/exec, no yaml.load outside safe_load."""
    offenders = []
    for package in ("lineage", "governance", "reports"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            for needle in ("pickle.load", "joblib.load", "eval(", "exec(", "yaml.load(", "yaml.unsafe_load"):
                if needle in text and "trusted" not in text:
                    offenders.append((str(path.relative_to(ROOT)), needle))
    assert offenders == []
