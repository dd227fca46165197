"""The fitted state of a loaded model, checked against what scikit-learn's compiled code assumes.

scikit-learn trusts its own fitted attributes: tree traversal, gradient
boosting's ``predict_stages`` and SciPy's sparse-to-dense copy (one-hot
encoding) index C buffers with them, bounds checks off. A model file sets those
attributes freely, so after loading and before any predict:

* Every object reachable from the model, through lists, tuples, dicts, sets,
  frozensets, object arrays and attributes, is of a kind listed here: plain
  values, NumPy arrays, types and ufuncs, the inert helpers in ``INERT``, or an
  estimator with a validator in ``CHECKS``. Anything else is refused (fail closed).
* A fitted estimator (one with a ``name_`` attribute, as scikit-learn decides)
  has ``n_features_in_`` and its arrays agree with it, with its settings and
  with the estimators it holds. Each holder checks what it holds against its own
  state, so an object shared by two holders is checked against both.
* A decision tree's node count is within its allocated nodes, its children come
  after their node and inside the tree, its features are below its estimator's
  ``n_features_in_``, and its outputs and classes are its estimator's.

Nothing here predicts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lineage.extras import require

require("explain", "numpy", "pandas", "sklearn")  # a clear pip hint, not a bare ModuleNotFoundError

import numpy as np

from governance.errors import FittedStateError

_LEAVES = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    slice,
    np.generic,
    np.dtype,
    type,
    np.ufunc,
    np.random.RandomState,
)
_MAX_POLYNOMIAL_OUTPUTS = 10_000_000


def check_model(model: Any) -> None:
    """Raise FittedStateError naming the first object or attribute that cannot be trusted."""
    stack, seen = [(model, "model")], set()
    while stack:  # iterative: a deep file must not exhaust the stack
        obj, where = stack.pop()
        if id(obj) in seen:  # its own state was checked; each holder checks its part in it
            continue
        seen.add(id(obj))
        stack.extend(_parts(obj, where))


def _parts(obj: Any, where: str) -> list[tuple[Any, str]]:
    """Check ``obj`` on its own and return what it holds, each with where it is."""
    from sklearn.tree._tree import Tree

    if isinstance(obj, _LEAVES):
        return []
    if isinstance(obj, np.ndarray):
        return [(v, f"{where}[{i}]") for i, v in enumerate(obj.ravel())] if obj.dtype.hasobject else []
    if isinstance(obj, (list, tuple)):
        return [(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return [(v, f"{where}{{}}") for v in obj]
    if isinstance(obj, dict):
        return [(v, f"{where}[{k!r}]") for k, v in obj.items()] + [(k, f"{where}.keys()") for k in obj]
    if isinstance(obj, Tree):
        _tree(obj, where, obj.n_features, obj.n_outputs, None)
        return []
    kind = type(obj)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if name in CHECKS:
        if name in _ALWAYS or _fitted(obj):
            CHECKS[name](obj, where)
    elif name not in INERT:
        raise FittedStateError(where, f"a {name} is not a supported part of a model")
    return [(v, f"{where}.{k}") for k, v in vars(obj).items()] if hasattr(obj, "__dict__") else []


def _fitted(est: Any) -> bool:
    return any(k.endswith("_") and not k.startswith("__") for k in vars(est))


# --- small checks ---------------------------------------------------------------------------


def _get(est: Any, where: str, name: str) -> Any:
    if name not in vars(est):
        raise FittedStateError(f"{where}.{name}", "missing from a fitted estimator")
    return vars(est)[name]


def _int(est: Any, where: str, name: str, low: int = 1) -> int:
    value = _get(est, where, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise FittedStateError(f"{where}.{name}", f"{value!r} is not an integer of at least {low}")
    return int(value)


def _array(est: Any, where: str, name: str, shape: tuple, kinds: str = "fiub") -> np.ndarray:
    """``shape`` holds ints, or None for any length."""
    value = _get(est, where, name)
    if (
        not isinstance(value, np.ndarray)
        or value.dtype.kind not in kinds
        or value.ndim != len(shape)
        or any(s is not None and s != got for s, got in zip(shape, value.shape))
    ):
        got = f"shape {value.shape} of {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
        want = tuple("any" if s is None else s for s in shape)
        raise FittedStateError(f"{where}.{name}", f"{got}, expected shape {want}")
    return value


def _optional_array(est: Any, where: str, name: str, shape: tuple) -> None:
    if vars(est).get(name) is not None:
        _array(est, where, name, shape)


def _width(est: Any, where: str) -> int:
    n = _int(est, where, "n_features_in_")
    if "feature_names_in_" in vars(est):
        _array(est, where, "feature_names_in_", (n,), "OUS")
    return n


def _classes(est: Any, where: str, low: int = 1) -> int:
    c = len(_array(est, where, "classes_", (None,), "fiubOUS"))
    if c < low:
        raise FittedStateError(f"{where}.classes_", f"{c} class(es), expected at least {low}")
    if "n_classes_" in vars(est) and _int(est, where, "n_classes_") != c:
        raise FittedStateError(f"{where}.n_classes_", f"{vars(est)['n_classes_']} but classes_ has {c}")
    return c


def _same(child: Any, where: str, n: int, what: str = "n_features_in_") -> None:
    got = vars(child).get(what) if hasattr(child, "__dict__") else None
    if isinstance(got, np.ndarray) or got != n:
        raise FittedStateError(f"{where}.{what}", f"{got!r}, but its holder has {n}")


def _same_classes(child: Any, where: str, classes: np.ndarray) -> None:
    got = vars(child).get("classes_") if hasattr(child, "__dict__") else None
    if not isinstance(got, np.ndarray) or got.shape != classes.shape or not (got == classes).all():
        raise FittedStateError(f"{where}.classes_", "differs from its holder's classes_")


def _of_type(obj: Any, where: str, names: set[str]) -> None:
    name = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if name not in names:
        raise FittedStateError(where, f"a {name}, expected one of {', '.join(sorted(names))}")


def _list(est: Any, where: str, name: str, kinds=(list,)) -> list:
    value = _get(est, where, name)
    if not isinstance(value, kinds) or len(value) < 1:
        raise FittedStateError(f"{where}.{name}", f"expected a non-empty {kinds[0].__name__}")
    return list(value)


# --- decision trees -------------------------------------------------------------------------

_TREE = "sklearn.tree._classes."
_CLASSIFIER_TREES = {_TREE + "DecisionTreeClassifier", _TREE + "ExtraTreeClassifier"}
_REGRESSOR_TREES = {_TREE + "DecisionTreeRegressor", _TREE + "ExtraTreeRegressor"}


def _tree(tree: Any, where: str, n: int, outputs: int, n_classes: list[int] | None) -> None:
    """A Tree whose every index stays inside its buffers and the ``n`` columns it is given."""
    if tree.n_features != n or tree.n_outputs != outputs or outputs < 1:
        raise FittedStateError(
            where,
            f"a tree for {tree.n_features} features and {tree.n_outputs} outputs, "
            f"but its estimator has {n} and {outputs}",
        )
    got = [int(c) for c in tree.n_classes]
    if n_classes is not None and got != n_classes or min(got) < 1 or tree.max_n_classes != max(got):
        raise FittedStateError(where, f"a tree with {got} classes per output, expected {n_classes}")
    count = tree.node_count
    if not 1 <= count <= tree.capacity:  # the node arrays below are read up to node_count
        raise FittedStateError(where, f"a tree of {count} nodes in room for {tree.capacity}")
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    index = np.arange(count)
    leaf = left == -1
    bad = (leaf != (right == -1)) | ~leaf & (
        (left <= index) | (left >= count) | (right <= index) | (right >= count) | (feature < 0) | (feature >= n)
    )
    if bad.any():
        raise FittedStateError(
            where, f"a decision tree is malformed at node {int(np.argmax(bad))} (child or feature index out of range)"
        )
    if tree.value.shape != (count, outputs, max(got)):
        raise FittedStateError(f"{where}.value", f"shape {tree.value.shape}, expected {(count, outputs, max(got))}")


def _tree_estimator(est: Any, where: str) -> None:
    from sklearn.tree._tree import Tree

    n, outputs = _width(est, where), _int(est, where, "n_outputs_")
    tree = _get(est, where, "tree_")
    if not isinstance(tree, Tree):
        raise FittedStateError(f"{where}.tree_", f"a {type(tree).__name__}, not a fitted tree")
    n_classes = [1] * outputs
    if f"{type(est).__module__}.{type(est).__qualname__}" in _CLASSIFIER_TREES:
        if outputs == 1:
            n_classes = [_classes(est, where)]
        else:
            n_classes = [len(c) for c in _list(est, where, "classes_")]
            if [int(c) for c in _array(est, where, "n_classes_", (outputs,), "iu")] != n_classes:
                raise FittedStateError(f"{where}.n_classes_", "differs from the lengths of classes_")
    _tree(tree, f"{where}.tree_", n, outputs, n_classes)


# --- ensembles ------------------------------------------------------------------------------


def _forest(est: Any, where: str) -> None:
    n, outputs = _width(est, where), _int(est, where, "n_outputs_")
    trees = _list(est, where, "estimators_")
    if len(trees) != vars(est).get("n_estimators"):
        raise FittedStateError(
            f"{where}.estimators_", f"{len(trees)} trees, but n_estimators is {vars(est).get('n_estimators')!r}"
        )
    classifier = type(est).__name__.endswith("Classifier")
    classes = vars(est).get("classes_") if classifier and outputs == 1 else None
    if classes is not None:
        _classes(est, where, 2)
    for i, tree in enumerate(trees):
        _of_type(tree, f"{where}.estimators_[{i}]", _CLASSIFIER_TREES if classifier else _REGRESSOR_TREES)
        _same(tree, f"{where}.estimators_[{i}]", n)
        _same(tree, f"{where}.estimators_[{i}]", outputs, "n_outputs_")
        if classes is not None:
            _same_classes(tree, f"{where}.estimators_[{i}]", classes)


_GB_BINARY = {"sklearn._loss.loss.HalfBinomialLoss", "sklearn._loss.loss.ExponentialLoss"}
_GB_MULTICLASS = {"sklearn._loss.loss.HalfMultinomialLoss"}
_GB_REGRESSION = {f"sklearn._loss.loss.{n}" for n in ("HalfSquaredError", "AbsoluteError", "HuberLoss", "PinballLoss")}


def _gradient_boosting(est: Any, where: str) -> None:
    """predict_stages adds every estimators_[i, k] into column k of an array as wide as the init prediction."""
    n, stages, per = _width(est, where), _int(est, where, "n_estimators_"), _int(est, where, "n_trees_per_iteration_")
    classifier = type(est).__name__.endswith("Classifier")
    c = _classes(est, where, 2) if classifier else 1
    expected = (1 if c <= 2 else c) if classifier else 1
    if per != expected:
        raise FittedStateError(f"{where}.n_trees_per_iteration_", f"{per}, expected {expected} for {c} classes")
    _of_type(
        _get(est, where, "_loss"),
        f"{where}._loss",
        _GB_REGRESSION if not classifier else _GB_BINARY if c == 2 else _GB_MULTICLASS,
    )
    trees = _array(est, where, "estimators_", (stages, per), "O")
    for (i, k), tree in np.ndenumerate(trees):
        _of_type(tree, f"{where}.estimators_[{i}, {k}]", {_TREE + "DecisionTreeRegressor"})
        _same(tree, f"{where}.estimators_[{i}, {k}]", n)
        _same(tree, f"{where}.estimators_[{i}, {k}]", 1, "n_outputs_")
    _optional_array(est, where, "train_score_", (stages,))
    init = _get(est, where, "init_")
    if isinstance(init, str) and init == "zero":
        return
    if classifier:  # its predict_proba gives the columns the trees add to
        _of_type(init, f"{where}.init_", {"sklearn.dummy.DummyClassifier"})
        _same_classes(init, f"{where}.init_", vars(est)["classes_"])
    else:
        _of_type(init, f"{where}.init_", {"sklearn.dummy.DummyRegressor"})
    _same(init, f"{where}.init_", 1, "n_outputs_")


def _adaboost(est: Any, where: str) -> None:
    n = _width(est, where)
    members = _list(est, where, "estimators_")
    weights = _array(est, where, "estimator_weights_", (None,), "f")
    _array(est, where, "estimator_errors_", weights.shape, "f")
    if not len(members) <= len(weights):
        raise FittedStateError(f"{where}.estimators_", f"{len(members)} estimators for {len(weights)} weights")
    classes = None
    if type(est).__name__.endswith("Classifier"):
        _classes(est, where, 2)
        classes = vars(est)["classes_"]
    for i, member in enumerate(members):
        _same(member, f"{where}.estimators_[{i}]", n)
        if classes is not None:
            _same_classes(member, f"{where}.estimators_[{i}]", classes)


# --- linear models, naive Bayes, neural networks, dummies -----------------------------------


def _intercept(est: Any, where: str, rows: int | None) -> None:
    value = _get(est, where, "intercept_")
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return
    _array(est, where, "intercept_", () if rows is None else (rows,), "f")


def _linear(est: Any, where: str) -> None:
    n = _width(est, where)
    if type(est).__name__.endswith("Classifier") or type(est).__name__ in ("LogisticRegression", "LinearSVC"):
        c = _classes(est, where, 2)
        rows = 1 if c == 2 else c
        _array(est, where, "coef_", (rows, n), "f")
        _intercept(est, where, rows)
        return
    coef = _get(est, where, "coef_")
    if isinstance(coef, np.ndarray) and coef.ndim == 2:
        _intercept(est, where, len(_array(est, where, "coef_", (None, n), "f")))
    else:
        _array(est, where, "coef_", (n,), "f")
        _intercept(est, where, None)


def _gaussian_nb(est: Any, where: str) -> None:
    n, c = _width(est, where), _classes(est, where)
    for name, shape in (("theta_", (c, n)), ("var_", (c, n)), ("class_prior_", (c,)), ("class_count_", (c,))):
        _array(est, where, name, shape, "f")


def _bernoulli_nb(est: Any, where: str) -> None:
    n, c = _width(est, where), _classes(est, where)
    for name, shape in (
        ("feature_log_prob_", (c, n)),
        ("class_log_prior_", (c,)),
        ("feature_count_", (c, n)),
        ("class_count_", (c,)),
    ):
        _array(est, where, name, shape, "f")


def _mlp(est: Any, where: str) -> None:
    from sklearn.neural_network._base import ACTIVATIONS

    n = _width(est, where)
    coefs, intercepts = _list(est, where, "coefs_"), _list(est, where, "intercepts_")
    if len(coefs) != len(intercepts) or _int(est, where, "n_layers_", 2) != len(coefs) + 1:
        raise FittedStateError(f"{where}.coefs_", "layer counts of coefs_, intercepts_ and n_layers_ differ")
    width = n
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        if not (
            isinstance(w, np.ndarray)
            and w.ndim == 2
            and w.shape[0] == width
            and w.dtype.kind == "f"
            and isinstance(b, np.ndarray)
            and b.shape == (w.shape[1],)
            and b.dtype.kind == "f"
        ):
            raise FittedStateError(f"{where}.coefs_[{i}]", f"does not take {width} inputs or fit intercepts_[{i}]")
        width = w.shape[1]
    if _int(est, where, "n_outputs_") != width:
        raise FittedStateError(f"{where}.n_outputs_", f"{vars(est)['n_outputs_']}, but the last layer has {width}")
    if vars(est).get("out_activation_") not in ACTIVATIONS:
        raise FittedStateError(f"{where}.out_activation_", f"{vars(est).get('out_activation_')!r} is not an activation")
    if "_label_binarizer" in vars(est):
        c = len(_array(vars(est)["_label_binarizer"], f"{where}._label_binarizer", "classes_", (None,), "fiubOUS"))
        if width not in (c, 1 if c == 2 else c):
            raise FittedStateError(f"{where}.n_outputs_", f"{width} outputs for {c} classes")


def _dummy_classifier(est: Any, where: str) -> None:
    outputs = _int(est, where, "n_outputs_")
    if outputs == 1:
        c = _classes(est, where)
        _array(est, where, "class_prior_", (c,), "f")


def _dummy_regressor(est: Any, where: str) -> None:
    _array(est, where, "constant_", (1, _int(est, where, "n_outputs_")), "fiu")


def _calibrated(est: Any, where: str) -> None:
    c = _classes(est, where, 2)
    for i, part in enumerate(_list(est, where, "calibrated_classifiers_")):
        at = f"{where}.calibrated_classifiers_[{i}]"
        _of_type(part, at, {"sklearn.calibration._CalibratedClassifier"})
        _array(part, at, "classes", (c,), "fiubOUS")
        calibrators = _list(part, at, "calibrators")
        if len(calibrators) != (1 if c == 2 else c):
            raise FittedStateError(f"{at}.calibrators", f"{len(calibrators)} calibrators for {c} classes")
        for j, calibrator in enumerate(calibrators):
            _of_type(calibrator, f"{at}.calibrators[{j}]", {"sklearn.calibration._SigmoidCalibration"})


def _sigmoid(est: Any, where: str) -> None:
    for name in ("a_", "b_"):
        value = _get(est, where, name)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise FittedStateError(f"{where}.{name}", f"{type(value).__name__}, expected a number")


# --- transformers ---------------------------------------------------------------------------


def _per_feature(*names: str, optional: tuple[str, ...] = ()) -> Callable[[Any, str], None]:
    def check(est: Any, where: str) -> None:
        n = _width(est, where)
        for name in names:
            _array(est, where, name, (n,))
        for name in optional:
            _optional_array(est, where, name, (n,))

    return check


def _standard_scaler(est: Any, where: str) -> None:
    n = _width(est, where)
    for name in ("mean_", "var_", "scale_"):
        _optional_array(est, where, name, (n,))
    if isinstance(vars(est).get("n_samples_seen_"), np.ndarray):
        _array(est, where, "n_samples_seen_", (n,), "iu")


def _categories(est: Any, where: str) -> list[np.ndarray]:
    n = _width(est, where)
    cats = _list(est, where, "categories_")
    if len(cats) != n:
        raise FittedStateError(f"{where}.categories_", f"{len(cats)} lists for {n} features")
    for i, c in enumerate(cats):
        if not isinstance(c, np.ndarray) or c.ndim != 1 or len(c) < 1:
            raise FittedStateError(f"{where}.categories_[{i}]", "not a non-empty 1-D array")
        known = c[~np.isnan(c)] if c.dtype.kind == "f" else c
        if c.dtype.kind in "fiub" and (known[:-1] >= known[1:]).any():  # encoded by binary search
            raise FittedStateError(f"{where}.categories_[{i}]", "numeric categories are not sorted and unique")
    return cats


def _index_list(est: Any, where: str, name: str, sizes: list[int]) -> list:
    """None, or one entry per feature: None or an index (or indices) below that feature's size."""
    value = _get(est, where, name) if name in vars(est) else None
    if value is None:
        return [None] * len(sizes)
    if len(value) != len(sizes):
        raise FittedStateError(f"{where}.{name}", f"{len(value)} entries for {len(sizes)} features")
    for i, (entry, size) in enumerate(zip(value, sizes)):
        if entry is not None and not (
            np.asarray(entry).dtype.kind in "iu" and ((np.asarray(entry) >= 0) & (np.asarray(entry) < size)).all()
        ):
            raise FittedStateError(f"{where}.{name}[{i}]", f"{entry!r} is not an index below {size}")
    return list(value)


