"""Recording and reading explanation and fairness evidence (typed entry kinds, ``governance.kinds``).

Kept apart from the computations (``explain``, ``fairness``) so that the gate,
the checks and reports read evidence without importing the numerical stack.

Reading never lets a later record hide an earlier one it does not replace:
fairness assessments are kept per *grouping* (the set of protected columns
they were computed over) and per dataset, and a check takes the latest
assessment of each grouping it must look at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from governance import kinds
from lineage.canonical import file_digest
from lineage.clock import utc_text
from lineage.graph import Graph
from lineage.ids import parse_id
from lineage.store import Store

EXPLANATION = kinds.EXPLANATION.name
FAIRNESS = kinds.FAIRNESS.name

Grouping = tuple[str, ...]


def _computed(
    store: Store,
    model: str,
    result: dict[str, Any],
    dataset: str | None,
    data_digest: str | None,
    model_digest: str | None,
    artifact_recorded: bool | None,
) -> dict[str, Any]:
    row = Graph(store).resolve(model)
    return {
        "model": row.id,
        "dataset": Graph(store).resolve(dataset).id if dataset else None,
        "data_digest": data_digest,
        "model_digest": model_digest,
        "artifact_recorded": artifact_recorded,
        **result,
        "at": utc_text(),
    }


def record_explanation(
    store: Store,
    model: str,
    result: dict[str, Any],
    actor: str,
    dataset: str | None = None,
    data_digest: str | None = None,
    model_digest: str | None = None,
    artifact_recorded: bool | None = None,
) -> int:
    payload = _computed(store, model, result, dataset, data_digest, model_digest, artifact_recorded)
    return store.append(kinds.EXPLANATION.pending(payload, actor)).seq


def check_model_file(store: Store, model: str, path: Any, allow_unrecorded: bool = False) -> tuple[str, str | None]:
    """(SHA-256 of the model file, the version's recorded artifact digest); equal when the file is the artifact.

    Evidence must be about the model that was trained: unless the operator allows otherwise (and
    the evidence then says so), a file that is not the first recorded artifact is refused.
    """
    from governance.errors import ArtifactError
    from governance.readmodels import artifact

    row = Graph(store).resolve(model)
    recorded = artifact(store, row.id)
    if recorded.problem:
        raise ArtifactError(f"{row.id}: {recorded.problem}; evidence cannot be tied to one artifact")
    expected = f"sha256:{recorded.digest}" if recorded.digest else None
    actual = file_digest(path)
    if actual != expected and not allow_unrecorded:
        if expected is None:
            raise ArtifactError(
                f"{path}: no artifact digest is recorded for {row.id}, so this file cannot be shown "
                "to be the model that was trained; record it (SDK run.model(path=...)) or pass "
                "--allow-unrecorded-artifact"
            )
        raise ArtifactError(
            f"{path}: digest {actual} differs from the artifact recorded for {row.id} ({expected}); "
            "pass --allow-unrecorded-artifact to use it anyway (the evidence will say so)"
        )
    return actual, expected


def bound_to_artifact(value: Any, artifact: Any) -> str:
    """'' if evidence was computed on the model version's recorded artifact, else why it does not count."""
    if artifact.problem:
        return artifact.problem
    if artifact.digest is None:
        return "no artifact digest is recorded for the model version, so no evidence can be tied to it"
    if value.model_digest is None:
        return "computed without a model file (or before evidence recorded one)"
    if value.model_digest != f"sha256:{artifact.digest}" or value.artifact_recorded is not True:
        return f"computed on {value.model_digest}, not on the recorded artifact sha256:{artifact.digest}"
    return ""


@dataclass(frozen=True)
class Evidence:
    """Explanation or fairness records of a model version: those that count, and those set aside and why.

    ``every`` keeps every counting record per (dataset, grouping): the same model on the same data
    gives the same numbers, so a later record that disagrees was made on other rows, and never
    replaces an earlier failing one. Checks judge ``every`` record; reports show the ``latest``.
    """

    every: dict[tuple, list[tuple[int, dict]]]
    ignored: list[tuple[int, str]]

    @property
    def latest(self) -> dict[tuple, tuple[int, dict]]:
        return {key: found[-1] for key, found in self.every.items()}

    def records(self) -> list[tuple[tuple, int, dict]]:
        """Every counting record with its key, in ledger order."""
        return sorted(((key, seq, p) for key, found in self.every.items() for seq, p in found), key=lambda x: x[1])

    def note(self) -> str:
        if not self.ignored:
            return ""
        seq, why = self.ignored[-1]
        return f"; {len(self.ignored)} record(s) set aside (ledger:{seq}: {why})"


def _evidence(store: Store, model: str, kind: kinds.EntryKind, key, dataset: str | None = None) -> Evidence:
    from governance.readmodels import artifact

    recorded = artifact(store, model)
    every: dict[tuple, list[tuple[int, dict]]] = {}
    ignored: list[tuple[int, str]] = []
    for record in kind.records(store, model):
        if not hasattr(record, "value"):
            ignored.append((record.seq, f"malformed: {record.reason}"))
            continue
        why = bound_to_artifact(record.value, recorded)
        if why:
            ignored.append((record.seq, why))
        elif on_dataset(record.value.dataset, dataset):
            every.setdefault((record.value.dataset, key(record.value)), []).append(
                (record.seq, record.value.model_dump())
            )
    return Evidence(every, ignored)


def explanations(store: Store, model: str) -> Evidence:
    """The latest explanation per (dataset, protected columns) computed on the recorded artifact."""
    return _evidence(store, model, kinds.EXPLANATION, lambda v: grouping(list(v.proxies or {})))


def fairness(store: Store, model: str, dataset: str | None = None) -> Evidence:
    """The latest fairness assessment per (dataset, grouping) computed on the recorded artifact."""
    return _evidence(store, model, kinds.FAIRNESS, lambda v: grouping(v.protected), dataset)


def latest_explanation(store: Store, model: str) -> tuple[int, dict] | None:
    """The latest explanation that counts (computed on the recorded artifact)."""
    found = explanations(store, model).latest
    return max(found.values(), key=lambda x: x[0]) if found else None


def record_fairness(
    store: Store,
    model: str,
    result: dict[str, Any],
    actor: str,
    dataset: str | None = None,
    data_digest: str | None = None,
    target: str | None = None,
    model_digest: str | None = None,
    artifact_recorded: bool | None = None,
) -> int:
    payload = {
        **_computed(store, model, result, dataset, data_digest, model_digest, artifact_recorded),
        "target": target,
    }
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
    """For reports: the latest counting assessment of each grouping (the latest dataset's), grouping order."""
    latest: dict[Grouping, tuple[int, dict]] = {}
    for (_, g), found in sorted(fairness(store, model, dataset).latest.items(), key=lambda x: x[1][0]):
        latest[g] = found
    return latest
