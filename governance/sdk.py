"""Explanations and fairness from Python, with an in-memory model.

    from governance.sdk import explain_model, assess_fairness

    explain_model("sqlite:///store.db", "model:ml/credit@3", model, X, protected=df[["sex"]])
    assess_fairness("sqlite:///store.db", "model:ml/credit@3", y_true, model.predict(X), df[["sex", "race"]])

Both compute, record the evidence in the ledger, and return (ledger seq, result). Evidence counts in
the gate only when it was computed on the recorded artifact, and an in-memory model or a list of
predictions cannot show that: pass ``artifact=PATH`` (the file lineage records for the version), and
the model is loaded from that file (safely, as the CLI does) and its own predictions used
(``assess_fairness(..., y_pred=None, X=features, artifact=PATH)``). ``allow_unrecorded=True`` records
evidence about another file, saying so.
"""

from __future__ import annotations

from typing import Any

from lineage.extras import require

require("explain", "numpy", "pandas", "sklearn")  # a clear pip hint, not a bare ModuleNotFoundError

import pandas as pd

from governance import explain, fairness
from governance.errors import DataError
from governance.findings import check_model_file
from lineage.graph import Graph
from lineage.store import Store, open_store


def _store(store: Store | str | None) -> tuple[Store, bool]:
    return (store, False) if isinstance(store, Store) else (open_store(store), True)


def _binding(store: Store, model_id: str, artifact: Any, allow_unrecorded: bool) -> tuple[Any, dict[str, Any]]:
    """The model loaded from ``artifact`` (safely, as the CLI does) and what the evidence records of it."""
    if artifact is None:
        return None, {"model_digest": None, "artifact_recorded": None}
    from pathlib import Path

    from governance.modelfiles import load_model

    digest, expected = check_model_file(store, model_id, artifact, allow_unrecorded)
    return load_model(Path(artifact), expected_digest=expected), {
        "model_digest": digest,
        "artifact_recorded": digest == expected,
    }


def explain_model(
    store: Store | str | None,
    model_id: str,
    model: Any,
    X: pd.DataFrame,
    *,
    protected: pd.DataFrame | None = None,
    dataset: str | None = None,
    actor: str = "sdk",
    artifact: Any = None,
    allow_unrecorded: bool = False,
    **options: Any,
) -> tuple[int, dict]:
    """With ``artifact``, the model explained is the one loaded from that file, not ``model`` (pass None):
    evidence bound to the artifact must be computed on it."""
    s, owned = _store(store)
    try:
        Graph(s).resolve(model_id)
        loaded, binding = _binding(s, model_id, artifact, allow_unrecorded)
        result = explain.explain(loaded if loaded is not None else model, X, protected=protected, **options)
        return explain.record(s, model_id, result, actor, dataset=dataset, **binding), result
    finally:
        if owned:
            s.close()


def assess_fairness(
    store: Store | str | None,
    model_id: str,
    y_true: Any,
    y_pred: Any,
    sensitive: pd.DataFrame,
    *,
    dataset: str | None = None,
    actor: str = "sdk",
    target: str | None = None,
    artifact: Any = None,
    X: pd.DataFrame | None = None,
    allow_unrecorded: bool = False,
    **options: Any,
) -> tuple[int, dict]:
    """With ``artifact`` (and ``X``), the decisions are the loaded artifact's own predictions on ``X``:
    pass ``y_pred=None``. Predictions handed in cannot be tied to a model, so such evidence never counts."""
    s, owned = _store(store)
    try:
        Graph(s).resolve(model_id)
        loaded, binding = _binding(s, model_id, artifact, allow_unrecorded)
        if loaded is not None:
            if X is None or y_pred is not None:
                raise DataError(
                    "with artifact=, pass the features X and y_pred=None: the predictions are the artifact's own"
                )
            y_pred = loaded.predict(X)
        result = fairness.assess(y_true, y_pred, sensitive, **options)
        return fairness.record(s, model_id, result, actor, dataset=dataset, target=target, **binding), result
    finally:
        if owned:
            s.close()
