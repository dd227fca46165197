"""``auditgraph store ...``: the store as a whole."""

from __future__ import annotations

import click
from rich.progress import Progress

from lineage.cli import render
from lineage.cli.options import connect, domain_errors, emit_json, is_terminal, json_option, store_option, time_callback
from lineage.errors import StoreError


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
    rows = [
        ("store", result["url"]),
        ("ledger entries", result["ledger"]["entries"]),
        ("ledger head", result["ledger"]["head"]),
    ]
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
@click.option(
    "--to", "target_url", required=True, metavar="URL", help="The store to copy into (empty, or an interrupted copy)."
)
@click.option(
    "--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000), help="Entries per transaction."
)
@click.option(
    "--known-at",
    "known_at",
    metavar="TIME",
    callback=time_callback,
    help="Copy only the entries recorded at or before TIME: the store then answers with what was known then.",
)
@domain_errors
def migrate(source_url, target_url, batch_size, known_at):
    """Copy a store to another backend by replaying its ledger, batched, with progress.

    Entries keep their sequence numbers, times and hashes, so both stores report
    the same ledger head and give the same answers. An interrupted migration
    resumes where it stopped. With --known-at, the copy stops at the last entry
    recorded by then: `--as-of` asks what was true at a time (event time, with
    every later correction), a --known-at copy answers what the store knew then.

    \b
    Example:
        auditgraph store migrate --from sqlite:///store.db --to neo4j://neo4j:secret@127.0.0.1:7687
        auditgraph store migrate --from sqlite:///store.db --to sqlite:///then.db --known-at 2026-03-01T00:00:00Z
    """
    with connect(source_url) as source, connect(target_url) as target:
        up_to = None
        if known_at is not None:
            up_to = 0
            for entry in source.entries(until=known_at, limit=None):
                up_to = entry.seq
        last = source.head().seq if up_to is None else up_to
        with Progress(disable=not is_terminal(), transient=True, console=render.Console(stderr=True)) as bar:
            task = bar.add_task("migrating", total=max(last - target.head().seq, 0))
            head = target.copy_ledger_from(
                source, progress=lambda n: bar.advance(task, n), batch=batch_size, up_to=up_to
            )
        if head.seq != last:
            raise StoreError("migration ended before the source's head; run it again")
        click.echo(f"copied to entry {head.seq}; head {head.hash}")
