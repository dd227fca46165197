"""A report's anchor: a signed checkpoint of the ledger, and the proof that each entry the report cites is in it.

``bundle["anchor"]`` holds:

* ``checkpoint``: a C2SP signed note (``lineage.checkpoint``) over the ledger's first
  ``size`` entries; ``origin``, ``size`` and ``root`` (hex) are copied out of it for the
  renderings, and ``source`` says where issuance got it;
* ``entries``: for the ledger head and every cited entry, its ``header`` (the fields its
  hash covers, ``LedgerEntry.header``), its ``hash`` and its RFC 9162 inclusion ``proof``
  in that tree (hex, nearest the leaf first); for the entries the report states facts
  from (``reports.statements.stated``), its ``payload`` too: the canonical JSON text whose
  SHA-256 is the header's ``payload_digest``. Always, whatever its size: a row whose
  payload is missing cannot be checked, and fails verification. (A report's rows restate
  most of each payload, so this at most about doubles what they take.)

Invariants: an anchored report's checkpoint covers every entry it cites; otherwise
``checkpoint`` is null, ``why`` says why, and the renderings say the report is not
anchored. Nothing in the anchor is trusted before ``verify`` has checked the checkpoint's
signature with the log's public key, which the verifier brings: a bundle cannot vouch
for itself.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lineage import anchors, merkle
from lineage.canonical import digest, sha256_hex
from lineage.checkpoint import Checkpoint, CheckpointError, LogKey, Verifier, read_checkpoint, split_note
from lineage.errors import LedgerError
from lineage.ledger import entry_header
from lineage.store import Store
from reports.statements import stated

# --- issuing -----------------------------------------------------------------------------------------


def build(store: Store, bundle: Mapping[str, Any], key: LogKey | None, actor: str) -> dict[str, Any]:
    """The anchor of a collected bundle: a fresh checkpoint signed with ``key`` (recorded in the ledger), or
    without a key the newest recorded checkpoint if it covers every cited entry; else why there is none."""
    cited = {c["seq"] for c in bundle["cited"]}
    found = _checkpoint(store, key, actor, max(cited, default=0))
    if isinstance(found, str):
        return {"checkpoint": None, "why": found}
    note, checkpoint, source = found
    with_payload = stated(bundle)
    wanted = sorted((cited | {bundle["ledger_head"]["seq"]}) - {0})
    return {
        "checkpoint": note,
        "origin": checkpoint.origin,
        "size": checkpoint.size,
        "root": checkpoint.root.hex(),
        "source": source,
        "entries": [
            _entry(store, seq, checkpoint.size, seq in with_payload) for seq in wanted if seq <= checkpoint.size
        ],
    }


def _checkpoint(store: Store, key: LogKey | None, actor: str, needed: int) -> tuple[str, Checkpoint, str] | str:
    if key is not None:
        taken = anchors.take(store, key, actor)
        return taken.note, taken.checkpoint, f"taken at issuance, recorded as ledger entry {taken.seq}"
    found = anchors.latest(store)
    if found is None:
        return "no checkpoint is recorded, and no log key was given to take one (--log-key-file)"
    value, newest = found.value, f"the newest recorded checkpoint (ledger entry {found.seq})"
    if value.size < needed:
        return (
            f"{newest} covers {value.size} entries and the report cites entry {needed}: take a newer one "
            "('auditgraph audit checkpoint') or issue with --log-key-file"
        )
    try:
        signed = Checkpoint.parse(split_note(value.note)[0])
    except CheckpointError as e:
        return f"{newest} does not hold a checkpoint note: {e}"
    if store.tree_size() < signed.size:
        store.sync_tree()
    if (signed.size, signed.root.hex()) != (value.size, value.root) or store.tree_root(signed.size) != signed.root:
        return f"{newest} does not match the ledger's Merkle tree: run 'auditgraph audit verify'"
    return value.note, signed, f"recorded as ledger entry {found.seq}"


def _entry(store: Store, seq: int, size: int, with_payload: bool) -> dict[str, Any]:
    entry = next(store.entries(after_seq=seq - 1, limit=1), None)
    if entry is None or entry.seq != seq:
        raise LedgerError(f"ledger entry {seq}, cited by the report, is not in the store")
    item: dict[str, Any] = {
        "header": entry.header(),
        "hash": entry.hash,
        "proof": [h.hex() for h in store.inclusion_proof(seq, size)],
    }
    if with_payload:
        item["payload"] = entry.payload
    return item


# --- verifying, without the store --------------------------------------------------------------------


@dataclass
class Proven:
    """What ``verify`` established: the checkpoint (signature checked), and the entries proven in its tree."""

    checkpoint: Checkpoint | None = None
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def verify(bundle: Mapping[str, Any], verifier: Verifier) -> Proven:
    """Check the anchor with the log's public key: the checkpoint's signature, each entry's hash recomputed from
    its header (and its payload's digest), each inclusion proof to the signed root, and that the ledger head
    and every cited entry are among the proven ones with the hashes the bundle cites."""
    out = Proven()
    anchor = bundle.get("anchor")
    if not isinstance(anchor, Mapping):
        out.problems.append("the report carries no anchor: it was issued before reports were anchored")
        return out
    if not anchor.get("checkpoint"):
        out.problems.append(f"the report is not anchored: {anchor.get('why') or 'no checkpoint'}")
        return out
    try:
        checkpoint = read_checkpoint(anchor["checkpoint"], verifier)
    except CheckpointError as e:
        out.problems.append(f"the report's checkpoint: {e}")
        return out
    copied = (anchor.get("origin"), anchor.get("size"), anchor.get("root"))
    if copied != (checkpoint.origin, checkpoint.size, checkpoint.root.hex()):
        out.problems.append("the anchor's origin, size or root differ from the checkpoint it carries, as signed")
        return out
    out.checkpoint = checkpoint
    out.checked.append(
        f"checkpoint {checkpoint.origin} of {checkpoint.size} entries, root {checkpoint.root.hex()}, "
        f"is signed by log key {verifier.text()}"
    )
    for item in anchor["entries"]:
        problem = _prove(item, checkpoint)
        if problem:
            out.problems.append(problem)
        else:
            out.entries[item["header"]["seq"]] = item
    _covered(bundle, checkpoint, out)
    return out


def _prove(item: Mapping[str, Any], checkpoint: Checkpoint) -> str:
    """'' if the entry's hash is its header's and its inclusion proof leads to the checkpoint's root."""
    header = entry_header(**item["header"])
    seq, recomputed = header["seq"], digest(header)
    if recomputed != item["hash"]:
        return f"anchored entry {seq}: its header hashes to {recomputed}, not to the hash it carries {item['hash']}"
    payload = item.get("payload")
    if payload is not None and sha256_hex(payload.encode("utf-8")) != header["payload_digest"]:
        return f"anchored entry {seq}: its payload does not match the payload digest in its header"
    try:
        proof = [bytes.fromhex(h) for h in item["proof"]]
        merkle.verify_inclusion(seq - 1, checkpoint.size, merkle.entry_leaf(recomputed), proof, checkpoint.root)
    except (merkle.ProofError, ValueError, binascii.Error) as e:
        return f"anchored entry {seq}: its inclusion proof does not lead to the checkpoint's root ({e})"
    return ""


def _covered(bundle: Mapping[str, Any], checkpoint: Checkpoint, out: Proven) -> None:
    head = bundle["ledger_head"]
    claims = {c["seq"]: c["hash"] for c in bundle["cited"]}
    missing = [seq for seq, h in sorted(claims.items()) if out.entries.get(seq, {}).get("hash") != h]
    for seq in missing:
        out.problems.append(f"ledger entry {seq}, cited by the report, is not proven in the checkpoint's tree")
    if head["seq"] > checkpoint.size:
        out.notes.append(
            f"the ledger head the report was drawn from (entry {head['seq']}) is after the checkpoint "
            f"({checkpoint.size} entries): it is not proven offline; every cited entry is"
        )
    elif head["seq"] and out.entries.get(head["seq"], {}).get("hash") != head["hash"]:
        out.problems.append(f"the ledger head the report was drawn from (entry {head['seq']}) is not proven")
    if not missing and not out.problems:
        out.checked.append(
            f"{len(claims)} cited entries and the ledger head: each hash recomputed from its header, "
            "each included in the checkpoint's tree"
        )
