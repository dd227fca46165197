"""Hostile files a user hands us: model files that run code, rule files that blow up, data that breaks the maths.

Every attack here worked (or crashed with a traceback) before the allow-list of
skops types, the rule-file shape checks and the data checks; each test shows
the refusal, its message and that the attack's side effect did not happen.
"""

from __future__ import annotations

import io
import json
import pickle
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from skops.io import dump, dumps

from conftest import ingest_events, run_event
from governance.modelfiles import ModelFileError, load_model
from lineage.cli import cli
from lineage.sdk import file_digest

MODEL = "model:ml/m@1"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def hostile_skops(path, module: str, name: str, *args):
    """A skops file whose root is rebuilt as ``module.name(*args)``, as skops' ConstructorFromReduceNode does."""
    inner = json.loads(zipfile.ZipFile(io.BytesIO(dumps(tuple(args)))).read("schema.json"))
    protocol, version = inner.pop("protocol"), inner.pop("_skops_version")
    schema = {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
              "content": inner, "protocol": protocol, "_skops_version": version}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("schema.json", json.dumps(schema))
    return path


def small_frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    d = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n),
                      "sex": rng.choice(["F", "M"], n)})
    return d.assign(y=(d.a + rng.normal(size=n) > 0).astype(int))


# --- .skops files ---------------------------------------------------------------------------

def _exec_code(tmp_path):
    marker = tmp_path / "ran"
    return f"open({str(marker)!r}, 'w').write('pwned')", marker


ATTACKS = {
    "numpy executes a string": lambda t: ("numpy.testing._private.utils", "runstring", (_exec_code(t)[0], {}),
                                          _exec_code(t)[1]),
    "numpy opens and writes a file": lambda t: ("numpy", "save", (str(t / "ran.npy"), [1, 2]), t / "ran.npy"),
    "scipy opens and writes a file": lambda t: ("scipy.io", "savemat", (str(t / "ran.mat"), {}), t / "ran.mat"),
    "scipy imports a module": lambda t: ("scipy._lib.array_api_compat._internal", "clone_module",
                                         ("auditgraph_hostile_marker", {}), t / "imported"),
    "scikit-learn runs a script": lambda t: ("sklearn.utils._testing", "assert_run_python_script_without_output",
                                             (_exec_code(t)[0], ".+"), _exec_code(t)[1]),
    "scikit-learn imports a module": lambda t: ("sklearn.externals.array_api_compat._internal", "clone_module",
                                                ("auditgraph_hostile_marker", {}), t / "imported"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_skops_file_calling_a_numpy_scipy_or_sklearn_function_is_refused_by_name_and_runs_nothing(
        attack, tmp_path, monkeypatch):
    (tmp_path / "auditgraph_hostile_marker.py").write_text(
        f"open({str(tmp_path / 'imported')!r}, 'w').write('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module, name, args, marker = ATTACKS[attack](tmp_path)
    path = hostile_skops(tmp_path / "model.skops", module, name, *args)
    with pytest.raises(ModelFileError) as refused:
        load_model(path)
    assert f"{module}.{name} (as ConstructorFromReduceNode)" in str(refused.value)
    assert str(refused.value).startswith(f"{path}: refusing to load types outside")
    assert not marker.exists()
    assert "auditgraph_hostile_marker" not in sys.modules


def test_a_real_pipeline_loads_but_the_same_pipeline_carrying_a_numpy_function_or_a_method_is_refused(tmp_path):
    from numpy.testing._private.utils import runstring
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    d = small_frame()
    X = d[["a", "b", "c"]]

    good = Pipeline([
        ("prep", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["c"]),
                                    ("num", StandardScaler(), ["a", "b"])])),
        ("f", FunctionTransformer(np.square)),  # a NumPy ufunc on the allow-list
        ("gbm", GradientBoostingClassifier(n_estimators=5, random_state=0)),
    ]).fit(X, d.y)
    dump(good, tmp_path / "good.skops")
    assert (load_model(tmp_path / "good.skops").predict_proba(X) == good.predict_proba(X)).all()

    good.named_steps["f"].func = runstring  # called with the features at predict time
    dump(good, tmp_path / "exec.skops")
    with pytest.raises(ModelFileError, match=r": numpy\.testing\._private\.utils\.runstring$"):
        load_model(tmp_path / "exec.skops")

    good.named_steps["f"].func = StandardScaler().fit(d[["a", "b"]]).transform
    dump(good, tmp_path / "method.skops")
    with pytest.raises(ModelFileError, match=r"sklearn\.preprocessing\._data\.StandardScaler\.transform \(a method\)"):
        load_model(tmp_path / "method.skops")