def _one_hot(est: Any, where: str) -> None:
    """Column i's codes land in [offset_i, offset_i + _n_features_outs[i]) of a dense copy made without bounds checks."""
    sizes = [len(c) for c in _categories(est, where)]
    infrequent = bool(vars(est).get("_infrequent_enabled", False))
    mappings = (
        _index_list(est, where, "_default_to_infrequent_mappings", [max(sizes) + 1] * len(sizes))
        if infrequent
        else [None] * len(sizes)
    )
    if infrequent:
        _index_list(est, where, "_infrequent_indices", sizes)
    drops = _index_list(
        est,
        where,
        "_drop_idx_after_grouping",
        [len(set(m.tolist())) if m is not None else s for m, s in zip(mappings, sizes)],
    )
    _index_list(est, where, "drop_idx_", sizes)
    outs = _get(est, where, "_n_features_outs")
    if not isinstance(outs, list) or outs != est._compute_n_features_outs():
        raise FittedStateError(
            f"{where}._n_features_outs", "does not follow from categories_ and the dropped and infrequent categories"
        )
    for i, (mapping, size, drop, out) in enumerate(zip(mappings, sizes, drops, outs)):
        if mapping is not None and len(mapping) != size:
            raise FittedStateError(f"{where}._default_to_infrequent_mappings[{i}]", f"maps {len(mapping)} of {size}")
        top = int(np.max(mapping)) if mapping is not None else size - 1
        top -= drop is not None and top > drop
        if top >= out:
            raise FittedStateError(f"{where}._n_features_outs[{i}]", f"{out} columns for codes up to {top}")


