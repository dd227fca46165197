"""Issuing a report: collect the bundle, render every format, record the issuance in the ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lineage.canonical import file_digest
from lineage.clock import utc_text
from lineage.kinds import EntryKind, Payload, register
from lineage.store import Store
from reports.bundle import collect
from reports.errors import BundleError, BundleNotFoundError, FormatError, ReportError
from reports.pdf import html_to_pdf
from reports.render import FILENAMES, render

class IssuedPayload(Payload):
    """A report was issued: the bundle's digest, the ledger head it was drawn from, each file's digest."""

    model: str
    bundle_digest: str
    ledger_head: dict[str, Any]
    files: dict[str, str]
    at: str


ISSUED_KIND = register(EntryKind("reports.issued", IssuedPayload, "govern", lambda p: p.model))
ISSUED = ISSUED_KIND.name
FORMATS = ("html", "md", "json", "junit", "card", "pdf")


@dataclass
class Issued:
    model: str
    digest: str
    out: Path
    files: dict[str, str] = field(default_factory=dict)
    seq: int | None = None
    warnings: list[str] = field(default_factory=list)
    outcome: str | None = None


def issue(store: Store, model: str, out: Path, formats: list[str], actor: str,
          templates: Path | None = None) -> Issued:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise FormatError(f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    bundle = collect(store, model)
    result = Issued(model=bundle["model"]["id"], digest=bundle["digest"], out=out,
                    outcome=(bundle["gate"] or {}).get("outcome"))
    wanted = list(dict.fromkeys(["json", *formats, *(["html"] if "pdf" in formats else [])]))
    # Render everything before writing anything: a template that fails leaves no partial report.
    rendered = {fmt: render(bundle, fmt, templates) for fmt in wanted if fmt != "pdf"}
    out.mkdir(parents=True, exist_ok=True)
    for fmt, text in rendered.items():
        path = out / FILENAMES[fmt]
        path.write_text(text, encoding="utf-8")
        result.files[path.name] = file_digest(path)
    if "pdf" in wanted:
        try:
            pdf = html_to_pdf(out / FILENAMES["html"], out / FILENAMES["pdf"])
            result.files[pdf.name] = file_digest(pdf)
        except ReportError as e:
            result.warnings.append(str(e))
    payload = {"model": result.model, "bundle_digest": result.digest, "ledger_head": bundle["ledger_head"],
               "files": result.files, "at": utc_text()}
    result.seq = store.append(ISSUED_KIND.pending(payload, actor)).seq
    return result


def load_bundle(path: Path) -> tuple[dict, Path]:
    folder = path if path.is_dir() else path.parent
    bundle_path = folder / FILENAMES["json"] if path.is_dir() or path.name != FILENAMES["json"] else path
    try:
        bundle = json.loads(bundle_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleNotFoundError(f"{bundle_path}: no bundle.json next to the report") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleError(f"{bundle_path}: not a JSON bundle ({e})") from None
    if not isinstance(bundle, dict):
        raise BundleError(f"{bundle_path}: not a report bundle (a JSON object was expected)")
    return bundle, folder
