"""Governance metadata as ledger entries: tags, owners, intended use, evaluations.

Writing appends an entry whose subject is the node it is about; reading
replays that node's entries in sequence order, so every answer can cite the
entries it came from (``ledger:<seq>``). Tags on a dataset apply to all its
versions; tags on one version apply to that version only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from governance import kinds
from governance.errors import NodeKindError, RecordError
from lineage.clock import utc_text
from lineage.graph import Graph
from lineage.ids import NodeKind, parse_id
from lineage.store import Store

TAG, OWNERS, INTENDED_USE, EVALUATION = (
    kinds.TAG.name,
    kinds.OWNERS.name,
    kinds.INTENDED_USE.name,
    kinds.EVALUATION.name,
)


@dataclass(frozen=True, slots=True)
class Cited:
    """A value and the ledger entries it was read from."""

    value: Any
    seqs: tuple[int, ...]

    @property
    def evidence(self) -> list[str]:
        return [f"ledger:{s}" for s in self.seqs]


def tag(store: Store, node: str, tags: list[str], actor: str, remove: bool = False) -> list[int]:
    row = Graph(store).resolve(node)
    for t in tags:
        if not t or len(t) > 200 or any(c.isspace() for c in t):
            raise RecordError(f"tag {t!r}: tags are 1 to 200 characters without white space")
    action = "remove" if remove else "add"
    pending = [kinds.TAG.pending({"node": row.id, "tag": t, "action": action, "at": utc_text()}, actor) for t in tags]
    acks = [store.append(p) for p in pending]
    return [a.seq for a in acks]


def set_owners(store: Store, node: str, owners: list[str], actor: str) -> int:
    row = Graph(store).resolve(node)
    if not owners or not all(o.strip() for o in owners):
        raise RecordError("give at least one owner")
    return store.append(kinds.OWNERS.pending({"node": row.id, "owners": owners, "at": utc_text()}, actor)).seq


def set_intended_use(store: Store, node: str, intended_use: str, limitations: list[str], actor: str) -> int:
    row = Graph(store).resolve(node)
    if not intended_use.strip():
        raise RecordError("the intended use is empty")
    payload = {"node": row.id, "intended_use": intended_use, "limitations": limitations, "at": utc_text()}
    return store.append(kinds.INTENDED_USE.pending(payload, actor)).seq


def record_evaluation(
    store: Store, model: str, metrics: dict[str, float], actor: str, dataset: str | None = None
) -> int:
    """Record metrics measured for a model version, on a dataset version if given."""
    row = Graph(store).resolve(model)
    if row.kind != NodeKind.MODEL_VERSION:
        raise NodeKindError(f"{row.id} is a {row.kind}; evaluations are of a model version (model:ns/name@version)")
    for name, value in metrics.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise RecordError(f"metric {name!r}: {value!r} is not a finite number")
    data = Graph(store).resolve(dataset).id if dataset else None
    payload = {"model": row.id, "metrics": metrics, "dataset": data, "at": utc_text()}
    return store.append(kinds.EVALUATION.pending(payload, actor)).seq


# --- reading ------------------------------------------------------------------


def _entries(store: Store, node: str, kind: kinds.EntryKind) -> list[tuple[int, dict]]:
    return [(r.seq, r.value.model_dump()) for r in kind.valid(store, node)]


def tags_of(store: Store, node: str) -> dict[str, Cited]:
    """Active tags of a node and, for a version, of its dataset; each with the entry that set it."""
    subjects = [node]
    if "@" in node:
        subjects.insert(0, str(parse_id(node).entity()))
    active: dict[str, Cited] = {}
    for subject in subjects:
        for seq, p in _entries(store, subject, kinds.TAG):
            if p["action"] == "add":
                active[p["tag"]] = Cited(subject, (seq,))
            else:
                active.pop(p["tag"], None)
    return active


def owners_of(store: Store, node: str) -> Cited | None:
    return _latest(store, node, kinds.OWNERS, "owners")


def intended_use_of(store: Store, node: str) -> Cited | None:
    return _latest(store, node, kinds.INTENDED_USE, None)


def _latest(store: Store, node: str, kind: kinds.EntryKind, key: str | None) -> Cited | None:
    """The latest entry for a version, else for its entity (a model's owners cover its versions)."""
    candidates = [node] + ([str(parse_id(node).entity())] if "@" in node else [])
    for subject in candidates:
        found = _entries(store, subject, kind)
        if found:
            seq, payload = found[-1]
            return Cited(payload[key] if key else payload, (seq,))
    return None


def evaluations_of(store: Store, model: str) -> list[tuple[int, dict]]:
    return _entries(store, model, kinds.EVALUATION)
