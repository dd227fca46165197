"""Recording and reading explanation and fairness evidence in the ledger.

Kept apart from the computations (``explain``, ``fairness``) so that the gate,
the checks and reports read evidence without importing the numerical stack.
"""

from __future__ import annotations

import json
from typing import Any

from governance.records import now
from lineage.ledger import Pending
from lineage.store import Store

EXPLANATION = "governance.explanation"
FAIRNESS = "governance.fairness"


def record_explanation(store: Store, model: str, result: dict[str, Any], actor: str, dataset: str | None = None,
                       data_digest: str | None = None) -> int:
    row = store.resolve(model)
    payload = {"model": row.id, "dataset": store.resolve(dataset).id if dataset else None,
               "data_digest": data_digest, **result, "at": now()}
    return store.append(Pending(EXPLANATION, payload, actor, subject=row.id)).seq


def latest_explanation(store: Store, model: str) -> tuple[int, dict] | None:
    found = list(store.entries(subject=model, kind=EXPLANATION, limit=None))
    return (found[-1].seq, json.loads(found[-1].payload)) if found else None


def record_fairness(store: Store, model: str, result: dict[str, Any], actor: str, dataset: str | None = None,
                    data_digest: str | None = None, target: str | None = None) -> int:
    row = store.resolve(model)
    payload = {"model": row.id, "dataset": store.resolve(dataset).id if dataset else None,
               "data_digest": data_digest, "target": target, **result, "at": now()}
    return store.append(Pending(FAIRNESS, payload, actor, subject=row.id)).seq


def latest_fairness(store: Store, model: str, protected: list[str] | None = None) -> tuple[int, dict] | None:
    found = [(e.seq, json.loads(e.payload)) for e in store.entries(subject=model, kind=FAIRNESS, limit=None)]
    if protected:
        found = [(s, p) for s, p in found if sorted(p["protected"]) == sorted(protected)]
    return found[-1] if found else None
