"""The evidence an approver is shown, and its digest (which the approval signs).

The view holds the model version, its training runs, inputs and whole
upstream, the latest gate run (sequence number, hash, outcome) and the ledger
head at the time; anyone can recompute it from the store as of that head.
"""

from __future__ import annotations

from typing import Any

from governance.gate import GATE
from governance.subject import Subject
from lineage.canonical import canonical_bytes, sha256_digest
from lineage.store import Store


def evidence_view(store: Store, model: str) -> dict[str, Any]:
    subject = Subject(store, model)
    gates = list(store.entries(subject=subject.id, kind=GATE, limit=None))
    latest = gates[-1] if gates else None
    return {
        "model": subject.id,
        "training_runs": sorted(subject.training_runs),
        "inputs": subject.inputs,
        "upstream": sorted(n.id for n in subject.upstream.nodes),
        "gate": {"seq": latest.seq, "hash": latest.hash} if latest else None,
        "ledger_head": store.head().hash,
    }


def evidence_digest(view: dict[str, Any]) -> str:
    return sha256_digest(canonical_bytes(view))
