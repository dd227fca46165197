"""Explanations and fairness from Python, with an in-memory model.

    from governance.sdk import explain_model, assess_fairness

    explain_model("sqlite:///store.db", "model:ml/credit@3", model, X, protected=df[["sex"]])
    assess_fairness("sqlite:///store.db", "model:ml/credit@3", y_true, model.predict(X), df[["sex", "race"]])

Both compute, record the evidence in the ledger, and return (ledger seq, result). Pass
``artifact=PATH`` (the file the model was saved to, whose SHA-256 lineage records for the version):
evidence counts in the gate only when it was computed on the recorded artifact, and an in-memory
model cannot show that by itself. ``allow_unrecorded=True`` records evidence about another file, saying so.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from governance import explain, fairness
from governance.findings import check_model_file
from lineage.store import Store, open_store


def _store(store: Store | str | None) -> tuple[Store, bool]:
    return (store, False) if isinstance(store, Store) else (open_store(store), True)


def _binding(store: Store, model_id: str, artifact: Any, allow_unrecorded: bool) -> dict[str, Any]:
    if artifact is None:
        return {"model_digest": None, "artifact_recorded": None}
    digest, expected = check_model_file(store, model_id, artifact, allow_unrecorded)
    return {"model_digest": digest, "artifact_recorded": digest == expected}


def explain_model(store: Store | str | None, model_id: str, model: Any, X: pd.DataFrame, *,
                  protected: pd.DataFrame | None = None, dataset: str | None = None, actor: str = "sdk",
                  artifact: Any = None, allow_unrecorded: bool = False, **options: Any) -> tuple[int, dict]:
    s, owned = _store(store)
    try:
        s.resolve(model_id)
        binding = _binding(s, model_id, artifact, allow_unrecorded)
        result = explain.explain(model, X, protected=protected, **options)
        return explain.record(s, model_id, result, actor, dataset=dataset, **binding), result
    finally:
        if owned:
            s.close()


def assess_fairness(store: Store | str | None, model_id: str, y_true: Any, y_pred: Any, sensitive: pd.DataFrame, *,
                    dataset: str | None = None, actor: str = "sdk", target: str | None = None,
                    artifact: Any = None, allow_unrecorded: bool = False, **options: Any) -> tuple[int, dict]:
    s, owned = _store(store)
    try:
        s.resolve(model_id)
        binding = _binding(s, model_id, artifact, allow_unrecorded)
        result = fairness.assess(y_true, y_pred, sensitive, **options)
        return fairness.record(s, model_id, result, actor, dataset=dataset, target=target, **binding), result
    finally:
        if owned:
            s.close()
