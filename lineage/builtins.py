"""What the lineage package itself adds through the plugin hooks (``lineage.hookspecs``).

Registered first, before any entry point; governance and reports register
theirs through ``auditgraph.plugins`` entry points, as a third party would.
Imports are inside the hooks so that registering costs nothing.
"""

from __future__ import annotations

from lineage.hookspecs import hookimpl


@hookimpl
def register_entry_kinds():
    from lineage.anchors import CHECKPOINT_KIND
    from lineage.hooks import HOOK_DELIVERY, HOOK_SUBSCRIBED, HOOK_UNSUBSCRIBED
    from lineage.server.auth import KEY_CREATED, KEY_REVOKED

    return [KEY_CREATED, KEY_REVOKED, HOOK_SUBSCRIBED, HOOK_UNSUBSCRIBED, HOOK_DELIVERY, CHECKPOINT_KIND]


@hookimpl
def register_projectors():
    from lineage.projection import OPENLINEAGE_KIND, project_openlineage

    return {OPENLINEAGE_KIND: project_openlineage}


@hookimpl
def register_event_sources():
    from lineage.hooks import lineage_source
    from lineage.projection import OPENLINEAGE_KIND

    return {OPENLINEAGE_KIND: lineage_source}


@hookimpl
def register_commands(cli):
    from lineage.cli.audit import audit
    from lineage.cli.ingest import demo, ingest
    from lineage.cli.lineage import lineage
    from lineage.cli.serve import hooks, keys, serve
    from lineage.cli.store import store

    for command in (ingest, demo, serve, lineage, audit, store, keys, hooks):
        cli.add_command(command)


@hookimpl
def register_routes():
    from lineage.server import anchors, ingest, query

    return [ingest.router, query.router, anchors.router]
