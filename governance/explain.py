"""SHAP explanations of a fitted model, recorded as evidence.

* Explainer: tree ensembles (scikit-learn, XGBoost, LightGBM) get TreeExplainer
  on the raw output (log-odds for boosted classifiers; a forest's raw output is
  its averaged probability); linear models get LinearExplainer on the margin;
  anything else is explained as a function: exactly when it has at most 10
  features, else with the Permutation explainer and a fixed seed. Classifiers
  explained as functions are explained in log-odds (``logit(p)``): SHAP values
  of ``predict_proba`` are not the Shapley values of the log-odds model.
* A scikit-learn Pipeline is explained at its last step, on the features its
  preprocessing produces (``get_feature_names_out``); a one-step Pipeline on the
  data as given.
* Rows explained and background rows are sampled deterministically (seeded,
  without replacement, at most ``max_rows`` and ``background_rows``), so the
  same inputs give the same numbers run after run.
* Additivity is checked, not assumed: ``base + sum(shap) == f(x)`` per row;
  the max and p99 residual are recorded.
* With protected columns, each feature's power to predict them (AUC, one
  group against the rest, the best group) is recorded for proxy detection.
"""

from __future__ import annotations

import platform
import time
from typing import Any, TypedDict

from lineage.extras import require

require("explain", "numpy", "pandas", "sklearn")  # a clear pip hint, not a bare ModuleNotFoundError

import numpy as np
import pandas as pd

from governance.errors import DataError
from governance.findings import EXPLANATION  # noqa: F401  re-exported: the kind this module records
from governance.findings import latest_explanation as latest  # noqa: F401  re-exported
from governance.findings import record_explanation as record  # noqa: F401  re-exported
from lineage.canonical import digest

EXACT_MAX_FEATURES = 10
_TREE_MODULES = ("sklearn.ensemble", "sklearn.tree", "xgboost", "lightgbm")


class _Importance(TypedDict):
    """One feature's mean |SHAP| and its share of the total, as ``kinds.Importance`` records it."""

    feature: str
    mean_abs_shap: float
    share: float


def split_pipeline(model: Any, X: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """The estimator to explain and the features it sees (through a Pipeline's preprocessing)."""
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline):
        return model, X
    if len(model) == 1:  # no preprocessing: an empty Pipeline has no transform
        return model[-1], X
    pre, last = model[:-1], model[-1]
    data = pre.transform(X)
    data = data.toarray() if hasattr(data, "toarray") else np.asarray(data)
    try:
        names = list(pre.get_feature_names_out())
    except Exception:
        names = [f"f{i}" for i in range(data.shape[1])]
    return last, pd.DataFrame(data, columns=names, index=X.index).astype(float)


def choose_explainer(model: Any, n_features: int) -> str:
    module = type(model).__module__
    if (
        module.startswith(_TREE_MODULES)
        and hasattr(model, "estimators_")
        or module.startswith(("xgboost", "lightgbm"))
        or type(model).__name__.startswith("DecisionTree")
    ):
        return "tree"
    if module.startswith("sklearn.linear_model") and hasattr(model, "coef_"):
        return "linear"
    return "exact" if n_features <= EXACT_MAX_FEATURES else "permutation"


