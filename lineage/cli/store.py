"""``auditgraph store ...``: the store as a whole."""

from __future__ import annotations

import click
from rich.progress import Progress

from lineage.cli import render
from lineage.errors import LineageError
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


@store.command()
@click.option("--from", "source_url", required=True, metavar="URL", help="The store to copy from.")
@click.option("--to", "target_url", required=True, metavar="URL", help="The store to copy into (empty, or an interrupted copy).")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000), help="Entries per transaction.")
@domain_errors
def migrate(source_url, target_url, batch_size):
    """Copy a store to another backend by replaying its ledger, batched, with progress.

    Entries keep their sequence numbers, times and hashes, so both stores report
    the same ledger head and give the same answers. An interrupted migration
    resumes where it stopped.

    \b
    Example:
        auditgraph store migrate --from sqlite:///store.db --to neo4j://neo4j:secret@127.0.0.1:7687
    """
    with connect(source_url) as source, connect(target_url) as target:
        total = source.head().seq - target.head().seq
        with Progress(disable=not is_terminal(), transient=True, console=render.Console(stderr=True)) as bar:
            task = bar.add_task("migrating", total=max(total, 0))
            head = target.copy_ledger_from(source, progress=lambda n: bar.advance(task, n), batch=batch_size)
        if head != source.head():
            raise LineageError("migration ended before the source's head; run it again")
        click.echo(f"copied to entry {head.seq}; head {head.hash}")