def _ordinal(est: Any, where: str) -> None:
    _categories(est, where)


def _kbins(est: Any, where: str) -> None:
    n = _width(est, where)
    edges = _array(est, where, "bin_edges_", (n,), "O")
    bins = _array(est, where, "n_bins_", (n,), "iu")
    for i, e in enumerate(edges):
        if not isinstance(e, np.ndarray) or e.ndim != 1 or e.dtype.kind != "f" or len(e) != bins[i] + 1:
            raise FittedStateError(f"{where}.bin_edges_[{i}]", f"not {bins[i] + 1} float edges")


def _polynomial(est: Any, where: str) -> None:
    n = _width(est, where)
    low, high = _int(est, where, "_min_degree", 0), _int(est, where, "_max_degree", 0)
    out = _int(est, where, "n_output_features_")
    expected = type(est)._num_combinations(
        n, low, high, bool(vars(est).get("interaction_only")), bool(vars(est).get("include_bias"))
    )
    if out != expected or out > _MAX_POLYNOMIAL_OUTPUTS:
        raise FittedStateError(
            f"{where}.n_output_features_", f"{out}, expected {expected} (at most {_MAX_POLYNOMIAL_OUTPUTS})"
        )


def _function_transformer(est: Any, where: str) -> None:
    if "n_features_in_" in vars(est):
        _width(est, where)


