"""Every hook auditgraph calls, declared once: the whole plugin surface.

A plugin is a module (or object) with functions marked ``@hookimpl`` named after
the specs below; it is found through the entry point group ``auditgraph.plugins``
(``name = "package.module"``) and registered with ``lineage.plugins``. The
built-in parts register through the same hooks: ``lineage.builtins`` (always
registered first), then ``governance.plugin`` and ``reports.plugin`` through
their entry points, exactly as a third party's would be. Store backends are the
one exception: they are found by URL scheme through the entry point group
``auditgraph.stores`` (``sqlite = "lineage.store.sqlite:build"``), because a
store is opened before anything else is loaded.

Example, a plugin adding a check and a route (``myplugin.py``)::

    from lineage.hookspecs import hookimpl

    @hookimpl
    def register_checks():
        return [MyCheck]

    @hookimpl
    def register_routes():
        return [router]

and in its ``pyproject.toml``::

    [project.entry-points."auditgraph.plugins"]
    myplugin = "myplugin"

The hooks return what they add; none is called for its side effects except
``register_commands``, which adds to the click group it is given (as datasette's
does). Names must be unique across plugins: two plugins declaring the same entry
kind, check, report format or command are refused with both plugins named.
"""

from __future__ import annotations

import pluggy

PROJECT = "auditgraph"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_entry_kinds():
    """Ledger entry kinds (``lineage.kinds.EntryKind``) this plugin owns.

    A kind's projector, webhook events and per-entry verifier come with it.
    """


@hookspec
def register_projectors():
    """``{kind: projector}`` for ledger entries of untyped kinds (OpenLineage events).

    A projector is ``(payload, ctx, hint=None) -> lineage.projection.Facts``. One that reads
    versions or existence from the graph declares what it asks with
    ``@lineage.projection.prefetching(find)``, so a batch's lookups are fetched in bulk first.
    """


@hookspec
def register_entry_checks():
    """Factories of per-entry checks that ``audit verify`` runs (``lineage.ledger.EntryCheck``).

    A factory is called with no arguments once per run; the check it returns is called with every
    entry in ledger order, after the entry's own hash and link were verified, and returns a reason
    or None. A check that must read the store before the pass (what to watch for) has a method
    ``prepare(store)``, called once before the first entry (``lineage.plugins.entry_checks(store)``).
    """


@hookspec
def register_event_sources():
    """``{kind: source}``: ledger entries of ``kind`` raise webhook events.

    A source is ``(entry, store) -> [(event name, data), ...]``.
    """


@hookspec
def register_watchers():
    """Functions ``(store, model versions) -> set of watched versions`` for the retraining trigger."""


@hookspec
def register_commands(cli):
    """Add click commands or groups to the ``auditgraph`` root group ``cli`` (``cli.add_command``)."""


@hookspec
def register_routes():
    """``fastapi.APIRouter`` objects mounted under ``/api/v1``.

    Routes take the current store and the caller's scope from the public
    dependencies in ``lineage.server.deps`` (``CurrentStore``, ``require``).
    """


@hookspec
def register_checks():
    """Governance check classes (``governance.checks.Check``) that rule files name by ``Check.name``."""


@hookspec
def register_report_formats():
    """Report formats (``reports.formats.ReportFormat``): the file each writes and how it renders."""
