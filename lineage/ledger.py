"""The ledger: append-only, hash-chained records of every accepted write.

Invariants (checked by ``verify_chain``, kept by every backend):

* sequence numbers start at 1 and have no gaps;
* ``payload_digest`` is SHA-256 of the canonical bytes of the payload;
* ``hash`` is SHA-256 of the canonical bytes of the entry's header (seq,
  recorded_at, kind, actor, subject, event_time, payload_digest, prev_hash),
  so a change to any field, or to the payload, changes it;
* ``prev_hash`` is the previous entry's ``hash`` (``GENESIS`` for the first),
  so deleting, inserting or reordering entries breaks the chain at that point;
* (kind, payload_digest) is unique: a payload recorded once is acknowledged
  again, never appended twice.

Entries are checked by pure functions here; backends only store and fetch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from lineage.canonical import canonical_json, digest, plain_canonical_bytes, plain_digest, sha256_hex
from lineage.clock import utc_text
from lineage.errors import EventError
from lineage.merkle import EMPTY_ROOT, Compact, entry_leaf

GENESIS = "0" * 64


class LedgerEntry(BaseModel):
    """One recorded entry. ``payload`` is the canonical JSON text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    recorded_at: str
    kind: str
    actor: str
    subject: str | None
    event_time: str | None
    payload: str
    payload_digest: str
    prev_hash: str
    hash: str

    def header(self) -> dict[str, Any]:
        return entry_header(
            self.seq,
            self.recorded_at,
            self.kind,
            self.actor,
            self.subject,
            self.event_time,
            self.payload_digest,
            self.prev_hash,
        )


@dataclass(slots=True)
class Pending:
    """A write waiting to be recorded."""

    kind: str
    payload: Any
    actor: str
    subject: str | None = None
    event_time: str | None = None
    hint: Any = None  # what the caller already knows of the payload (a parsed event); never recorded
    plain: bool = False  # the caller checked the payload with canonical.is_plain: the fast encoder applies

    def canonical(self) -> tuple[str, str]:
        """The payload's canonical JSON text and its digest."""
        if self.plain:
            data = plain_canonical_bytes(self.payload)
            return data.decode("utf-8"), sha256_hex(data)
        text = canonical_json(self.payload)
        return text, sha256_hex(text.encode("utf-8"))


@dataclass(slots=True, frozen=True)
class Ack:
    """What a caller hears once its write is durable."""

    seq: int
    hash: str
    duplicate: bool
    subject: str | None


@dataclass(slots=True, frozen=True)
class Head:
    seq: int
    hash: str


def entry_header(seq, recorded_at, kind, actor, subject, event_time, payload_digest, prev_hash) -> dict:
    return {
        "seq": seq,
        "recorded_at": recorded_at,
        "kind": kind,
        "actor": actor,
        "subject": subject,
        "event_time": event_time,
        "payload_digest": payload_digest,
        "prev_hash": prev_hash,
    }


now = utc_text  # the time an entry is recorded (lineage.store.base imports it by this name)


def seal(
    pending: Pending, payload: str, payload_digest: str, head: Head, recorded_at: str | None = None
) -> LedgerEntry:
    """Make the next entry after ``head``; entries written in one transaction may share ``recorded_at``."""
    header = entry_header(
        head.seq + 1,
        recorded_at or utc_text(),
        pending.kind,
        pending.actor,
        pending.subject,
        pending.event_time,
        payload_digest,
        head.hash,
    )
    if not (
        isinstance(pending.kind, str)
        and isinstance(pending.actor, str)
        and isinstance(pending.subject, (str, type(None)))
        and isinstance(pending.event_time, (str, type(None)))
    ):
        raise EventError("an entry's kind, actor, subject and event time must be text")
    # every field is text, an int or None (checked above), so the header is plain
    return LedgerEntry(**header, payload=payload, hash=plain_digest(header))


class Break(BaseModel):
    """The first place the chain is broken."""

    model_config = ConfigDict(frozen=True)

    seq: int
    reason: str
    expected: str | None = None
    actual: str | None = None

    def __str__(self) -> str:
        text = f"entry {self.seq}: {self.reason}"
        if self.expected is not None:
            text += f" (expected {self.expected}, found {self.actual})"
        return text


class Verification(BaseModel):
    ok: bool
    entries: int
    head: str
    first_break: Break | None = None
    signatures_checked: int = 0
    tree_root: str = ""  # the Merkle root over the entries verified (lineage.merkle), recomputed from them
    roots: dict[int, str] = {}  # the root at each size the caller asked for (``capture``) that was reached


EntryCheck = Callable[[LedgerEntry], str | None]


def verify_chain(
    entries: Iterable[LedgerEntry],
    checks: Iterable[EntryCheck] = (),
    progress: Callable[[int], None] | None = None,
    capture: Iterable[int] = (),
    leaves: bytearray | None = None,
) -> Verification:
    """Recompute the chain and the Merkle tree over entries in sequence order; stop at the first break.

    ``checks`` are extra per-entry checks (signature verification from the
    governance package); each returns a reason or None, and may count what it
    verified in a ``verified`` attribute. ``capture`` names tree sizes whose
    root the caller wants (the sizes of checkpoints to compare); ``leaves``, if
    given, receives every verified entry's leaf hash (32 bytes each), to compare
    with the stored tree.
    """
    checks = list(checks)
    wanted = set(capture)
    tree = Compact()
    roots = {0: EMPTY_ROOT.hex()} if 0 in wanted else {}
    prev, expected_seq, count = GENESIS, 1, 0
    for entry in entries:
        problem = _check_entry(entry, prev, expected_seq)
        if problem is None:
            for check in checks:
                reason = check(entry)
                if reason:
                    problem = Break(seq=entry.seq, reason=reason)
                    break
        if problem is not None:
            return Verification(
                ok=False, entries=count, head=prev, first_break=problem, tree_root=tree.root().hex(), roots=roots
            )
        prev, expected_seq, count = entry.hash, entry.seq + 1, count + 1
        leaf = entry_leaf(entry.hash)
        tree.add(leaf)
        if leaves is not None:
            leaves += leaf
        if count in wanted:
            roots[count] = tree.root().hex()
        if progress and count % 1000 == 0:
            progress(count)
    return Verification(
        ok=True,
        entries=count,
        head=prev,
        signatures_checked=sum(getattr(c, "verified", 0) for c in checks),
        tree_root=tree.root().hex(),
        roots=roots,
    )


def _check_entry(entry: LedgerEntry, prev: str, expected_seq: int) -> Break | None:
    if entry.seq != expected_seq:
        what = "missing" if entry.seq > expected_seq else "out of order"
        return Break(seq=expected_seq, reason=f"entry {expected_seq} is {what} (next stored entry is {entry.seq})")
    actual_digest = sha256_hex(entry.payload.encode("utf-8"))
    if actual_digest != entry.payload_digest:
        return Break(
            seq=entry.seq,
            reason="payload does not match its digest",
            expected=entry.payload_digest,
            actual=actual_digest,
        )
    if entry.prev_hash != prev:
        return Break(
            seq=entry.seq, reason="prev_hash does not link to the previous entry", expected=prev, actual=entry.prev_hash
        )
    recomputed = digest(entry.header())
    if recomputed != entry.hash:
        return Break(
            seq=entry.seq, reason="entry hash does not match its contents", expected=recomputed, actual=entry.hash
        )
    return None
