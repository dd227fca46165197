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


READ_MODELS = {"governance/readmodels.py", "lineage/kinds.py"}


def test_governance_state_is_read_only_through_typed_kinds_and_read_models():
    """No governance or reports module parses a ledger payload itself: it goes through an EntryKind."""
    offenders = []
    for package in ("governance", "reports"):
        for path in (ROOT / package).rglob("*.py"):
            relative = str(path.relative_to(ROOT))
            if relative in READ_MODELS:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("loads", "model_validate_json") \
                        and any(isinstance(a, ast.Attribute) and a.attr == "payload" for a in node.args):
                    offenders.append((relative, node.lineno))
    assert offenders == []
