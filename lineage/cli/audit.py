"""``auditgraph audit ...``: the ledger itself."""

from __future__ import annotations

import json
import sys

import click

from lineage.cli import render
from lineage.cli.options import connect, domain_errors, emit_json, json_option, store_option, time_callback


@click.group()
def audit():
    """Verify and read the hash-chained ledger.

    \b
    Example:
        auditgraph audit verify
    """


@audit.command()
@store_option
@click.option(
    "--expect-head", metavar="HASH", help="Also fail unless the head is this hash (catches a truncated ledger)."
)
@json_option
@domain_errors
def verify(store_url, expect_head, as_json):
    """Recompute the hash chain; name the first broken entry. Exits 1 if broken.

    Catches an entry that was altered, deleted, inserted or reordered. A ledger
    cut short at the end still chains; compare the printed head with one you
    kept (--expect-head) to catch that.

    \b
    Example:
        auditgraph audit verify --json
    """
    with connect(store_url) as store:
        result = store.verify()
    ok = result.ok and (expect_head is None or expect_head == result.head)
    if as_json:
        emit_json({**result.model_dump(), "ok": ok})
    elif result.ok:
        click.echo(f"ok: {result.entries} entries, head {result.head}")
    else:
        click.echo(f"BROKEN at {result.first_break}", err=True)
        click.echo(f"{result.entries} entries verified before the break; last good hash {result.head}", err=True)
    if result.ok and not ok:
        click.echo(f"head is {result.head}, expected {expect_head}", err=True)
    if not ok:
        sys.exit(1)


@audit.command()
@store_option
@click.option("--kind", help="Only entries of this kind (e.g. openlineage.event).")
@click.option("--subject", metavar="ID", help="Only entries about this node (e.g. run:...).")
@click.option("--since", metavar="TIME", callback=time_callback, help="Recorded at or after this ISO 8601 time.")
@click.option("--until", metavar="TIME", callback=time_callback, help="Recorded at or before this ISO 8601 time.")
@click.option(
    "--after", "after_seq", type=click.IntRange(min=0), default=0, help="Only entries after this sequence number."
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--payload", is_flag=True, help="Include each entry's payload.")
@json_option
@domain_errors
def log(store_url, kind, subject, since, until, after_seq, limit, payload, as_json):
    """List ledger entries, oldest first, filtered by kind, subject and time.

    \b
    Example:
        auditgraph audit log --kind openlineage.event --since 2024-01-01T00:00:00Z --json
    """
    with connect(store_url) as store:
        entries = list(
            store.entries(kind=kind, subject=subject, since=since, until=until, after_seq=after_seq, limit=limit)
        )
    if as_json:
        emit_json(
            [
                {**e.model_dump(exclude={"payload"}), **({"payload": json.loads(e.payload)} if payload else {})}
                for e in entries
            ]
        )
        return
    render.table(
        None,
        ["seq", "recorded at", "kind", "subject", "actor", "hash"],
        ((e.seq, e.recorded_at, e.kind, e.subject, e.actor, e.hash[:16]) for e in entries),
    )
    if payload:
        for e in entries:
            click.echo(f"{e.seq}: {e.payload}")
