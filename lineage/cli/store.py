"""``auditgraph store ...``: the store as a whole."""

from __future__ import annotations

import click
from rich.progress import Progress

from lineage.cli import render
from lineage.cli.options import connect, domain_errors, emit_json, is_terminal, json_option, store_option


@click.group()
def store():
    """Inspect and rebuild the store.

    \b
    Example:
        auditgraph store stats
    """


@store.command()
@store_option
@json_option
@domain_errors
def stats(store_url, as_json):
    """Counts of nodes, edges and ledger entries, and the ledger head.

    \b
    Example:
        auditgraph store stats --json
    """
    with connect(store_url) as s:
        result = s.stats()
    if as_json:
        emit_json(result)
        return
    rows = [("store", result["url"]), ("ledger entries", result["ledger"]["entries"]), ("ledger head", result["ledger"]["head"])]
    rows += [(f"nodes: {k}", v) for k, v in result.get("nodes", {}).items()]
    rows += [(f"edges: {k}", v) for k, v in result.get("edges", {}).items()]
    rows += [("column edges", result.get("column_edges", 0))]
    render.table(None, ["what", "count"], rows)


@store.command()
@store_option
@domain_errors
def rebuild(store_url):
    """Drop the graph and replay the whole ledger into it.

    The ledger is the source of truth; the graph is derived from it, so this is
    always safe. If it is interrupted, run it again.

    \b
    Example:
        auditgraph store rebuild
    """
    with connect(store_url) as s:
        total = s.head().seq
        with Progress(disable=not is_terminal(), transient=True, console=render.Console(stderr=True)) as bar:
            task = bar.add_task("replaying", total=total)
            count = s.rebuild(progress=lambda n: bar.advance(task, n))
        click.echo(f"replayed {count} entries; head {s.head().hash}")
