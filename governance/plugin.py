"""What governance registers with lineage (entry point ``auditgraph.plugins``): its typed entry
kinds (``governance.kinds``), the projection of releases onto model versions, approval
signature checks for ``audit verify``, and the webhook events its ledger entries raise.

Approvals are not projected: "approved" is only ever computed by ``governance.readmodels``."""

from __future__ import annotations

import json

from governance.approvals import ApprovalSignatures
import governance.kinds  # noqa: F401  (declares the governance entry kinds)
from governance.gate import GATE, RELEASE
from lineage.hooks import register_source, register_watch
from lineage.ledger import LedgerEntry
from lineage.plugins import register_entry_check
from lineage.projection import Facts, FacetFact, projector
from lineage.store import Store


@projector(RELEASE)
def _release(payload: dict, ctx, hint=None) -> Facts:
    value = {"decision": payload["decision"], "at": payload["at"]}
    return Facts(facets=[FacetFact(payload["model"], "auditgraph.release", value, payload["at"])])


def _gate_events(entry: LedgerEntry, store: Store) -> list[tuple[str, dict]]:
    gate = json.loads(entry.payload)
    failed = [{"rule": r["rule"], "status": r["status"], "reason": r["reason"]} for r in gate["results"]
              if r["status"] in ("fail", "warn", "not_evaluated")]
    if not failed:
        return []
    return [("governance.check_failed", {"model": gate["model"], "outcome": gate["outcome"], "gate": entry.seq,
                                         "failed": failed})]


def _release_events(entry: LedgerEntry, store: Store) -> list[tuple[str, dict]]:
    release = json.loads(entry.payload)
    return [("governance.release_decided", {**release, "seq": entry.seq})]


register_entry_check(ApprovalSignatures)
register_source(GATE, _gate_events)
register_source(RELEASE, _release_events)


def _watched(store: Store, models: list[str]) -> set[str]:
    """Model versions the retraining trigger watches: released, or approved by a valid signature."""
    from governance import readmodels
    from governance.gate import release_history
    from lineage.ids import parse_id

    released: set[str] = set()
    for entity in {str(parse_id(m).entity()) for m in models}:
        released |= {r["model"] for r in release_history(store, entity) if r["decision"] == "release"}
    return {m for m in models if m in released or readmodels.is_approved(store, m)}


register_watch(_watched)
