"""Issuing a report: collect the bundle, render every format, record the issuance in the ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lineage.canonical import file_digest
from lineage.checkpoint import LogKey
from lineage.clock import utc_text
from lineage.errors import Unavailable
from lineage.kinds import EntryKind, Payload
from lineage.store import Store
from reports import anchor
from reports.bundle import collect, seal
from reports.errors import BundleError, BundleNotFoundError
from reports.formats import BUILTIN_FILES, RenderContext, ReportFormat, named


class IssuedPayload(Payload):
    """A report was issued: the bundle's digest, the ledger head it was drawn from, each file's digest."""

    model: str
    bundle_digest: str
    ledger_head: dict[str, Any]
    files: dict[str, str]
    at: str


ISSUED_KIND = EntryKind("reports.issued", IssuedPayload, "govern", lambda p: p.model)  # reports.plugin declares it
ISSUED = ISSUED_KIND.name
BUNDLE_FILE = BUILTIN_FILES["json"]


@dataclass
class Issued:
    model: str
    digest: str
    out: Path
    files: dict[str, str] = field(default_factory=dict)
    seq: int | None = None
    warnings: list[str] = field(default_factory=list)
    outcome: str | None = None
    anchor: dict[str, Any] = field(default_factory=dict)  # the bundle's anchor, without its entries


def issue(
    store: Store,
    model: str,
    out: Path,
    formats: list[str],
    actor: str,
    templates: Path | None = None,
    log_key: LogKey | None = None,
) -> Issued:
    """Render the bundle in ``formats`` (and the bundle itself) into ``out`` and record the issuance.

    The bundle is anchored (``reports.anchor``) before it is sealed: with ``log_key``, by a checkpoint
    taken and recorded right after collecting; without, by the newest recorded checkpoint if it covers
    every cited entry; else it says it is not anchored. Formats that need no other file render before
    anything is written: a template that fails leaves no partial report and records no issuance (a
    checkpoint it took stays recorded, as any checkpoint). A format that cannot render on this machine
    (a PDF without Chromium) is left out with a warning; every file written is recorded with its digest.
    """
    order = _in_order(["json", *formats])
    bundle = collect(store, model)
    bundle = seal({**bundle, "anchor": anchor.build(store, bundle, log_key, actor)})
    result = Issued(
        model=bundle["model"]["id"],
        digest=bundle["digest"],
        out=out,
        outcome=(bundle["gate"] or {}).get("outcome"),
        anchor={k: v for k, v in bundle["anchor"].items() if k != "entries"},
    )
    ctx = RenderContext(templates=templates, folder=out)
    rendered = {fmt.filename: fmt.render_bytes(bundle, ctx) for fmt in order if not fmt.needs}
    out.mkdir(parents=True, exist_ok=True)
    for name, content in rendered.items():
        result.files[name] = _write(out / name, content)
    for fmt in (f for f in order if f.needs):
        try:
            result.files[fmt.filename] = _write(out / fmt.filename, fmt.render_bytes(bundle, ctx))
        except Unavailable as e:
            result.warnings.append(str(e))
    payload = {
        "model": result.model,
        "bundle_digest": result.digest,
        "ledger_head": bundle["ledger_head"],
        "files": result.files,
        "at": utc_text(),
    }
    result.seq = store.append(ISSUED_KIND.pending(payload, actor)).seq
    return result


def _in_order(names: list[str]) -> list[ReportFormat]:
    """The named formats (unknown ones refused), each after the formats it needs."""
    order: dict[str, ReportFormat] = {}

    def add(name: str) -> None:
        fmt = named(name)
        for need in fmt.needs:
            add(need)
        order.setdefault(name, fmt)

    for name in dict.fromkeys(names):
        add(name)
    return list(order.values())


def _write(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return file_digest(path)


def load_bundle(path: Path) -> tuple[dict, Path]:
    folder = path if path.is_dir() else path.parent
    bundle_path = folder / BUNDLE_FILE if path.is_dir() or path.name != BUNDLE_FILE else path
    try:
        bundle = json.loads(bundle_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleNotFoundError(f"{bundle_path}: no bundle.json next to the report") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleError(f"{bundle_path}: not a JSON bundle ({e})") from None
    if not isinstance(bundle, dict):
        raise BundleError(f"{bundle_path}: not a report bundle (a JSON object was expected)")
    return bundle, folder
