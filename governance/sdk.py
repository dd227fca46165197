"""Explanations and fairness from Python, with an in-memory model.

    from governance.sdk import explain_model, assess_fairness

    explain_model("sqlite:///store.db", "model:ml/credit@3", model, X, protected=df[["sex"]])
    assess_fairness("sqlite:///store.db", "model:ml/credit@3", y_true, model.predict(X), df[["sex", "race"]])

Both compute, record the evidence in the ledger, and return (ledger seq, result).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from governance import explain, fairness
from lineage.store import Store, open_store


def _store(store: Store | str | None) -> tuple[Store, bool]:
    return (store, False) if isinstance(store, Store) else (open_store(store), True)


def explain_model(store: Store | str | None, model_id: str, model: Any, X: pd.DataFrame, *,
                  protected: pd.DataFrame | None = None, dataset: str | None = None, actor: str = "sdk",
                  **options: Any) -> tuple[int, dict]:
    s, owned = _store(store)
    try:
        s.resolve(model_id)
        result = explain.explain(model, X, protected=protected, **options)
        return explain.record(s, model_id, result, actor, dataset=dataset), result
    finally:
        if owned:
            s.close()


def assess_fairness(store: Store | str | None, model_id: str, y_true: Any, y_pred: Any, sensitive: pd.DataFrame, *,
                    dataset: str | None = None, actor: str = "sdk", target: str | None = None,
                    **options: Any) -> tuple[int, dict]:
    s, owned = _store(store)
    try:
        s.resolve(model_id)
        result = fairness.assess(y_true, y_pred, sensitive, **options)
        return fairness.record(s, model_id, result, actor, dataset=dataset, target=target), result
    finally:
        if owned:
            s.close()
