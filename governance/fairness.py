"""Fairness of a classifier's decisions across protected groups (fairlearn), as evidence.

For every group (and, with several protected columns, every intersection):
size, selection rate, TPR, FPR, FNR and accuracy. Across groups: demographic
parity difference and ratio, equalized odds difference and ratio, equal
opportunity difference. Groups smaller than ``min_group_size`` are reported
but left out of the disparity figures (their rates are noise). Confidence
intervals are percentile bootstrap intervals over rows, with a fixed seed, so
the same inputs give the same numbers run after run.

The result is a ``governance.fairness`` ledger entry about the model version.
"""

from __future__ import annotations

import platform
from typing import Any

from lineage.extras import require

require("explain", "numpy", "pandas", "sklearn")  # a clear pip hint, not a bare ModuleNotFoundError

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from governance.errors import DataError
from governance.findings import FAIRNESS  # noqa: F401  re-exported: the kind this module records
from governance.findings import record_fairness as record  # noqa: F401  re-exported

GROUP_METRICS = {
    "selection_rate": selection_rate,
    "tpr": true_positive_rate,
    "fpr": false_positive_rate,
    "fnr": false_negative_rate,
    "accuracy": accuracy_score,
}
DISPARITIES = {
    "demographic_parity_difference": demographic_parity_difference,
    "demographic_parity_ratio": demographic_parity_ratio,
    "equalized_odds_difference": equalized_odds_difference,
    "equalized_odds_ratio": equalized_odds_ratio,
    "equal_opportunity_difference": equal_opportunity_difference,
}


def assess(
    y_true: Any,
    y_pred: Any,
    sensitive: pd.DataFrame,
    *,
    min_group_size: int = 30,
    bootstrap: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Group metrics and disparities, with bootstrap intervals. Labels must be 0/1."""
    y_true, y_pred = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    if not isinstance(sensitive, pd.DataFrame) or sensitive.empty:
        raise DataError("give at least one protected column")
    if not (len(y_true) == len(y_pred) == len(sensitive)):
        raise DataError(f"lengths differ: y_true {len(y_true)}, y_pred {len(y_pred)}, protected {len(sensitive)}")
    if sensitive.isna().any().any():
        raise DataError(f"missing values in the protected column(s) {', '.join(map(str, sensitive.columns))}")
    if len(np.unique(y_true)) < 2:
        raise DataError("y_true holds one class only; fairness needs rows of both outcomes")
    groups = _group_labels(sensitive)
    sizes = groups.value_counts()
    small = sorted(sizes[sizes < min_group_size].index)
    keep = ~groups.isin(small).to_numpy()
    if len(set(groups[keep])) < 2:
        raise DataError(f"fewer than two groups of at least {min_group_size} rows in {', '.join(sensitive.columns)}")
    frame = MetricFrame(metrics={**GROUP_METRICS, "n": count}, y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    point = _disparities(y_true[keep], y_pred[keep], groups[keep])
    intervals, group_intervals = _bootstrap(y_true, y_pred, groups, keep, bootstrap, seed, confidence)
    by_group = []
    for label, row in frame.by_group.iterrows():
        item = {
            "group": label,
            "n": int(row["n"]),
            "too_small": label in small,
            **{k: _num(row[k]) for k in GROUP_METRICS},
        }
        if label in group_intervals:
            item["ci"] = group_intervals[label]
        by_group.append(item)
    return {
        "protected": list(sensitive.columns),
        "rows": int(len(y_true)),
        "min_group_size": min_group_size,
        "excluded_groups": small,
        "groups": by_group,
        "metrics": {k: {"value": _num(v), "ci": intervals.get(k)} for k, v in point.items()},
        "overall": {k: _num(v) for k, v in frame.overall.items() if k != "n"},
        "bootstrap": {"resamples": bootstrap, "seed": seed, "confidence": confidence},
        "versions": _versions(),
    }


def _binary(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    uniques = set(np.unique(array).tolist())
    if not uniques <= {0, 1}:
        raise DataError(f"{name} must hold 0/1 labels; found {sorted(map(str, uniques))[:5]}")
    return array.astype(int)


def _group_labels(sensitive: pd.DataFrame) -> pd.Series:
    """One label per row: the value, or 'a & b' for intersections of several columns."""
    text = sensitive.astype(str)
    labels = text.iloc[:, 0] if text.shape[1] == 1 else text.apply(lambda r: " & ".join(r), axis=1)
    return labels.reset_index(drop=True)


def _disparities(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> dict[str, float]:
    g = groups.reset_index(drop=True)
    return {name: fn(y_true, y_pred, sensitive_features=g) for name, fn in DISPARITIES.items()}


def _rates(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Selection rate, TPR and FPR per group code (NaN where a group has no such rows)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.bincount(codes, minlength=k)
        selected = np.bincount(codes, weights=y_pred, minlength=k)
        pos = np.bincount(codes, weights=y_true, minlength=k)
        tp = np.bincount(codes, weights=y_true * y_pred, minlength=k)
        fp = np.bincount(codes, weights=(1 - y_true) * y_pred, minlength=k)
        return selected / n, tp / pos, fp / (n - pos)


def _fast_disparities(sel: np.ndarray, tpr: np.ndarray, fpr: np.ndarray) -> dict[str, float]:
    """fairlearn's between-groups, worst-case definitions, on precomputed group rates."""

    def diff(x):
        return float(np.nanmax(x) - np.nanmin(x))

    def ratio(x):
        return float(np.nanmin(x) / np.nanmax(x)) if np.nanmax(x) > 0 else float("nan")

    return {
        "demographic_parity_difference": diff(sel),
        "demographic_parity_ratio": ratio(sel),
        "equalized_odds_difference": max(diff(tpr), diff(fpr)),
        "equalized_odds_ratio": min(ratio(tpr), ratio(fpr)),
        "equal_opportunity_difference": diff(tpr),
    }


def _bootstrap(y_true, y_pred, groups, keep, resamples, seed, confidence):
    if resamples <= 0:
        return {}, {}
    labels = sorted(set(groups[keep]))
    index = {g: i for i, g in enumerate(labels)}
    codes = groups.map(index).fillna(-1).astype(int).to_numpy()
    rng = np.random.default_rng(seed)
    n, k = len(y_true), len(labels)
    samples: dict[str, list[float]] = {name: [] for name in DISPARITIES}
    per_group = {g: {"selection_rate": [], "tpr": [], "fpr": []} for g in labels}
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        idx = idx[codes[idx] >= 0]
        sel, tpr, fpr = _rates(y_true[idx].astype(float), y_pred[idx].astype(float), codes[idx], k)
        if np.sum(~np.isnan(sel)) >= 2:
            for name, value in _fast_disparities(sel, tpr, fpr).items():
                if not np.isnan(value):
                    samples[name].append(value)
        for i, g in enumerate(labels):
            for name, values in (("selection_rate", sel), ("tpr", tpr), ("fpr", fpr)):
                if not np.isnan(values[i]):
                    per_group[g][name].append(values[i])
    tail = (1 - confidence) / 2 * 100

    def interval(xs):
        return [_num(np.percentile(xs, tail)), _num(np.percentile(xs, 100 - tail))] if xs else None

    return (
        {name: interval(v) for name, v in samples.items()},
        {g: {name: interval(v) for name, v in m.items()} for g, m in per_group.items()},
    )


def _num(value: Any) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 6)


def _versions() -> dict[str, str]:
    import fairlearn
    import sklearn

    return {
        "fairlearn": fairlearn.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
