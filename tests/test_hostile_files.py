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
from conftest import ingest_events, run_event
from skops.io import dump, dumps

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
    schema = {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": inner,
        "protocol": protocol,
        "_skops_version": version,
    }
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("schema.json", json.dumps(schema))
    return path


def small_frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    d = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.choice(["x", "y", "z"], n),
            "sex": rng.choice(["F", "M"], n),
        }
    )
    return d.assign(y=(d.a + rng.normal(size=n) > 0).astype(int))


# --- .skops files ---------------------------------------------------------------------------


def _exec_code(tmp_path):
    marker = tmp_path / "ran"
    return f"open({str(marker)!r}, 'w').write('pwned')", marker


ATTACKS = {
    "numpy executes a string": lambda t: (
        "numpy.testing._private.utils",
        "runstring",
        (_exec_code(t)[0], {}),
        _exec_code(t)[1],
    ),
    "numpy opens and writes a file": lambda t: ("numpy", "save", (str(t / "ran.npy"), [1, 2]), t / "ran.npy"),
    "scipy opens and writes a file": lambda t: ("scipy.io", "savemat", (str(t / "ran.mat"), {}), t / "ran.mat"),
    "scipy imports a module": lambda t: (
        "scipy._lib.array_api_compat._internal",
        "clone_module",
        ("auditgraph_hostile_marker", {}),
        t / "imported",
    ),
    "scikit-learn runs a script": lambda t: (
        "sklearn.utils._testing",
        "assert_run_python_script_without_output",
        (_exec_code(t)[0], ".+"),
        _exec_code(t)[1],
    ),
    "scikit-learn imports a module": lambda t: (
        "sklearn.externals.array_api_compat._internal",
        "clone_module",
        ("auditgraph_hostile_marker", {}),
        t / "imported",
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_skops_file_calling_a_numpy_scipy_or_sklearn_function_is_refused_by_name_and_runs_nothing(
    attack, tmp_path, monkeypatch
):
    (tmp_path / "auditgraph_hostile_marker.py").write_text(
        f"open({str(tmp_path / 'imported')!r}, 'w').write('imported')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module, name, args, marker = ATTACKS[attack](tmp_path)
    path = hostile_skops(tmp_path / "model.skops", module, name, *args)
    with pytest.raises(ModelFileError) as refused:
        load_model(path)
    assert f"{module}.{name} (as ConstructorFromReduceNode)" in str(refused.value)
    assert str(refused.value).startswith(f"{path}: refusing to load types outside")
    assert not marker.exists()
    assert "auditgraph_hostile_marker" not in sys.modules


@pytest.mark.slow
def test_a_real_pipeline_loads_but_the_same_pipeline_carrying_a_numpy_function_or_a_method_is_refused(tmp_path):
    from numpy.testing._private.utils import runstring
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    d = small_frame()
    X = d[["a", "b", "c"]]

    good = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("cat", OneHotEncoder(handle_unknown="ignore"), ["c"]), ("num", StandardScaler(), ["a", "b"])]
                ),
            ),
            ("f", FunctionTransformer(np.square)),  # a NumPy ufunc on the allow-list
            ("gbm", GradientBoostingClassifier(n_estimators=5, random_state=0)),
        ]
    ).fit(X, d.y)
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
    assert str(refused.value).endswith(
        "sklearn.metrics._dist_metrics.EuclideanDistance64, "
        "sklearn.neighbors._classification.KNeighborsClassifier, "
        "sklearn.neighbors._kd_tree.KDTree"
    )


def test_a_supported_type_is_refused_when_the_file_asks_to_call_it_with_arguments(tmp_path):
    path = hostile_skops(tmp_path / "model.skops", "sklearn.pipeline", "Pipeline", [])
    with pytest.raises(ModelFileError, match=r"types: sklearn\.pipeline\.Pipeline \(as ConstructorFromReduceNode\)$"):
        load_model(path)


@pytest.mark.parametrize("field, value, node", [("left_child", 10**6, 0), ("left_child", 0, 0), ("feature", 7, 0)])
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
    with pytest.raises(
        ModelFileError, match="a decision tree is malformed at node 0 .child or feature index out of range"
    ):
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