def sample_rows(X: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if len(X) <= n:
        return X
    idx = np.sort(np.random.default_rng(seed).choice(len(X), size=n, replace=False))
    return X.iloc[idx]


def explain(
    model: Any,
    X: pd.DataFrame,
    *,
    max_rows: int = 1000,
    background_rows: int = 100,
    seed: int = 0,
    protected: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Explain ``model`` on rows of ``X``; return the evidence (see the module docstring)."""
    import shap

    if max_rows < 1 or background_rows < 1:
        raise DataError("max_rows and background_rows must be at least 1")
    started = time.perf_counter()
    estimator, features = split_pipeline(model, X)
    rows = sample_rows(features, max_rows, seed)
    background = sample_rows(features, background_rows, seed + 1)
    kind = choose_explainer(estimator, features.shape[1])
    values, base, target, output = _shap(shap, kind, estimator, rows, background, seed)
    residual = np.abs(values.sum(axis=1) + base - target)
    mean_abs = np.abs(values).mean(axis=0)
    total = float(mean_abs.sum()) or 1.0
    importance = sorted(
        (
            _Importance(feature=f, mean_abs_shap=round(float(v), 9), share=round(float(v) / total, 9))
            for f, v in zip(features.columns, mean_abs)
        ),
        key=lambda i: (-i["mean_abs_shap"], i["feature"]),
    )
    result = {
        "explainer": kind,
        "output": output,
        "estimator": f"{type(estimator).__module__}.{type(estimator).__name__}",
        "rows_explained": int(len(rows)),
        "rows_available": int(len(X)),
        "max_rows": max_rows,
        "background_rows": int(len(background)),
        "background_digest": digest(_frame_json(background)),
        "rows_digest": digest(_frame_json(rows)),
        "seed": seed,
        "features": list(features.columns),
        "importance": importance,
        "additivity": {"max": float(residual.max()), "p99": float(np.percentile(residual, 99))},
        "versions": _versions(),
    }
    if protected is not None:
        if protected.isna().any().any() or (protected.nunique() < 2).any():
            raise DataError("a protected column has missing values or a single value: no groups to compare")
        result["proxies"] = proxy_scores(features, protected.loc[features.index], seed)
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def _shap(shap, kind: str, model: Any, rows: pd.DataFrame, background: pd.DataFrame, seed: int):
    """SHAP values, base value(s), the explained output per row, and what that output is."""
    classifier = hasattr(model, "predict_proba")
    if kind == "tree":
        explainer = shap.TreeExplainer(model, model_output="raw", feature_perturbation="tree_path_dependent")
        values = np.asarray(explainer.shap_values(rows, check_additivity=False))
        base = np.atleast_1d(explainer.expected_value)
        if values.ndim == 3:  # one output per class: explain the positive class
            values, base = values[:, :, -1], base[-1]
        target = np.asarray(explainer.model.predict(rows.to_numpy()))
        target = target[:, -1] if target.ndim == 2 else target
        forest = type(model).__name__.startswith(("RandomForest", "ExtraTrees", "DecisionTree"))
        output = "probability" if classifier and forest else "log_odds" if classifier else "raw"
        return values, float(np.atleast_1d(base)[-1]), target, output
    if kind == "linear":
        explainer = shap.LinearExplainer(model, shap.maskers.Independent(background, max_samples=len(background)))
        values = np.asarray(explainer.shap_values(rows))
        target = model.decision_function(rows) if classifier else model.predict(rows)
        return (
            values,
            float(np.atleast_1d(explainer.expected_value)[-1]),
            np.asarray(target),
            "log_odds" if classifier else "raw",
        )
    fn = _log_odds(model) if classifier else (lambda x: model.predict(_frame(x, rows)))
    masker = shap.maskers.Independent(background, max_samples=len(background))
    if kind == "exact":
        explainer = shap.explainers.Exact(fn, masker)
    else:
        explainer = shap.explainers.Permutation(fn, masker, seed=seed)
    explanation = explainer(rows)
    return (
        np.asarray(explanation.values),
        float(np.atleast_1d(explanation.base_values)[0]),
        np.asarray(fn(rows.to_numpy())),
        "log_odds" if classifier else "raw",
    )


def _log_odds(model: Any):
    columns = getattr(model, "feature_names_in_", None)

    def f(x):
        data = pd.DataFrame(x, columns=columns) if columns is not None else x
        p = np.clip(model.predict_proba(data)[:, -1], 1e-12, 1 - 1e-12)
        return np.log(p / (1 - p))

    return f


def _frame(x, like: pd.DataFrame):
    return pd.DataFrame(x, columns=like.columns)


def proxy_scores(
    features: pd.DataFrame, protected: pd.DataFrame, seed: int, max_rows: int = 20_000
) -> dict[str, dict[str, float]]:
    """For each protected column, each feature's best one-vs-rest AUC at predicting it."""
    from sklearn.metrics import roc_auc_score

    data = sample_rows(features, max_rows, seed + 2)
    groups = protected.loc[data.index]
    out: dict[str, dict[str, float]] = {}
    for column in groups.columns:
        labels = groups[column].astype(str).to_numpy()
        scores = {}
        for feature in data.columns:
            x = _score(data[feature], labels)
            best = 0.5
            for g in np.unique(labels):
                y = labels == g
                if 0 < y.sum() < len(y):
                    auc = roc_auc_score(y, x[g])
                    best = max(best, auc, 1 - auc)
            scores[feature] = round(float(best), 6)
        out[column] = dict(sorted(scores.items(), key=lambda kv: -kv[1]))
    return out


def _score(values: pd.Series, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Score each row by the share of each group among rows with the same feature value.

    That is the best any function of this one feature can do, whatever the
    encoding (ordinal codes have an arbitrary order); continuous features are
    first cut into 20 quantile bins.
    """
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > 32:
        values = pd.qcut(values.rank(method="first"), 20, labels=False)
    frame = pd.DataFrame({"v": values.astype(str).to_numpy(), "g": labels})
    out = {}
    for g in np.unique(labels):
        share = frame.assign(hit=frame["g"] == g).groupby("v")["hit"].mean()
        out[g] = frame["v"].map(share).to_numpy(dtype=float)
    return out


def _frame_json(frame: pd.DataFrame) -> dict:
    return {
        "columns": [str(c) for c in frame.columns],
        "index": [int(i) if isinstance(i, (int, np.integer)) else str(i) for i in frame.index],
        "values": [[_plain(v) for v in row] for row in frame.itertuples(index=False)],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    return value if isinstance(value, (int, str, bool)) or value is None else str(value)


def _versions() -> dict[str, str]:
    import shap
    import sklearn

    return {
        "shap": shap.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "python": platform.python_version(),
    }
