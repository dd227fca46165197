"""``auditgraph ingest`` and ``auditgraph demo``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from importlib.resources import files

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from lineage.anchors import Checkpointer
from lineage.checkpoint import CheckpointError, LogKey
from lineage.cli import render
from lineage.cli.audit import LOG_KEY_FILE_ENV, checkpoint_every_option, log_key_file_option
from lineage.cli.lineage import print_traversal
from lineage.cli.options import (
    actor_option,
    connect,
    default_actor,
    domain_errors,
    emit_json,
    is_terminal,
    json_option,
    store_option,
)
from lineage.errors import InputError
from lineage.graph import Graph
from lineage.ingest import Document, IngestReport, read_documents
from lineage.ingest import ingest as run_ingest
from lineage.store import Store, redact

SAMPLE = "demo-training-pipeline.jsonl"


@click.command()
@click.argument("sources", nargs=-1, required=True, metavar="FILE...|-")
@store_option
@actor_option
@json_option
@click.option(
    "--batch-size", default=2000, show_default=True, type=click.IntRange(1, 100_000), help="Events per transaction."
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on when stderr is a terminal).")
@checkpoint_every_option("after each batch, and at the end,")
@log_key_file_option
@domain_errors
def ingest(sources, store_url, actor, as_json, batch_size, progress, checkpoint_every, log_key_file):
    """Record OpenLineage events from files or standard input (-).

    Reads JSON objects, JSON arrays and JSON Lines. Every event is validated
    first; a rejected event is reported with its file and line and changes
    nothing. Exits 1 if any event was rejected, 0 otherwise.

    \b
    Example:
        auditgraph ingest events/*.json
        cat events.jsonl | auditgraph ingest - --json
        auditgraph ingest events.jsonl --checkpoint-every 10000 --log-key-file ~/.config/auditgraph/log.key
    """
    actor = default_actor(actor)
    with connect(store_url) as store:
        checkpointer = None
        if checkpoint_every:
            if log_key_file is None:
                raise CheckpointError(f"--checkpoint-every needs --log-key-file (or ${LOG_KEY_FILE_ENV})")
            checkpointer = Checkpointer(LogKey.load(log_key_file), checkpoint_every, actor, store)
        report = _ingest_sources(
            store,
            sources,
            actor,
            batch_size,
            is_terminal() if progress is None else progress,
            checkpointer.after_write if checkpointer else None,
        )
        if checkpointer:
            checkpointer.after_write(store, force=True)
    _print_report(report, as_json)
    if not report.ok:
        sys.exit(1)


def _ingest_sources(
    store: Store, sources, actor: str, batch_size: int, show_progress: bool, after_batch=None
) -> IngestReport:
    total = sum(os.path.getsize(s) for s in sources if s != "-" and os.path.isfile(s))
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not show_progress,
        console=render.Console(stderr=True),
    ) as bar:
        task = bar.add_task("ingesting", total=total or None)
        docs = _documents(sources, lambda n: bar.advance(task, n))
        return run_ingest(store, docs, actor, batch=batch_size, after_batch=after_batch)


def _documents(sources, on_bytes) -> Iterator[Document]:
    for source in sources:
        if source == "-":
            yield from _safe(read_documents(sys.stdin.buffer, "<stdin>"), "<stdin>")
            continue
        try:
            stream = open(source, "rb")
        except OSError as e:
            yield Document(source, error=f"cannot read: {e.strerror}")
            continue
        with stream:
            yield from _safe(read_documents(stream, source, on_bytes), source)


def _safe(docs: Iterator[Document], name: str) -> Iterator[Document]:
    try:
        yield from docs
    except InputError as e:
        yield Document(name, error=str(e))


def _print_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        emit_json(report.as_dict())
        return
    for where, warning in report.warnings:
        render.note(f"warning: {where}: {warning}")
    for where, reason in report.rejected:
        render.note(f"rejected: {where}: {reason}")
    click.echo(f"accepted {report.accepted}, duplicate {report.duplicates}, rejected {len(report.rejected)}")


@click.command()
@store_option
@domain_errors
def demo(store_url):
    """Ingest a bundled sample training pipeline and show where its model came from.

    The sample is a small OpenLineage pipeline (raw data, features, a training
    run, a model version). Running it twice changes nothing: the ledger is
    idempotent.

    \b
    Example:
        auditgraph demo
        auditgraph lineage impact dataset:s3://demo-lake/raw/customers.csv
    """
    sample = files("lineage") / "samples" / SAMPLE
    with connect(store_url) as store, sample.open("rb") as stream:
        report = run_ingest(store, read_documents(stream, SAMPLE), "demo")
        click.echo(f"store: {redact(store.url)}")
        click.echo(
            f"sample: accepted {report.accepted}, duplicate {report.duplicates}, rejected {len(report.rejected)}"
        )
        print_traversal(Graph(store).traverse("model:demo/churn-classifier", "upstream"))
        head = store.head()
        click.echo(f"ledger head: entry {head.seq}, {head.hash}")