def _pca(est: Any, where: str) -> None:
    n, k = _width(est, where), _int(est, where, "n_components_")
    _array(est, where, "components_", (k, n), "f")
    _array(est, where, "mean_", (n,), "f")
    _array(est, where, "explained_variance_", (k,), "f")


def _label_encoder(est: Any, where: str) -> None:
    _array(est, where, "classes_", (None,), "fiubOUS")


def _label_binarizer(est: Any, where: str) -> None:
    _label_encoder(est, where)
    if vars(est).get("y_type_") not in ("binary", "multiclass", "multilabel-indicator"):
        raise FittedStateError(f"{where}.y_type_", f"{vars(est).get('y_type_')!r} is not a target type")


# --- composites -----------------------------------------------------------------------------


def _steps(pairs: Any, where: str) -> None:
    from sklearn.base import BaseEstimator

    if not isinstance(pairs, list) or not pairs:
        raise FittedStateError(where, "expected a non-empty list of (name, estimator)")
    for i, pair in enumerate(pairs):
        if not (
            isinstance(pair, tuple)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and (isinstance(pair[1], BaseEstimator) or pair[1] in (None, "passthrough", "drop"))
        ):
            raise FittedStateError(f"{where}[{i}]", "not a (name, estimator) pair")


def _pipeline(est: Any, where: str) -> None:
    _steps(_get(est, where, "steps"), f"{where}.steps")


