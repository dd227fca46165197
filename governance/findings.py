"""Recording and reading explanation and fairness evidence (typed entry kinds, ``governance.kinds``).

Kept apart from the computations (``explain``, ``fairness``) so that the gate,
the checks and reports read evidence without importing the numerical stack.

Reading never lets a later record hide an earlier one it does not replace:
fairness assessments are kept per *grouping* (the set of protected columns
they were computed over) and per dataset, and a check takes the latest
assessment of each grouping it must look at.
"""

from __future__ import annotations

from typing import Any

from governance import kinds
from governance.records import now
from lineage.ids import parse_id
from lineage.store import Store

EXPLANATION = kinds.EXPLANATION.name
FAIRNESS = kinds.FAIRNESS.name

Grouping = tuple[str, ...]


def _computed(store: Store, model: str, result: dict[str, Any], dataset: str | None, data_digest: str | None,
              model_digest: str | None, artifact_recorded: bool | None) -> dict[str, Any]:
    row = store.resolve(model)
    return {"model": row.id, "dataset": store.resolve(dataset).id if dataset else None, "data_digest": data_digest,
            "model_digest": model_digest, "artifact_recorded": artifact_recorded, **result, "at": now()}


def record_explanation(store: Store, model: str, result: dict[str, Any], actor: str, dataset: str | None = None,
                       data_digest: str | None = None, model_digest: str | None = None,
                       artifact_recorded: bool | None = None) -> int:
    payload = _computed(store, model, result, dataset, data_digest, model_digest, artifact_recorded)
    return store.append(kinds.EXPLANATION.pending(payload, actor)).seq


def latest_explanation(store: Store, model: str) -> tuple[int, dict] | None:
    found = list(kinds.EXPLANATION.valid(store, model))
    return (found[-1].seq, found[-1].value.model_dump()) if found else None


def record_fairness(store: Store, model: str, result: dict[str, Any], actor: str, dataset: str | None = None,
                    data_digest: str | None = None, target: str | None = None, model_digest: str | None = None,
                    artifact_recorded: bool | None = None) -> int:
    payload = {**_computed(store, model, result, dataset, data_digest, model_digest, artifact_recorded),
               "target": target}
    return store.append(kinds.FAIRNESS.pending(payload, actor)).seq


def grouping(protected: list[str]) -> Grouping:
    return tuple(sorted(set(protected)))


def on_dataset(recorded: str | None, wanted: str | None) -> bool:
    """Whether evidence recorded on ``recorded`` is on the data a rule names (exactly, or any version of it)."""
    if wanted is None:
        return True
    if recorded is None:
        return False
    if recorded == wanted:
        return True
    named, found = parse_id(wanted), parse_id(recorded)
    return named.version is None and str(found.entity()) == str(named)


def fairness_by_grouping(store: Store, model: str, dataset: str | None = None) -> dict[Grouping, tuple[int, dict]]:
    """The latest fairness assessment of each grouping (on ``dataset`` if given), oldest grouping first."""
    latest: dict[Grouping, tuple[int, dict]] = {}
    for record in kinds.FAIRNESS.valid(store, model):
        payload = record.value.model_dump()
        if on_dataset(payload["dataset"], dataset):
            latest[grouping(payload["protected"])] = (record.seq, payload)
    return latest


def latest_fairness(store: Store, model: str, protected: list[str] | None = None) -> tuple[int, dict] | None:
    """The latest assessment over exactly ``protected`` (any grouping if None)."""
    found = fairness_by_grouping(store, model)
    if protected:
        return found.get(grouping(protected))
    return max(found.values(), key=lambda x: x[0]) if found else None