@pytest.mark.slow
def test_a_deeply_nested_rule_file_exits_2_naming_the_file_and_the_reason(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text(RULE.replace("{tags: [pii]", "{tags: " + "[" * 3000 + "pii" + "]" * 3000))
    result = run("governance", "validate", path)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}:7: nested deeper than 32 levels\n"


@pytest.mark.parametrize(
    "bomb, message",
    [
        (
            "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
            "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e]\n",
            ":6: expands to more than 100000 nodes (through aliases)",
        ),
        ("a: &a [x, *a]\n", ":1: an alias refers to a node that contains it"),
    ],
)
def test_an_alias_bomb_or_a_self_containing_alias_in_a_rule_file_exits_2(bomb, message, tmp_path):
    path = tmp_path / "bomb.yaml"
    anchors = "\n".join("        " + line for line in bomb.splitlines())
    path.write_text(
        RULE.replace(
            "    params: {tags: [pii], approval_role: privacy-officer}\n",
            "    params:\n      tags: [pii]\n      approval_role: privacy-officer\n      extra:\n" + anchors + "\n",
        )
    )
    result = run("governance", "validate", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}:") and message.split(":", 2)[2] in result.stderr


@pytest.mark.parametrize(
    "where, text, line, key",
    [
        ("the top level", RULE + "rules: []\n", 8, "rules"),
        ("a rule", RULE.replace("    severity: block\n", "    severity: block\n    severity: warn\n"), 6, "severity"),
        (
            "the params",
            RULE.replace("approval_role: privacy-officer}", "approval_role: privacy-officer, tags: []}"),
            7,
            "tags",
        ),
    ],
)
def test_a_duplicate_key_anywhere_in_a_rule_file_is_an_error_naming_file_line_and_key(where, text, line, key, tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    result = run("governance", "validate", path)
    assert result.exit_code == 2, where
    assert result.stderr.startswith(f"Error: {path}:{line}: duplicate key {key!r} (first at line ")


# --- data and models handed to explain and fairness -----------------------------------------


@pytest.fixture
def recorded(tmp_path):
    """A store with model:ml/m@1 (its artifact digest is that of m.pkl) and a real fitted model on disk."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    d = small_frame()
    dump(LogisticRegression().fit(d[["a", "b"]], d.y), tmp_path / "m.skops")
    dump(StandardScaler().fit(d[["a", "b"]]), tmp_path / "scaler.skops")
    (tmp_path / "m.pkl").write_bytes(pickle.dumps({"not": "a model"}))
    url = f"sqlite:///{tmp_path}/s.db"
    from lineage.store import open_store

    facet = {"_producer": "x", "_schemaURL": "y"}
    with open_store(url) as store:
        ingest_events(
            store,
            [
                run_event(
                    "train",
                    outputs=[
                        {
                            "namespace": "ml",
                            "name": "m",
                            "facets": {
                                "datasetType": {**facet, "datasetType": "MODEL"},
                                "version": {**facet, "datasetVersion": "1"},
                                "auditgraph_model": {
                                    **facet,
                                    "version": "1",
                                    "artifactDigest": file_digest(tmp_path / "m.pkl"),
                                },
                            },
                        }
                    ],
                )
            ],
        )
    return {"url": url, "dir": tmp_path, "data": d}


def write(recorded, name: str, change) -> str:
    d = recorded["data"].copy()
    change(d)
    path = recorded["dir"] / name
    d.to_csv(path, index=False)
    return path


# the skops files here are not the recorded artifact (m.pkl is): these tests are about the data
def fairness(recorded, data, *extra):
    return run(
        "governance",
        "fairness",
        MODEL,
        "--model-file",
        recorded["dir"] / "m.skops",
        "--allow-unrecorded-artifact",
        "--data",
        data,
        "--target",
        "y",
        "--protected",
        "sex",
        "--bootstrap",
        "3",
        "--store",
        recorded["url"],
        *extra,
    )


def explain(recorded, data, model="m.skops", *extra):
    return run(
        "governance",
        "explain",
        MODEL,
        "--model-file",
        recorded["dir"] / model,
        "--allow-unrecorded-artifact",
        "--data",
        data,
        "--target",
        "y",
        "--protected",
        "sex",
        "--store",
        recorded["url"],
        *extra,
    )


def test_missing_values_in_a_protected_column_or_the_target_are_a_one_line_error(recorded):
    blank_sex = write(recorded, "blank_sex.csv", lambda d: d.__setitem__("sex", d["sex"].mask(d.index.isin([3, 7]))))
    blank_y = write(recorded, "blank_y.csv", lambda d: d.__setitem__("y", d["y"].mask(d.index == 5)))
    for result, column, count, row in (
        (fairness(recorded, blank_sex), "sex", 2, 4),
        (fairness(recorded, blank_y), "y", 1, 6),
    ):
        assert result.exit_code == 2
        assert result.stderr == (
            f"Error: fairness: {recorded['dir']}/blank_{column}.csv: column {column!r} has {count} "
            f"missing value(s), the first in data row {row}; fill or drop them first\n"
        )
    result = explain(recorded, blank_sex)
    assert result.exit_code == 2 and result.stderr.startswith(
        f"Error: explain: {blank_sex}: column 'sex' has 2 missing"
    )


def test_a_target_with_one_class_is_a_one_line_error(recorded):
    one = write(recorded, "one.csv", lambda d: d.__setitem__("y", 1))
    result = fairness(recorded, one)
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: fairness: {one}: target 'y' has one class only (values: 1); fairness needs rows of both outcomes\n"
    )
    typo = fairness(recorded, write(recorded, "ok.csv", lambda d: None), "--positive", "yes")
    assert typo.exit_code == 2 and "target 'y' has no row equal to --positive 'yes' (values: 0, 1)" in typo.stderr


def test_a_constant_protected_column_is_a_one_line_error_not_a_proxy_check_that_passes(recorded):
    const = write(recorded, "const.csv", lambda d: d.__setitem__("sex", "F"))
    for command, result in (("fairness", fairness(recorded, const)), ("explain", explain(recorded, const))):
        assert result.exit_code == 2
        assert result.stderr == (
            f"Error: {command}: {const}: protected column 'sex' holds one value ('F'): there are no groups to compare\n"
        )


def test_explain_on_a_file_that_is_not_a_model_is_a_one_line_error(recorded):
    data = write(recorded, "ok.csv", lambda d: None)
    scaler = explain(recorded, data, "scaler.skops")
    assert scaler.exit_code == 2
    assert scaler.stderr == (
        f"Error: {recorded['dir']}/scaler.skops: holds a sklearn.preprocessing._data.StandardScaler, "
        "not a model (it has no predict method)\n"
    )
    pickled = explain(recorded, data, "m.pkl", "--trust-pickle")
    assert pickled.exit_code == 2
    assert (
        pickled.stderr
        == f"Error: {recorded['dir']}/m.pkl: holds a builtins.dict, not a model (it has no predict method)\n"
    )


@pytest.mark.slow
def test_data_the_model_cannot_take_is_a_one_line_error(recorded):
    blank_a = write(recorded, "blank_a.csv", lambda d: d.__setitem__("a", d["a"].mask(d.index == 0)))
    for result in (explain(recorded, blank_a), fairness(recorded, blank_a)):
        assert result.exit_code == 2
        assert result.stderr == f"Error: the model cannot be applied to {blank_a}: Input X contains NaN.\n"


def test_the_python_api_refuses_the_same_data_as_the_cli():
    from sklearn.linear_model import LogisticRegression

    from governance import explain as explaining
    from governance import fairness as fair
    from governance.errors import GovernanceError

    d = small_frame(120)
    with pytest.raises(GovernanceError, match=r"^missing values in the protected column\(s\) sex$"):
        fair.assess(d.y, d.y, d.assign(sex=d.sex.where(d.index != 3))[["sex"]], bootstrap=0)
    with pytest.raises(GovernanceError, match="^y_true holds one class only; fairness needs rows of both outcomes$"):
        fair.assess(np.ones(len(d), dtype=int), d.y, d[["sex"]], bootstrap=0)
    model = LogisticRegression().fit(d[["a", "b"]], d.y)
    with pytest.raises(GovernanceError, match="a protected column has missing values or a single value"):
        explaining.explain(model, d[["a", "b"]], protected=d[["sex"]].assign(sex="F"))


# --- model files whose fitted state corrupts memory at predict time --------------------------

PREDICT_IN_A_CHILD = """
import sys, numpy as np
from pathlib import Path
from governance.modelfiles import ModelFileError, load_model
try:
    model = load_model(Path(sys.argv[1]))
except ModelFileError as e:
    print("refused:", e)
    sys.exit(0)
print("predicted:", model.predict(np.random.RandomState(0).rand(6, 2)).tolist())
"""


def load_and_predict_in_a_child(path):
    """Load and predict in another process, so memory corruption fails the test instead of killing pytest."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", PREDICT_IN_A_CHILD, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"the child died ({done.returncode}): {done.stdout}{done.stderr[-500:]}"
    return done.stdout.strip()


def rewrite_schema(source, target, change):
    """Copy a skops file, letting ``change`` edit its schema (and its .npy members) as an attacker would."""
    with zipfile.ZipFile(source) as z:
        files = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(files["schema.json"])
    change(schema, files)
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(target, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return target


def json_int(value: int) -> dict:
    return {
        "__class__": "int",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": str(value),
        "is_json": True,
    }


def two_columns():
    X = np.random.RandomState(0).rand(200, 2)
    return X, (X[:, 0] > 0.5).astype(int)


@pytest.mark.slow
def test_a_gradient_boosting_file_with_more_trees_per_stage_than_outputs_is_refused_before_it_can_write_past_a_buffer(
    tmp_path,
):
    """predict_stages adds tree k of a stage into column k of a one-column array, bounds checks off."""
    from sklearn.ensemble import GradientBoostingRegressor

    X, _ = two_columns()
    dump(
        GradientBoostingRegressor(n_estimators=1, max_depth=1, random_state=0).fit(X, X[:, 0] * 3),
        tmp_path / "gb.skops",
    )

    def widen(schema, files):
        stages = schema["content"]["content"]["estimators_"]
        stages["content"][0]["content"] *= 64  # the one valid tree, 64 times
        stages["shape"]["content"][1] = json_int(64)

    path = rewrite_schema(tmp_path / "gb.skops", tmp_path / "wide.skops", widen)
    assert load_and_predict_in_a_child(path) == (
        f"refused: {path}: model.estimators_: shape (1, 64) of object, expected shape (1, 1); refusing to load it"
    )


def tree_without_its_width(schema, files, feature: int = 50_000_000):
    """Every fitted tree estimator loses n_features_in_; its tree claims 10^8 features and reads feature ``feature``."""
    import io as _io

    def estimators(o):
        if isinstance(o, dict):
            if o.get("__class__") == "DecisionTreeClassifier" and "n_features_in_" in o["content"]["content"]:
                yield o["content"]["content"]
            for v in o.values():
                yield from estimators(v)
        elif isinstance(o, list):
            for v in o:
                yield from estimators(v)

    for state in list(estimators(schema)):
        del state["n_features_in_"]
        state["tree_"]["__reduce__"]["args"]["content"][0] = json_int(100_000_000)
        name = state["tree_"]["content"]["content"]["nodes"]["file"]
        nodes = np.load(_io.BytesIO(files[name]))
        nodes["feature"][0] = feature
        out = _io.BytesIO()
        np.save(out, nodes, allow_pickle=False)
        files[name] = out.getvalue()


@pytest.mark.slow
def test_an_ensemble_whose_trees_hide_in_a_set_is_refused_before_a_tree_reads_outside_the_input(tmp_path):
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.tree import DecisionTreeClassifier

    X, y = two_columns()
    dump(
        AdaBoostClassifier(DecisionTreeClassifier(max_depth=1), n_estimators=1, random_state=0).fit(X, y),
        tmp_path / "ada.skops",
    )

    def into_a_set(schema, files):
        members = schema["content"]["content"]["estimators_"]
        members["__loader__"], members["__class__"] = "SetNode", "set"
        tree_without_its_width(schema, files)

    path = rewrite_schema(tmp_path / "ada.skops", tmp_path / "set.skops", into_a_set)
    assert load_and_predict_in_a_child(path) == (
        f"refused: {path}: model.estimators_: expected a non-empty list; refusing to load it"
    )


@pytest.mark.slow
def test_a_tree_shared_between_a_wide_and_a_narrow_place_is_checked_in_both(tmp_path):
    """The same tree estimator is a forest's tree and a Pipeline attribute; without n_features_in_ it was never bounded."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    X, y = two_columns()
    forest = RandomForestClassifier(n_estimators=1, max_depth=2, random_state=0).fit(X, y)
    pipeline = Pipeline([("rf", forest)])
    pipeline.decoy = forest.estimators_[0]  # one object, two places: skops saves it once
    dump(pipeline, tmp_path / "shared.skops")
    path = rewrite_schema(tmp_path / "shared.skops", tmp_path / "hostile.skops", tree_without_its_width)
    answer = load_and_predict_in_a_child(path)
    assert answer.startswith(f"refused: {path}: model.")
    assert answer.endswith(".n_features_in_: missing from a fitted estimator; refusing to load it")


def fit_case(name):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import PCA
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, PolynomialFeatures, StandardScaler

    X, y = two_columns()
    y3 = (X[:, 0] * 3).astype(int)
    return {
        "multiclass boosting": lambda: GradientBoostingClassifier(n_estimators=2, max_depth=1).fit(X, y3),
        "forest": lambda: RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, y),
        "logistic regression": lambda: LogisticRegression().fit(X, y),
        "one-hot encoder": lambda: Pipeline(
            [
                ("bins", KBinsDiscretizer(3, encode="ordinal", quantile_method="linear")),
                ("hot", OneHotEncoder(sparse_output=False)),
                ("lr", LogisticRegression()),
            ]
        ).fit(X, y),
        "neural network": lambda: MLPClassifier((3,), max_iter=50, random_state=0).fit(X, y),
        "naive Bayes": lambda: GaussianNB().fit(X, y),
        "scaler": lambda: Pipeline([("s", StandardScaler()), ("lr", LogisticRegression())]).fit(X, y),
        "calibrated": lambda: CalibratedClassifierCV(LogisticRegression(), cv=2).fit(X, y),
        "polynomial": lambda: Pipeline([("p", PolynomialFeatures(2)), ("lr", LogisticRegression())]).fit(X, y),
        "pca": lambda: Pipeline([("pca", PCA(2)), ("lr", LogisticRegression())]).fit(X, y),
    }[name]()


# each: the supported model as fitted, then one fitted attribute made to disagree with the rest (what a file can do)
TAMPERED = {
    "multiclass boosting": (
        lambda m: setattr(m, "n_trees_per_iteration_", 1),
        "model.n_trees_per_iteration_: 1, expected 3 for 3 classes",
    ),
    "forest": (
        lambda m: setattr(m.estimators_[1], "n_features_in_", 5),
        "model.estimators_[1].n_features_in_: 5, but its holder has 2",
    ),
    "logistic regression": (
        lambda m: setattr(m, "coef_", m.coef_[:, :1]),
        "model.coef_: shape (1, 1) of float64, expected shape (1, 2)",
    ),
    "one-hot encoder": (
        lambda m: setattr(m[1], "_n_features_outs", [1, 1]),  # codes 0..2 written into 1 column
        "model.steps[1][1]._n_features_outs: does not follow from categories_",
    ),
    "neural network": (
        lambda m: m.coefs_.__setitem__(0, m.coefs_[0][:1]),
        "model.coefs_[0]: does not take 2 inputs or fit intercepts_[0]",
    ),
    "naive Bayes": (
        lambda m: setattr(m, "var_", m.var_[:, :1]),
        "model.var_: shape (2, 1) of float64, expected shape (2, 2)",
    ),
    "scaler": (
        lambda m: setattr(m[0], "mean_", m[0].mean_[:1]),
        "model.steps[0][1].mean_: shape (1,) of float64, expected shape (2,)",
    ),
    "calibrated": (
        lambda m: setattr(m.calibrated_classifiers_[0], "calibrators", m.calibrated_classifiers_[0].calibrators * 2),
        "model.calibrated_classifiers_[0].calibrators: 2 calibrators for 2 classes",
    ),
    "polynomial": (
        lambda m: setattr(m[0], "n_output_features_", 10**9),
        "model.steps[0][1].n_output_features_: 1000000000, expected 6",
    ),
    "pca": (
        lambda m: setattr(m[0], "components_", m[0].components_[:, :1]),
        "model.steps[0][1].components_: shape (2, 1) of float64, expected shape (2, 2)",
    ),
}


@pytest.mark.parametrize("kind", list(TAMPERED))
def test_a_supported_model_loads_and_predicts_as_saved_but_one_whose_fitted_arrays_disagree_is_refused(kind, tmp_path):
    X, _ = two_columns()
    model = fit_case(kind)
    dump(model, tmp_path / "good.skops")
    assert (load_model(tmp_path / "good.skops").predict(X) == model.predict(X)).all()
    tamper, message = TAMPERED[kind]
    tamper(model)
    dump(model, tmp_path / "bad.skops")
    with pytest.raises(ModelFileError) as refused:
        load_model(tmp_path / "bad.skops")
    assert str(refused.value).startswith(f"{tmp_path / 'bad.skops'}: {message}")
    assert str(refused.value).endswith("; refusing to load it")


def test_every_allowed_scikit_learn_type_has_a_fitted_state_check_or_is_declared_inert():
    from governance.modelcheck import CHECKS, INERT
    from governance.modelfiles import SKOPS_ALLOWED

    unchecked = (
        {n for n in SKOPS_ALLOWED if n.startswith("sklearn.")} - set(CHECKS) - INERT - {"sklearn.tree._tree.Tree"}
    )
    assert unchecked == set()


def zip_bomb(path, member: str, chunk: bytes, size: int):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open(member, "w", force_zip64=True) as f:
            for _ in range(size // len(chunk)):
                f.write(chunk)
            f.write(chunk[: size % len(chunk)])
    return path


@pytest.mark.parametrize(
    "member, size, message",
    [
        ("schema.json", 100 << 20, "schema.json unpacks to 104857600 bytes, over the 67108864 limit"),
        (
            "weights.npy",
            300 << 20,
            "unpacks to 314572800 bytes from {size}, over the limit of its own size plus 268435456",
        ),
    ],
)
@pytest.mark.slow
def test_a_small_skops_file_that_unpacks_to_hundreds_of_megabytes_is_refused_from_the_zip_directory(
    member, size, message, tmp_path
):
    import resource
    import time

    path = zip_bomb(
        tmp_path / "bomb.skops", member, b"[]," * (1 << 16) if member == "schema.json" else bytes(1 << 16), size
    )
    assert path.stat().st_size < 1 << 20
    before, started = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    with pytest.raises(ModelFileError) as refused:
        load_model(path)
    assert time.perf_counter() - started < 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 << 10  # KiB: nothing was inflated
    assert str(refused.value) == f"{path}: {message.format(size=path.stat().st_size)}; refusing to inflate it"


def test_a_schema_of_millions_of_tiny_nodes_is_refused_before_it_is_parsed(tmp_path):
    path = zip_bomb(tmp_path / "nodes.skops", "schema.json", b"[]," * (1 << 16), 12 << 20)
    with pytest.raises(ModelFileError) as refused:
        load_model(path)
    assert str(refused.value) == (
        f"{path}: schema.json holds up to 4194304 JSON objects and arrays, over the 1000000 limit; refusing to parse it"
    )


@pytest.mark.slow
def test_explain_explains_a_one_step_pipeline_as_its_only_estimator(recorded):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    d = recorded["data"]
    dump(Pipeline([("m", LogisticRegression().fit(d[["a", "b"]], d.y))]), recorded["dir"] / "one.skops")
    data = write(recorded, "ok.csv", lambda d: None)
    result = run(
        "governance",
        "explain",
        MODEL,
        "--model-file",
        recorded["dir"] / "one.skops",
        "--allow-unrecorded-artifact",
        "--data",
        data,
        "--target",
        "y",
        "--drop",
        "c",
        "--drop",
        "sex",
        "--store",
        recorded["url"],
        "--json",
    )
    assert result.exit_code == 0, result.output
    evidence = json.loads(result.stdout)
    assert evidence["explainer"] == "linear"
    assert evidence["estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert sorted(evidence["features"]) == ["a", "b"]