def test_types_skops_trusts_by_default_are_refused_unless_the_project_supports_them(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    d = small_frame()
    dump(KNeighborsClassifier().fit(d[["a", "b"]], d.y), tmp_path / "knn.skops")
    with pytest.raises(ModelFileError) as refused:
        load_model(tmp_path / "knn.skops")
    assert str(refused.value).endswith("sklearn.metrics._dist_metrics.EuclideanDistance64, "
                                       "sklearn.neighbors._classification.KNeighborsClassifier, "
                                       "sklearn.neighbors._kd_tree.KDTree")


def test_a_supported_type_is_refused_when_the_file_asks_to_call_it_with_arguments(tmp_path):
    path = hostile_skops(tmp_path / "model.skops", "sklearn.pipeline", "Pipeline", [])
    with pytest.raises(ModelFileError, match=r"types: sklearn\.pipeline\.Pipeline \(as ConstructorFromReduceNode\)$"):
        load_model(path)


@pytest.mark.parametrize("field, value, node", [("left_child", 10 ** 6, 0), ("left_child", 0, 0),
                                                ("feature", 7, 0)])
def test_a_decision_tree_whose_indices_point_outside_it_is_refused_before_it_can_predict(field, value, node, tmp_path):
    """scikit-learn follows these indices without bounds checks: a crash, or an endless loop for a cycle."""
    from sklearn.tree import DecisionTreeClassifier

    d = small_frame()
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(d[["a", "b"]], d.y)
    state = model.tree_.__getstate__()
    state["nodes"] = state["nodes"].copy()
    state["nodes"][field][node] = value
    model.tree_.__setstate__(state)  # what a crafted file gives; never predict with it
    dump(model, tmp_path / "tree.skops")
    with pytest.raises(ModelFileError, match="a decision tree is malformed at node 0 .child or feature index out of range"):
        load_model(tmp_path / "tree.skops")


# --- rule files -------------------------------------------------------------------------------

RULE = """\
rules:
  - id: pii
    title: Training data tagged pii needs the privacy officer's approval
    rationale: Personal data may only train a model a privacy officer approved.
    severity: block
    check: data_tags
    params: {tags: [pii], approval_role: privacy-officer}
"""


def test_a_deeply_nested_rule_file_exits_2_naming_the_file_and_the_reason(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text(RULE.replace("{tags: [pii]", "{tags: " + "[" * 3000 + "pii" + "]" * 3000))
    result = run("governance", "validate", path)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}:7: nested deeper than 32 levels\n"


@pytest.mark.parametrize("bomb, message", [
    ("a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
     "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e]\n",
     ":6: expands to more than 100000 nodes (through aliases)"),
    ("a: &a [x, *a]\n", ":1: an alias refers to a node that contains it"),
])
def test_an_alias_bomb_or_a_self_containing_alias_in_a_rule_file_exits_2(bomb, message, tmp_path):
    path = tmp_path / "bomb.yaml"
    anchors = "\n".join("        " + line for line in bomb.splitlines())
    path.write_text(RULE.replace("    params: {tags: [pii], approval_role: privacy-officer}\n",
                                 "    params:\n      tags: [pii]\n      approval_role: privacy-officer\n"
                                 "      extra:\n" + anchors + "\n"))
    result = run("governance", "validate", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}:") and message.split(":", 2)[2] in result.stderr


@pytest.mark.parametrize("where, text, line, key", [
    ("the top level", RULE + "rules: []\n", 8, "rules"),
    ("a rule", RULE.replace("    severity: block\n", "    severity: block\n    severity: warn\n"), 6, "severity"),
    ("the params", RULE.replace("approval_role: privacy-officer}", "approval_role: privacy-officer, tags: []}"), 7,
     "tags"),
])
def test_a_duplicate_key_anywhere_in_a_rule_file_is_an_error_naming_file_line_and_key(where, text, line, key, tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    result = run("governance", "validate", path)
    assert result.exit_code == 2, where
    assert result.stderr.startswith(f"Error: {path}:{line}: duplicate key {key!r} (first at line ")
