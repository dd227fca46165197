"""Report formats: what a report can be written as, each declared once.

A ``ReportFormat`` names its file, how it renders a bundle and whether the same
bundle renders to the same bytes (``reproducible``: ``reports verify`` renders
it again and compares byte for byte; the others are checked by the digest
recorded at issuance). Formats are registered through the plugin hook
``register_report_formats`` (``lineage.hookspecs``): the built-in ones below by
``reports.plugin``, a third party's by its own plugin, the same way.

Example, a plugin adding a CSV of the gate's rules::

    from lineage.hookspecs import hookimpl
    from reports.formats import ReportFormat

    def rules_csv(bundle, ctx):
        return "rule,status\\n" + "".join(f"{r['rule']},{r['status']}\\n" for r in bundle["gate"]["rules"])

    @hookimpl
    def register_report_formats():
        return [ReportFormat("csv", "rules.csv", rules_csv, reproducible=True)]
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports.errors import BundleError, FormatError


@dataclass(frozen=True)
class RenderContext:
    """What a rendering may use besides the bundle."""

    templates: Path | None = None  # a user's templates overriding ours by name (--templates)
    folder: Path | None = None  # where the formats rendered before this one were written (a PDF prints the HTML)


@dataclass(frozen=True)
class ReportFormat:
    name: str
    filename: str
    render: Callable[[dict[str, Any], RenderContext], str | bytes]
    reproducible: bool  # the same bundle (and templates) always renders to the same bytes
    default: bool = False  # written by ``reports release`` unless --format says otherwise
    needs: tuple[str, ...] = ()  # formats that must be written first, into the same folder
    description: str = ""

    def render_bytes(self, bundle: dict[str, Any], ctx: RenderContext) -> bytes:
        """The file's bytes (a text rendering is written as UTF-8)."""
        content = self.render(bundle, ctx)
        return content.encode("utf-8") if isinstance(content, str) else content


def formats() -> dict[str, ReportFormat]:
    """Every registered format by name, in registration order (built-ins first)."""
    from lineage.plugins import registry

    return registry().report_formats


def named(name: str) -> ReportFormat:
    known = formats()
    if name not in known:
        raise FormatError(f"unknown report format {name!r}; choose from {', '.join(known)}")
    return known[name]


def _templated(fmt: str) -> Callable[[dict[str, Any], RenderContext], str]:
    def render(bundle: dict[str, Any], ctx: RenderContext) -> str:
        from reports.render import template

        return template(bundle, fmt, ctx.templates)

    return render


def _json(bundle: dict[str, Any], ctx: RenderContext) -> str:
    from reports.render import bundle_json

    return bundle_json(bundle)


def _junit(bundle: dict[str, Any], ctx: RenderContext) -> str:
    from reports.junit import from_bundle
    from reports.render import RENDER_ERRORS, plain

    try:
        return from_bundle(bundle)
    except RENDER_ERRORS as e:
        raise BundleError(f"bundle cannot be rendered as JUnit: {plain(e)}") from None


def _pdf(bundle: dict[str, Any], ctx: RenderContext) -> bytes:
    from reports.pdf import html_to_pdf

    if ctx.folder is None:
        raise FormatError("a PDF is printed from the HTML report: render html into a folder first")
    with tempfile.TemporaryDirectory(prefix="auditgraph-pdf-") as scratch:
        return html_to_pdf(ctx.folder / BUILTIN_FILES["html"], Path(scratch) / "report.pdf").read_bytes()


BUILTIN_FILES = {
    "json": "bundle.json",
    "html": "report.html",
    "md": "report.md",
    "card": "model_card.md",
    "junit": "gate.junit.xml",
    "pdf": "report.pdf",
}

BUILTIN = (
    ReportFormat(
        "json",
        BUILTIN_FILES["json"],
        _json,
        reproducible=True,
        default=True,
        description="the bundle itself: every fact the report states, with its digest",
    ),
    ReportFormat(
        "html",
        BUILTIN_FILES["html"],
        _templated("html"),
        reproducible=True,
        default=True,
        description="the release report for people",
    ),
    ReportFormat(
        "md",
        BUILTIN_FILES["md"],
        _templated("md"),
        reproducible=True,
        default=True,
        description="the release report as Markdown",
    ),
    ReportFormat(
        "junit",
        BUILTIN_FILES["junit"],
        _junit,
        reproducible=True,
        default=True,
        description="the gate's rules as JUnit XML for CI",
    ),
    ReportFormat(
        "card",
        BUILTIN_FILES["card"],
        _templated("card"),
        reproducible=True,
        default=True,
        description="a model card (Markdown)",
    ),
    ReportFormat(
        "pdf",
        BUILTIN_FILES["pdf"],
        _pdf,
        reproducible=False,
        needs=("html",),
        description="the HTML report printed by headless Chromium",
    ),
)
