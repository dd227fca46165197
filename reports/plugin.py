"""What reports adds through the plugin hooks (``lineage.hookspecs``; entry point ``auditgraph.plugins``):
the ``reports.issued`` entry kind, the ``reports`` commands and the built-in report formats."""

from __future__ import annotations

from lineage.hookspecs import hookimpl


@hookimpl
def register_entry_kinds():
    from reports.issue import ISSUED_KIND

    return [ISSUED_KIND]


@hookimpl
def register_commands(cli):
    from reports.cli import reports

    cli.add_command(reports)


@hookimpl
def register_report_formats():
    from reports.formats import BUILTIN

    return list(BUILTIN)
