"""``auditgraph audit ...``: the ledger itself."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.progress import Progress

from lineage import anchors
from lineage.checkpoint import CheckpointError, LogKey, Verifier, load_checkpoint
from lineage.cli import render
from lineage.cli.options import (
    actor_option,
    connect,
    default_actor,
    domain_errors,
    emit_json,
    is_terminal,
    json_option,
    store_option,
    time_callback,
)
from lineage.graphcheck import GraphCheck, check_graph

LOG_KEY_ENV = "AUDITGRAPH_LOG_KEY"  # the log's public key (or its file), for verifying
LOG_KEY_FILE_ENV = "AUDITGRAPH_LOG_KEY_FILE"  # the file holding the log's private key, for signing


def log_key_option(fn):
    return click.option(
        "--log-key",
        "log_key",
        envvar=LOG_KEY_ENV,
        metavar="KEY|FILE",
        help=f"The log's public key (name+hash+key, as 'audit keygen' prints it) or a file holding it; "
        f"default ${LOG_KEY_ENV}. Checkpoints are only trusted when their signature verifies with it.",
    )(fn)


def checkpoint_every_option(when: str):
    """``--checkpoint-every N`` for a command that writes (``serve``, ``ingest``); ``when`` says when it checks."""
    return click.option(
        "--checkpoint-every",
        type=click.IntRange(1),
        metavar="N",
        help=f"Sign and record a checkpoint {when} once N entries were written since the last one "
        "(needs --log-key-file).",
    )


def log_key_file_option(fn):
    return click.option(
        "--log-key-file",
        "log_key_file",
        envvar=LOG_KEY_FILE_ENV,
        metavar="FILE",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"The log's private key (written by 'audit keygen'); default ${LOG_KEY_FILE_ENV}. "
        "Keep it off the machine that holds the store's database.",
    )(fn)


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
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="A signed checkpoint kept outside the store ('audit checkpoint' wrote it); the ledger must still begin "
    "with the entries it signed. Repeatable. Needs --log-key.",
)
@log_key_option
@click.option(
    "--graph",
    "graph",
    is_flag=True,
    help="Also replay the ledger into a scratch store and compare the graph with it: name every node, edge, "
    "facet and column edge that is missing, extra or different (the first 20; --json: all).",
)
@json_option
@domain_errors
def verify(store_url, expect_head, checkpoints, log_key, graph, as_json):
    """Recompute the hash chain and the Merkle tree; check every checkpoint. Exits 1 if anything differs.

    Catches an entry that was altered, deleted, inserted or reordered. Someone
    who can write the database can re-hash the whole chain; a checkpoint signed
    by the log key and kept elsewhere (--checkpoint) catches that too, naming
    the first entry that no longer matches, and so does any checkpoint recorded
    in the ledger (signatures checked with --log-key). A ledger cut short at its
    end is caught by a kept checkpoint or --expect-head.

    The graph is a projection of the ledger; someone who can write the database
    can change it and leave the ledger alone. --graph replays the ledger into a
    temporary SQLite file (as much disk as the store) and compares every row.

    \b
    Example:
        auditgraph audit verify --json
        auditgraph audit verify --log-key log.pub --checkpoint checkpoints/2026-12-01.note
        auditgraph audit verify --graph
    """
    verifier = Verifier.load(log_key) if log_key else None
    if checkpoints and verifier is None:
        raise CheckpointError("--checkpoint needs --log-key: a checkpoint is evidence only once its signature verifies")
    kept = [(path, load_checkpoint(path, verifier)) for path in checkpoints] if verifier else []
    with connect(store_url) as store:
        with Progress(disable=not is_terminal(), transient=True, console=render.Console(stderr=True)) as bar:
            task = bar.add_task("verifying", total=store.head().seq)
            result = anchors.verify(store, kept, verifier, progress=lambda n: bar.update(task, completed=n))
        graph_check = _check_graph(store) if graph and result.ok else None  # a broken ledger projects nothing
    chain = result.chain
    ok = result.ok and (expect_head is None or expect_head == chain.head) and (graph_check is None or graph_check.ok)
    first_break = chain.first_break or result.first_break
    if as_json:
        emit_json(
            {
                **chain.model_dump(exclude={"roots"}),
                "ok": ok,
                "first_break": first_break.model_dump() if first_break else None,
                "checked": result.checked,
                **({"graph": graph_check.as_json() if graph_check else None} if graph else {}),
            }
        )
    elif result.ok:
        click.echo(f"ok: {chain.entries} entries, head {chain.head}, tree root {chain.tree_root}")
        for line in result.checked:
            click.echo(f"  {line}")
    else:
        click.echo(f"BROKEN at {first_break}", err=True)
        if chain.first_break:
            click.echo(f"{chain.entries} entries verified before the break; last good hash {chain.head}", err=True)
    if result.ok and expect_head is not None and expect_head != chain.head:
        click.echo(f"head is {chain.head}, expected {expect_head}", err=True)
    if graph and not as_json:
        _print_graph(graph_check)
    if not ok:
        sys.exit(1)


def _check_graph(store) -> GraphCheck:
    with render.progress("replaying the ledger", store.head().seq) as advance:
        return check_graph(store, advance)


def _print_graph(check: GraphCheck | None) -> None:
    if check is None:
        click.echo("graph not checked: a ledger that does not verify cannot be replayed", err=True)
    elif check.ok:
        click.echo(f"graph ok: {check.summary()}")
    else:
        click.echo(f"GRAPH DIFFERS: {check.summary()}", err=True)
        for line in check.lines():
            click.echo(f"  {line}", err=True)


@audit.command()
@click.argument("name")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (created with mode 0600; never overwritten).",
)
@json_option
@domain_errors
def keygen(name, out, as_json):
    """Make a log key: an Ed25519 key in the signed-note format, to sign checkpoints.

    NAME is the log's origin, written in every checkpoint (e.g. your host and
    the store's name). The private key goes to --out; the public key is printed:
    give it to whoever verifies (auditors, CI) and keep the private key away
    from the database's machine and its administrators.

    \b
    Example:
        auditgraph audit keygen auditgraph.example.com/prod --out ~/.config/auditgraph/log.key > log.pub
    """
    key = LogKey.generate(name)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CheckpointError(f"{out}: exists; a log key is never overwritten") from None
    except OSError as e:
        raise CheckpointError(f"{out}: cannot write the log key ({e.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key.text() + "\n")
    public = key.verifier().text()
    if as_json:
        emit_json({"name": name, "public_key": public, "key_file": str(out)})
    else:
        click.echo(public)


@audit.command()
@store_option
@log_key_file_option
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the signed checkpoint to this file."
)
@actor_option
@json_option
@domain_errors
def checkpoint(store_url, log_key_file, out, actor, as_json):
    """Sign the Merkle tree over every entry so far, record the checkpoint, and print it.

    The checkpoint is a C2SP signed note: origin, size and root hash, signed with
    the log key. Keep copies outside the store (a git repository, a ticket,
    another machine: README, "Anchoring the ledger"); `audit verify --checkpoint`
    proves the ledger still begins with what it signed.

    \b
    Example:
        auditgraph audit checkpoint --log-key-file ~/.config/auditgraph/log.key > checkpoints/$(date +%F).note
    """
    if log_key_file is None:
        raise CheckpointError(f"no log key: pass --log-key-file or set ${LOG_KEY_FILE_ENV}")
    key = LogKey.load(log_key_file)
    with connect(store_url) as store:
        taken = anchors.take(store, key, default_actor(actor))
    if out is not None:
        out.write_text(taken.note, encoding="utf-8")
    if as_json:
        emit_json(
            {
                "origin": taken.checkpoint.origin,
                "size": taken.checkpoint.size,
                "root": taken.checkpoint.root.hex(),
                "seq": taken.seq,
                "note": taken.note,
            }
        )
    else:
        click.echo(taken.note, nl=False)


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
