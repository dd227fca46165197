"""What governance adds through the plugin hooks (``lineage.hookspecs``; entry point
``auditgraph.plugins``, as a third party's plugin is found): its typed entry kinds
(``governance.kinds``), the check of approval signatures and signed ledger heads for ``audit
verify``, the webhook events its ledger entries raise, which models the retraining trigger watches,
the ``governance`` commands, the ``/api/v1/governance`` routes and the built-in checks that rule
files name.

Nothing of governance is projected onto the graph as a facet: "approved" and "released" are
only ever computed by the read models (``governance.readmodels``, the release history)."""

from __future__ import annotations

from governance import kinds
from lineage.hookspecs import hookimpl
from lineage.kinds import Malformed
from lineage.ledger import LedgerEntry
from lineage.store import Store


def _gate_events(entry: LedgerEntry, store: Store) -> list[tuple[str, dict]]:
    record = kinds.GATE.read(entry)
    if isinstance(record, Malformed):
        return []
    gate = record.value
    failed = [
        {"rule": r.rule, "status": r.status, "reason": r.reason}
        for r in gate.results
        if r.status in ("fail", "warn", "not_evaluated")
    ]
    if not failed:
        return []
    return [
        ("governance.check_failed", {"model": gate.model, "outcome": gate.outcome, "gate": entry.seq, "failed": failed})
    ]


def _release_events(entry: LedgerEntry, store: Store) -> list[tuple[str, dict]]:
    record = kinds.RELEASE.read(entry)
    if isinstance(record, Malformed):
        return []
    return [("governance.release_decided", {**record.value.model_dump(), "seq": entry.seq})]


def _watched(store: Store, models: list[str]) -> set[str]:
    """Model versions the retraining trigger watches: released, or approved by a valid signature."""
    from governance.gate import release_history
    from lineage.ids import parse_id

    released: set[str] = set()
    for entity in {str(parse_id(m).entity()) for m in models}:
        released |= {r["model"] for r in release_history(store, entity) if r["decision"] == "release"}
    return {m for m in models if m in released or _approved(store, m)}


def _approved(store: Store, model: str) -> bool:
    """Approved by a valid signature; without the signing extra no approval can be verified, so none counts."""
    from governance import readmodels
    from lineage.extras import MissingExtra

    try:
        return readmodels.is_approved(store, model)
    except MissingExtra:
        return False


@hookimpl
def register_entry_kinds():
    return kinds.KINDS


@hookimpl
def register_entry_checks():
    from governance.approvals import ApprovalSignatures

    return [ApprovalSignatures]


@hookimpl
def register_event_sources():
    return {kinds.GATE.name: _gate_events, kinds.RELEASE.name: _release_events}


@hookimpl
def register_watchers():
    return [_watched]


@hookimpl
def register_commands(cli):
    from governance.cli import governance

    cli.add_command(governance)


@hookimpl
def register_routes():
    from governance.routes import router

    return [router]


@hookimpl
def register_checks():
    from governance.checks import builtin, responsible

    return [*builtin.CHECKS, *responsible.CHECKS]