def _feature_union(est: Any, where: str) -> None:
    _steps(_get(est, where, "transformer_list"), f"{where}.transformer_list")


def _column_transformer(est: Any, where: str) -> None:
    """Columns are picked with bounds-checked pandas/NumPy indexing; still, each must name a column there is."""
    n = _width(est, where)
    names = set(map(str, vars(est).get("feature_names_in_", [])))
    for i, entry in enumerate(_list(est, where, "transformers_")):
        if not (isinstance(entry, tuple) and len(entry) == 3 and isinstance(entry[0], str)):
            raise FittedStateError(f"{where}.transformers_[{i}]", "not a (name, transformer, columns) triple")
        columns = entry[2]
        picked = np.asarray(columns if isinstance(columns, (list, tuple, np.ndarray)) else [columns])
        ok = (
            picked.dtype.kind == "b"
            and len(picked) == n
            or picked.dtype.kind in "iu"
            and ((picked >= -n) & (picked < n)).all()
            or picked.dtype.kind in "OU"
            and set(map(str, picked)) <= names
            or picked.size == 0
            or isinstance(columns, slice)
        )
        if not ok:
            raise FittedStateError(
                f"{where}.transformers_[{i}]", f"columns {columns!r} are not among the {n} it was fitted on"
            )


_S = "sklearn."
CHECKS: dict[str, Callable[[Any, str], None]] = {
    **{name: _tree_estimator for name in _CLASSIFIER_TREES | _REGRESSOR_TREES},
    **{
        f"{_S}ensemble._forest.{n}": _forest
        for n in ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor")
    },
    **{
        f"{_S}ensemble._gb.{n}": _gradient_boosting for n in ("GradientBoostingClassifier", "GradientBoostingRegressor")
    },
    **{f"{_S}ensemble._weight_boosting.{n}": _adaboost for n in ("AdaBoostClassifier", "AdaBoostRegressor")},
    **{
        f"{_S}linear_model.{n}": _linear
        for n in (
            "_logistic.LogisticRegression",
            "_base.LinearRegression",
            "_ridge.Ridge",
            "_ridge.RidgeClassifier",
            "_coordinate_descent.Lasso",
            "_coordinate_descent.ElasticNet",
            "_stochastic_gradient.SGDClassifier",
            "_stochastic_gradient.SGDRegressor",
        )
    },
    f"{_S}svm._classes.LinearSVC": _linear,
    f"{_S}naive_bayes.GaussianNB": _gaussian_nb,
    f"{_S}naive_bayes.BernoulliNB": _bernoulli_nb,
    **{f"{_S}neural_network._multilayer_perceptron.{n}": _mlp for n in ("MLPClassifier", "MLPRegressor")},
    f"{_S}dummy.DummyClassifier": _dummy_classifier,
    f"{_S}dummy.DummyRegressor": _dummy_regressor,
    f"{_S}calibration.CalibratedClassifierCV": _calibrated,
    f"{_S}calibration._SigmoidCalibration": _sigmoid,
    f"{_S}preprocessing._data.StandardScaler": _standard_scaler,
    f"{_S}preprocessing._data.MinMaxScaler": _per_feature("min_", "scale_", "data_min_", "data_max_", "data_range_"),
    f"{_S}preprocessing._data.MaxAbsScaler": _per_feature("scale_", "max_abs_"),
    f"{_S}preprocessing._data.RobustScaler": _per_feature(optional=("center_", "scale_")),
    f"{_S}preprocessing._encoders.OneHotEncoder": _one_hot,
    f"{_S}preprocessing._encoders.OrdinalEncoder": _ordinal,
    f"{_S}preprocessing._discretization.KBinsDiscretizer": _kbins,
    f"{_S}preprocessing._polynomial.PolynomialFeatures": _polynomial,
    f"{_S}preprocessing._function_transformer.FunctionTransformer": _function_transformer,
    f"{_S}preprocessing._label.LabelEncoder": _label_encoder,
    f"{_S}preprocessing._label.LabelBinarizer": _label_binarizer,
    f"{_S}impute._base.SimpleImputer": _per_feature("statistics_"),
    f"{_S}decomposition._pca.PCA": _pca,
    f"{_S}feature_selection._variance_threshold.VarianceThreshold": _per_feature("variances_"),
    f"{_S}pipeline.Pipeline": _pipeline,
    f"{_S}pipeline.FeatureUnion": _feature_union,
    f"{_S}compose._column_transformer.ColumnTransformer": _column_transformer,
}
_ALWAYS = {f"{_S}pipeline.Pipeline", f"{_S}pipeline.FeatureUnion"}  # their state is their steps, fitted or not
# Objects with no fitted state a predict reads unchecked: losses, links, optimisers; their parts are still walked.
INERT = frozenset(
    {
        f"{_S}calibration._CalibratedClassifier",  # checked by CalibratedClassifierCV, its holder
        *(
            f"{_S}_loss.loss.{n}"
            for n in (
                "HalfBinomialLoss",
                "HalfMultinomialLoss",
                "HalfSquaredError",
                "AbsoluteError",
                "ExponentialLoss",
                "HuberLoss",
                "PinballLoss",
            )
        ),
        *(
            f"{_S}_loss._loss.{n}"
            for n in (
                "CyHalfBinomialLoss",
                "CyHalfMultinomialLoss",
                "CyHalfSquaredError",
                "CyAbsoluteError",
                "CyExponentialLoss",
                "CyHuberLoss",
                "CyPinballLoss",
            )
        ),
        *(
            f"{_S}_loss.link.{n}"
            for n in ("IdentityLink", "LogitLink", "HalfLogitLink", "MultinomialLogit", "Interval")
        ),
        *(
            f"{_S}linear_model._sgd_fast.{n}"
            for n in ("Hinge", "SquaredHinge", "ModifiedHuber", "EpsilonInsensitive", "SquaredEpsilonInsensitive")
        ),
        *(f"{_S}neural_network._stochastic_optimizers.{n}" for n in ("AdamOptimizer", "SGDOptimizer")),
    }
)
