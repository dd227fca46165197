"""What governance registers with lineage (entry point ``auditgraph.plugins``): its typed entry
kinds (``governance.kinds``), approval signature checks for ``audit verify``, the webhook events
its ledger entries raise, and which models the retraining trigger watches.

Nothing of governance is projected onto the graph as a facet: "approved" and "released" are
only ever computed by the read models (``governance.readmodels``, the release history)."""

from __future__ import annotations

from governance import kinds
from governance.approvals import ApprovalSignatures
from lineage.hooks import register_source, register_watch
from lineage.kinds import Malformed
from lineage.ledger import LedgerEntry
from lineage.plugins import register_entry_check
from lineage.store import Store


def _gate_events(entry: LedgerEntry, store: Store) -> list[tuple[str, dict]]:
    record = kinds.GATE.read(entry)
    if isinstance(record, Malformed):
        return []
    gate = record.value
    failed = [{"rule": r.rule, "status": r.status, "reason": r.reason} for r in gate.results
              if r.status in ("fail", "warn", "not_evaluated")]
    if not failed:
        return []
    return [("governance.check_failed", {"model": gate.model, "outcome": gate.outcome, "gate": entry.seq,
                                         "failed": failed})]


def _release_events(entry: LedgerEntry, store: Store) -> list[tuple[str, dict]]:
    record = kinds.RELEASE.read(entry)
    if isinstance(record, Malformed):
        return []
    return [("governance.release_decided", {**record.value.model_dump(), "seq": entry.seq})]


def _watched(store: Store, models: list[str]) -> set[str]:
    """Model versions the retraining trigger watches: released, or approved by a valid signature."""
    from governance import readmodels
    from governance.gate import release_history
    from lineage.ids import parse_id

    released: set[str] = set()
    for entity in {str(parse_id(m).entity()) for m in models}:
        released |= {r["model"] for r in release_history(store, entity) if r["decision"] == "release"}
    return {m for m in models if m in released or readmodels.is_approved(store, m)}


register_entry_check(ApprovalSignatures)
register_source(kinds.GATE.name, _gate_events)
register_source(kinds.RELEASE.name, _release_events)
register_watch(_watched)
