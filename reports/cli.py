"""``auditgraph reports ...``: issue, verify and re-render release reports."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lineage.checkpoint import LogKey, Verifier
from lineage.cli.audit import log_key_file_option, log_key_option
from lineage.cli.options import (
    actor_option,
    connect,
    default_actor,
    domain_errors,
    emit_json,
    json_option,
    store_option,
)
from reports.formats import RenderContext, ReportFormat
from reports.formats import formats as registered_formats
from reports.issue import issue, load_bundle
from reports.verify import verify as verify_report


class FormatChoice(click.Choice):
    """The registered report formats (those ``keep`` accepts), read when the command runs, not when it is defined."""

    def __init__(self, keep: Callable[[ReportFormat], bool] = lambda f: True):
        self.keep = keep
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        return [name for name, fmt in registered_formats().items() if self.keep(fmt)]

    @choices.setter
    def choices(self, value: Any) -> None:
        pass


@click.group()
def reports():
    """Responsible-AI release reports that an auditor can read and verify.

    \b
    Example:
        auditgraph reports release model:demo/churn-classifier@3 --out report/
    """


templates_option = click.option(
    "--templates",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A folder of templates overriding the defaults by name (report.html.j2, report.md.j2, model_card.md.j2). "
    "They run in jinja2's sandbox: a template may read the bundle (b) and call the registered filters "
    "(md, num, pct, compact, status_label, the *_svg charts) and nothing else: no attribute access to "
    "internals, no imports, no file or network I/O, no links out of the folder. A template that breaks "
    "this, or fails, stops the command with exit 1 naming the template and line. What a template makes is "
    "bounded: strings and lists up to 16 Mi items, format widths and filter widths up to 10,000, range() up "
    "to 100,000 items, 16 Mi characters of output; it renders in a child process with 512 MiB more memory "
    "and AUDITGRAPH_TEMPLATE_SECONDS of wall clock (default 10); over any limit: exit 1, nothing written. "
    ".md templates are not HTML-escaped: pass every value through |md.",
)


@reports.command()
@click.argument("model", metavar="MODEL@VERSION")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write to.")
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=FormatChoice(),
    default=lambda: [n for n, f in registered_formats().items() if f.default],
    show_default="html, md, json, junit, card",
    help="Formats to write (repeatable); plugins may register more (reports.formats).",
)
@templates_option
@log_key_file_option
@store_option
@actor_option
@json_option
@domain_errors
def release(model, out, formats, templates, log_key_file, store_url, actor, as_json):
    """Write the release report of MODEL@VERSION (HTML, Markdown, JSON bundle, JUnit, model card, PDF).

    The report holds what the store records about the model: identity,
    lineage, evaluations, explanations, fairness, every rule of the latest
    gate run, approvals, framework coverage and what was not evaluated. It
    prints its bundle digest and ledger head; issuing it is a ledger entry.

    The bundle is anchored, so that it verifies without the store: with
    --log-key-file a checkpoint is signed and recorded right after the bundle
    is drawn; without, the newest recorded checkpoint ('audit checkpoint') is
    used if it covers every entry the report cites. Otherwise the report says
    it is not anchored, and only verifies against the store.

    \b
    Example:
        auditgraph reports release model:demo/churn-classifier@3 --out report/ --format html --format pdf
        auditgraph reports release model:demo/churn-classifier@3 --out report/ --log-key-file ~/.config/auditgraph/log.key
    """
    key = LogKey.load(log_key_file) if log_key_file else None
    with connect(store_url) as store:
        issued = issue(store, model, out, list(formats), default_actor(actor), templates, key)
    for warning in issued.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not issued.anchor.get("checkpoint"):
        click.echo(f"warning: the report is not anchored: {issued.anchor.get('why')}", err=True)
    if as_json:
        emit_json(
            {
                "model": issued.model,
                "digest": issued.digest,
                "seq": issued.seq,
                "files": issued.files,
                "outcome": issued.outcome,
                "warnings": issued.warnings,
                "anchor": issued.anchor,
            }
        )
        return
    click.echo(f"report for {issued.model}: {issued.outcome or 'no gate run'}; bundle {issued.digest}")
    for name, file_digest in issued.files.items():
        click.echo(f"  {out / name}  {file_digest}")
    if issued.anchor.get("checkpoint"):
        a = issued.anchor
        click.echo(f"anchored by checkpoint {a['origin']} of {a['size']} entries, root {a['root']} ({a['source']})")
    click.echo(f"issued as ledger entry {issued.seq}")


@reports.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path), metavar="REPORT")
@log_key_option
@click.option(
    "--no-anchor",
    is_flag=True,
    help="Only with a store: skip the anchor (checkpoint signature, inclusion proofs, statements against the "
    "payloads they cite) and trust the store alone; for reports issued without a checkpoint.",
)
@templates_option
@store_option
@json_option
@domain_errors
def verify(path, log_key, no_anchor, templates, store_url, as_json):
    """Check a report against its bundle, its anchor and, if one is named, the store; exit 1 and say what is
    wrong if it does not hold.

    REPORT is the report folder (or a file in it). Offline, whenever no store is
    named (no --store, no $AUDITGRAPH_STORE; the default store is never opened):
    the bundle's digest, each rendering re-rendered byte for byte, the checkpoint's
    signature with the log's public key (--log-key), each cited entry's hash
    recomputed from its header and its inclusion proof to the checkpoint, and each
    statement against the payload of the entry it cites. With a store, also: the
    cited entries are in it, the chain and tree verify, the store's tree extends
    the report's checkpoint (consistency proof) and the issuance is recorded.
    Without --log-key the anchor cannot be trusted and the report does not verify.

    \b
    Example:
        auditgraph reports verify report/ --log-key log.pub
        auditgraph reports verify report/ --log-key log.pub --store sqlite:///store.db
    """
    if no_anchor and store_url is None:
        raise click.UsageError("--no-anchor needs --store: without the store, the anchor is what verifies a report")
    verifier = Verifier.load(log_key) if log_key else None
    if store_url is None:
        verdict = verify_report(path, None, verifier, templates)
    else:
        with connect(store_url) as store:
            verdict = verify_report(path, store, verifier, templates, anchor=not no_anchor)
    if as_json:
        emit_json({"ok": verdict.ok, "checked": verdict.checked, "problems": verdict.problems, "notes": verdict.notes})
    else:
        for line in verdict.checked:
            click.echo(f"ok: {line}")
        for note in verdict.notes:
            click.echo(f"note: {note}")
        for problem in verdict.problems:
            click.echo(f"FAILED: {problem}", err=True)
    sys.exit(0 if verdict.ok else 1)


@reports.command("render")
@click.argument("bundle_path", type=click.Path(exists=True, path_type=Path), metavar="BUNDLE")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=FormatChoice(lambda f: not f.needs and f.name != "json"),
    default=("html", "md"),
    show_default=True,
)
@templates_option
@domain_errors
def render_bundle(bundle_path, out, formats, templates):
    """Render a bundle again (byte-identical to the original with the same templates).

    \b
    Example:
        auditgraph reports render report/bundle.json --out again/
    """
    bundle, _ = load_bundle(bundle_path)
    chosen = [registered_formats()[name] for name in dict.fromkeys(formats)]
    ctx = RenderContext(templates=templates)
    rendered = {fmt.filename: fmt.render_bytes(bundle, ctx) for fmt in chosen}  # all or nothing
    out.mkdir(parents=True, exist_ok=True)
    for name, content in rendered.items():
        (out / name).write_bytes(content)
        click.echo(out / name)
