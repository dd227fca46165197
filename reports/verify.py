"""Verifying a report: its bundle, its renderings, and the store it claims to come from.

1. The bundle's digest is recomputed from its content.
2. Each rendering next to it in a reproducible format (``reports.formats``: HTML,
   Markdown, model card, JUnit, and any a plugin registers as reproducible) is
   rendered again from the bundle and must match byte for byte, so an edited
   report is caught. (A PDF is a print of the HTML; it is not re-rendered.)
3. Against the store: the ledger head the bundle was drawn from, and every
   ledger entry it cites, exist with the same hashes; the chain verifies
   (approval signatures included); the report's issuance is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lineage.store import Store
from reports.bundle import bundle_digest
from reports.formats import RenderContext, formats
from reports.issue import ISSUED_KIND, load_bundle


@dataclass
class Verdict:
    ok: bool = True
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)


def verify(store: Store, path: Path, templates: Path | None = None) -> Verdict:
    verdict = Verdict()
    bundle, folder = load_bundle(path)
    actual = bundle_digest(bundle)
    if actual != bundle.get("digest"):
        verdict.fail(f"bundle.json was altered: its content has digest {actual}, it claims {bundle.get('digest')}")
        return verdict
    verdict.checked.append(f"bundle digest {actual}")
    _renderings(bundle, folder, templates, verdict)
    try:
        _store(store, bundle, verdict)
    except (KeyError, TypeError, ValueError) as e:  # a bundle re-sealed by hand after removing fields
        verdict.fail(f"bundle.json is not a complete report bundle: {type(e).__name__} {e}")
    return verdict


def _renderings(bundle: dict, folder: Path, templates: Path | None, verdict: Verdict) -> None:
    ctx = RenderContext(templates=templates)
    for fmt in formats().values():
        path = folder / fmt.filename
        if not fmt.reproducible or fmt.name == "json" or not path.exists():
            continue
        if path.read_bytes() != fmt.render_bytes(bundle, ctx):
            verdict.fail(
                f"{path.name} differs from a fresh rendering of the bundle: it was altered "
                "(or rendered with other templates: pass --templates)"
            )
        else:
            verdict.checked.append(f"{path.name} re-renders byte for byte")


def _store(store: Store, bundle: dict, verdict: Verdict) -> None:
    wanted = {
        bundle["ledger_head"]["seq"]: bundle["ledger_head"]["hash"],
        **{c["seq"]: c["hash"] for c in bundle["cited"]},
    }
    for seq, expected in sorted(wanted.items()):
        if seq == 0:
            continue
        entry = next(store.entries(after_seq=seq - 1, limit=1), None)
        if entry is None or entry.seq != seq:
            verdict.fail(f"ledger entry {seq}, cited by the report, is not in the store")
        elif entry.hash != expected:
            verdict.fail(
                f"ledger entry {seq} differs from the one the report cites (hash {entry.hash}, cited {expected})"
            )
    if verdict.ok:
        verdict.checked.append(
            f"ledger head {bundle['ledger_head']['seq']} and {len(bundle['cited'])} cited entries match the store"
        )
    chain = store.verify()
    if not chain.ok:
        verdict.fail(f"the store's ledger is broken: {chain.first_break}")
    else:
        verdict.checked.append(
            f"ledger chain verifies ({chain.entries} entries, {chain.signatures_checked} approval signatures)"
        )
    issued = [r.value for r in ISSUED_KIND.valid(store, bundle["model"]["id"])]
    if not any(i.bundle_digest == bundle["digest"] for i in issued):
        verdict.fail("no issuance of this bundle is recorded in the store")
    else:
        verdict.checked.append("the report's issuance is recorded in the ledger")
