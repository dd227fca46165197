"""The dependency direction is reports -> governance -> lineage, never back."""

from __future__ import annotations

import ast
import functools

import pytest
from conftest import ROOT

FORBIDDEN = {"lineage": ("governance", "reports"), "governance": ("reports",)}


@functools.cache
def parsed(path) -> ast.Module:
    """A source file's syntax tree, parsed once for all the checks here."""
    return ast.parse(path.read_text())


def imports(package: str):
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.Import):
                yield path, [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                yield path, [node.module]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_never_imports_the_ones_above_it(package):
    bad = [
        (str(p.relative_to(ROOT)), m)
        for p, names in imports(package)
        for m in names
        if m.split(".")[0] in FORBIDDEN[package]
    ]
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
# Modules that read a ledger payload without interpreting it, and why.
PASS_THROUGH = {
    "lineage/store/base.py": "replays each stored payload, as it is, into its kind's projector (rebuild, copy)",
    "lineage/cli/audit.py": "prints a payload as recorded (audit log --payload)",
    "lineage/graphcheck.py": "replays stored payloads into a scratch store, and asks lineage.projection what each names",
}


def test_no_module_outside_the_read_models_parses_a_ledger_payload():
    """State is read through typed kinds (``EntryKind.read``/``records``) and read models, in every package:
    nothing else calls ``json.loads``/``model_validate_json`` on an entry's ``payload``."""
    offenders = []
    for package in ("lineage", "governance", "reports"):
        for path in (ROOT / package).rglob("*.py"):
            relative = str(path.relative_to(ROOT))
            if relative in READ_MODELS or relative in PASS_THROUGH:
                continue
            for node in ast.walk(parsed(path)):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "attr", "") in ("loads", "model_validate_json")
                    and any(isinstance(a, ast.Attribute) and a.attr == "payload" for a in node.args)
                ):
                    offenders.append((relative, node.lineno))
    assert offenders == []


def test_every_kind_written_by_our_own_code_is_a_declared_entry_kind():
    """No ``Pending("some.kind", ...)`` with a literal kind: a write goes through its ``EntryKind.pending``
    (validated, scoped), except OpenLineage events, whose validation is ``lineage.openlineage``."""
    offenders = []
    for package in ("lineage", "governance", "reports"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "lineage" / "kinds.py":  # EntryKind.pending itself
                continue
            for node in ast.walk(parsed(path)):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", "") == "Pending"
                    and node.args
                    and not (isinstance(node.args[0], ast.Name) and node.args[0].id == "OPENLINEAGE_KIND")
                ):
                    offenders.append((str(path.relative_to(ROOT)), node.lineno))
    assert offenders == []


# Names only an OpenLineage event (or one of its facets) gives meaning to: the event's own fields, its
# datasets' facet groups and the facets the projection interprets. (run/job/namespace/name are left out:
# a backend's rows have columns of those names.)
OPENLINEAGE_FIELDS = frozenset(
    {
        "eventType",
        "eventTime",
        "runId",
        "inputs",
        "outputs",
        "inputFacets",
        "outputFacets",
        "producer",
        "schemaURL",
        "lifecycleStateChange",
        "datasetVersion",
        "columnLineage",
        "symlinks",
        "dataQualityAssertions",
        "jobType",
    }
)


def test_no_store_module_imports_or_parses_openlineage():
    """A backend stores; lineage.projection says what an event means (and what a batch prefetches).

    Checked on every module under lineage/store/: it imports neither lineage.openlineage nor anything
    from it, and no string constant outside a docstring is an OpenLineage field name (so no subscript,
    .get() or comparison reads an event's payload or interprets one of its facets).
    """
    offenders = []
    for path in sorted((ROOT / "lineage" / "store").rglob("*.py")):
        relative, tree = str(path.relative_to(ROOT)), ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name.startswith("lineage.openlineage") for a in node.names):
                offenders.append((relative, node.lineno, "import lineage.openlineage"))
            elif isinstance(node, ast.ImportFrom) and (
                (node.module or "").startswith("lineage.openlineage")
                or (node.module == "lineage" and any(a.name == "openlineage" for a in node.names))
            ):
                offenders.append((relative, node.lineno, f"from {node.module} import ..."))
            elif isinstance(node, ast.Constant) and node.value in OPENLINEAGE_FIELDS and id(node) not in docstrings:
                offenders.append((relative, node.lineno, repr(node.value)))
    assert offenders == []


def test_the_query_service_reads_the_store_through_its_public_interface_only():
    """lineage.graph answers on any backend: it calls no ``_``-named attribute of its store."""
    tree = ast.parse((ROOT / "lineage" / "graph.py").read_text())
    offenders = [
        (node.lineno, node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "store"
    ]
    assert offenders == []


PACKAGES = ("lineage", "governance", "reports")


def modules():
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            yield str(path.relative_to(ROOT)), parsed(path)


# (module or attribute, function) calls that read the clock or hash bytes, and the one module allowed each
ONE_PLACE = {
    ("datetime", "now"): "lineage/clock.py",
    ("datetime", "utcnow"): "lineage/clock.py",
    ("hashlib", "sha256"): "lineage/canonical.py",
    ("hashlib", "file_digest"): "lineage/canonical.py",
}


def test_the_time_and_the_digests_are_made_in_one_place_each():
    """lineage.clock writes every recorded time and lineage.canonical every digest, so no copy can drift."""
    offenders = []
    for relative, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
                home = ONE_PLACE.get((name, node.func.attr))
                if home is not None and relative != home:
                    offenders.append((relative, node.lineno, f"{name}.{node.func.attr}"))
    assert offenders == []


def test_no_assert_statement_guards_anything_at_run_time():
    """`python -O` strips asserts: a check that must hold raises a typed error instead."""
    offenders = [
        (relative, node.lineno)
        for relative, tree in modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Assert)
    ]
    assert offenders == []
