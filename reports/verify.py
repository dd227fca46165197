"""Verifying a report: its bundle, its renderings, its anchor, and the store it claims to come from.

1. The bundle's digest is recomputed from its content.
2. Each rendering next to it in a reproducible format (``reports.formats``: HTML,
   Markdown, model card, JUnit, and any a plugin registers as reproducible) is
   rendered again from the bundle and must match byte for byte, so an edited
   report is caught. (A PDF is a print of the HTML; it is not re-rendered.)
3. The anchor (``reports.anchor``), with the log's public key and no store: the
   checkpoint's signature; each cited entry's hash recomputed from its header and
   its inclusion proof to the signed root; the payloads the bundle carries against
   their digests, and every row the report states against the payload it cites
   (``reports.statements``); the framework coverage and the "not evaluated" list
   against the rules they summarise.
4. With a store: the ledger head and every cited entry exist with the same hashes;
   the chain and the stored tree verify (approval signatures included) and the
   ledger still begins with what the report's checkpoint signed, by a consistency
   proof from that checkpoint to the store's tree; the report's issuance is recorded.

Without the log key the anchor cannot be trusted, and verification fails; only
with a store may the anchor be skipped (``anchor=False``), and the verdict then
says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lineage import anchors, merkle
from lineage.checkpoint import Checkpoint, Verifier
from lineage.store import Store
from reports import statements
from reports.anchor import verify as verify_anchor
from reports.bundle import bundle_digest, coverage, not_evaluated
from reports.formats import RenderContext, formats
from reports.issue import ISSUED_KIND, load_bundle

NO_KEY = (
    "the report's anchor is not checked: without the log's public key (--log-key, or $AUDITGRAPH_LOG_KEY) "
    "its checkpoint cannot be trusted"
)


@dataclass
class Verdict:
    ok: bool = True
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was not checked, and why

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)


def verify(
    path: Path,
    store: Store | None = None,
    verifier: Verifier | None = None,
    templates: Path | None = None,
    anchor: bool = True,
) -> Verdict:
    """Verify the report at ``path``: offline when ``store`` is None (then ``anchor`` must be True)."""
    if store is None and not anchor:
        raise ValueError("a report verified without a store is verified by its anchor")
    verdict = Verdict()
    bundle, folder = load_bundle(path)
    actual = bundle_digest(bundle)
    if actual != bundle.get("digest"):
        verdict.fail(f"bundle.json was altered: its content has digest {actual}, it claims {bundle.get('digest')}")
        return verdict
    verdict.checked.append(f"bundle digest {actual}")
    _renderings(bundle, folder, templates, verdict)
    try:
        checkpoint = _anchor(bundle, verifier, verdict) if anchor else None
        if not anchor:
            verdict.notes.append(
                "--no-anchor: the checkpoint, the inclusion proofs and the statements against their cited "
                "payloads were not checked; only the store vouches for this report"
            )
        if store is not None:
            _store(store, bundle, checkpoint, verifier, verdict)
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # a bundle re-sealed by hand, fields removed
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


def _anchor(bundle: dict, verifier: Verifier | None, verdict: Verdict) -> Checkpoint | None:
    if verifier is None:
        verdict.fail(NO_KEY)
        return None
    proven = verify_anchor(bundle, verifier)
    for problem in proven.problems:
        verdict.fail(problem)
    verdict.checked += proven.checked
    verdict.notes += proven.notes
    if proven.checkpoint is None:
        return None
    found = statements.check(bundle, proven.entries)
    for problem in found.problems:
        verdict.fail(problem)
    if not found.problems:
        verdict.checked.append(f"{found.rows} statements match the payloads of the entries they cite")
    verdict.notes += found.notes
    _summaries(bundle, verdict)
    verdict.notes.append(statements.UNCHECKED)
    return proven.checkpoint


def _summaries(bundle: dict[str, Any], verdict: Verdict) -> None:
    """The framework coverage, the 'not evaluated' list and the identity's approval counts summarise the bundle's
    own (checked) rows."""
    rules = bundle["gate"]["rules"] if bundle["gate"] else []
    signed = statements.signed(bundle["approvals"])
    if bundle["frameworks"] != coverage(rules):
        verdict.fail("the framework coverage is not the one the gate's rules give")
    elif bundle["not_evaluated"] != not_evaluated(bundle):
        verdict.fail("the 'not evaluated' list is not the one the bundle's sections give")
    elif {k: bundle["model"][k] for k in signed} != signed:
        verdict.fail("the model's approval counts and signers are not the ones its approval rows give")
    else:
        verdict.checked.append("framework coverage, 'not evaluated' and the approval counts follow from the rows")


def _store(
    store: Store, bundle: dict, checkpoint: Checkpoint | None, verifier: Verifier | None, verdict: Verdict
) -> None:
    wanted = {
        bundle["ledger_head"]["seq"]: bundle["ledger_head"]["hash"],
        **{c["seq"]: c["hash"] for c in bundle["cited"]},
    }
    matched = True
    for seq, expected in sorted(wanted.items()):
        if seq == 0:
            continue
        entry = next(store.entries(after_seq=seq - 1, limit=1), None)
        if entry is None or entry.seq != seq:
            verdict.fail(f"ledger entry {seq}, cited by the report, is not in the store")
            matched = False
        elif entry.hash != expected:
            verdict.fail(
                f"ledger entry {seq} differs from the one the report cites (hash {entry.hash}, cited {expected})"
            )
            matched = False
    if matched:
        verdict.checked.append(
            f"ledger head {bundle['ledger_head']['seq']} and {len(bundle['cited'])} cited entries match the store"
        )
    if checkpoint is not None:
        _consistent(store, checkpoint, verdict)
    kept = [("the report's checkpoint", checkpoint)] if checkpoint is not None else []
    result = anchors.verify(store, kept, verifier)
    if not result.ok:
        verdict.fail(f"the store's ledger is broken: {result.chain.first_break or result.first_break}")
    else:
        chain = result.chain
        verdict.checked += result.checked
        verdict.checked.append(
            f"ledger chain and Merkle tree verify ({chain.entries} entries, {chain.signatures_checked} approval "
            "signatures)"
        )
    issued = [r.value for r in ISSUED_KIND.valid(store, bundle["model"]["id"])]
    if not any(i.bundle_digest == bundle["digest"] for i in issued):
        verdict.fail("no issuance of this bundle is recorded in the store")
    else:
        verdict.checked.append("the report's issuance is recorded in the ledger")


def _consistent(store: Store, checkpoint: Checkpoint, verdict: Verdict) -> None:
    """The store's tree today must extend the tree the report's checkpoint signed (RFC 9162 consistency)."""
    old, new = checkpoint.size, store.tree_size()
    signed = f"the report's checkpoint ({old} entries, root {checkpoint.root.hex()[:16]}...)"
    if new < old:
        verdict.fail(f"the store's Merkle tree holds {new} entries, fewer than {signed}: entries were removed")
        return
    try:
        proof = store.consistency_proof(old, new)
        merkle.verify_consistency(old, new, checkpoint.root, store.tree_root(new), proof)
    except merkle.ProofError as e:
        verdict.fail(
            f"the store's ledger no longer begins with what {signed} signed: it was rewritten after the report "
            f"was issued (consistency proof to the store's tree of {new} entries: {e})"
        )
        return
    verdict.checked.append(f"the store's tree of {new} entries extends {signed} (consistency proof verified)")
