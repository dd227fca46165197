"""Anchoring the ledger: taking signed checkpoints, and verifying the ledger against them.

What each check catches (RELIABILITY.md, "Threat model"):

* the chain (``lineage.ledger.verify_chain``): an entry altered, deleted, inserted
  or reordered by someone who did not re-hash what follows;
* the recorded checkpoints (entries of kind ``ledger.checkpoint``): every one
  must give the root the ledger's first ``size`` entries give today, and, with
  the log's public key, carry a valid signature: a re-hashed chain that keeps
  them is caught;
* checkpoints kept outside the store (``audit verify --checkpoint FILE``): the
  ledger's first ``size`` entries must still give the signed root. Someone with
  the database but not the log key cannot make a rewritten, truncated or
  renumbered ledger match one, whatever they re-hash or delete; the first entry
  that differs is named when the stored tree still matches the checkpoint;
* the stored tree (tiles) must match the tree recomputed from the ledger, since
  inclusion and consistency proofs are served from it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import Field

from lineage import merkle
from lineage.checkpoint import Checkpoint, CheckpointError, LogKey, Verifier, read_checkpoint, sign_checkpoint
from lineage.clock import utc_text
from lineage.errors import LedgerError
from lineage.kinds import EntryKind, Malformed, Payload, Record
from lineage.ledger import Break, Verification
from lineage.store.base import Store

Progress = Callable[[int], None] | None


class CheckpointPayload(Payload):
    """A signed checkpoint of the ledger's first ``size`` entries (``note`` is the C2SP signed note)."""

    origin: str
    size: int = Field(ge=0)
    root: str = Field(pattern=r"^[0-9a-f]{64}$")  # lower-case hex, as written
    note: str
    key: str  # the log's public key (verifier key text) that signed it
    at: str


CHECKPOINT_KIND = EntryKind(
    "ledger.checkpoint",
    CheckpointPayload,
    "system",
    description="a signed checkpoint of the ledger's Merkle tree",
)


@dataclass(frozen=True)
class Taken:
    checkpoint: Checkpoint
    note: str
    seq: int  # the entry that records it


def take(store: Store, key: LogKey, actor: str) -> Taken:
    """Sign the tree over every entry recorded so far, and record the checkpoint in the ledger."""
    size = store.sync_tree()
    checkpoint = Checkpoint(key.name, size, _ledger_root(store, key.verifier(), size))
    note = sign_checkpoint(checkpoint, key)
    payload = {
        "origin": checkpoint.origin,
        "size": size,
        "root": checkpoint.root.hex(),
        "note": note,
        "key": key.verifier().text(),
        "at": utc_text(),
    }
    ack = store.append(CHECKPOINT_KIND.pending(payload, actor))
    return Taken(checkpoint, note, ack.seq)


def _ledger_root(store: Store, verifier: Verifier, size: int) -> bytes:
    """The root the ledger's first ``size`` entries give, without trusting the stored tree: from the newest
    checkpoint this key signed (its root checked against the stored tree's edge at that size), adding the
    entries recorded since; from the whole ledger if there is none. The stored tree must agree, since
    proofs are served from it: a tree that does not is never signed."""
    base, tree = _signed_base(store, verifier, size), merkle.Compact()
    if base is not None:
        try:
            tree = merkle.Compact.resume(base.size, store.read_tiles)
        except KeyError:
            tree = merkle.Compact()
        if tree.root() != base.root:
            raise LedgerError(
                f"the stored Merkle tree no longer gives the root of the checkpoint of {base.size} entries this "
                "key signed: the ledger or its tree was rewritten; run 'auditgraph audit verify --checkpoint'"
            )
    for entry_hash in _hashes_after(store, tree.size, size):
        tree.add(merkle.entry_leaf(entry_hash))
    try:
        stored = store.tree_root(size)
    except KeyError:
        stored = None
    if tree.size != size or stored != tree.root():
        raise LedgerError(
            f"the stored Merkle tree over {size} entries does not give the root the ledger gives; not signing it: "
            "run 'auditgraph audit verify'"
        )
    return tree.root()


def _signed_base(store: Store, verifier: Verifier, size: int) -> Checkpoint | None:
    record = latest(store)
    if record is None or record.value.size > size:
        return None
    try:
        base = read_checkpoint(record.value.note, verifier)
    except CheckpointError:
        return None  # not this key's: start from the ledger itself
    return base if base.size <= size else None


def _hashes_after(store: Store, after: int, upto: int):
    for entry in store.entries(after_seq=after, limit=upto - after):
        yield entry.hash


class Checkpointer:
    """Takes a checkpoint once the ledger has grown by ``every`` entries since the last one
    (``serve --checkpoint-every``, ``ingest --checkpoint-every``). Thread-safe; one per process."""

    def __init__(self, key: LogKey, every: int, actor: str, store: Store):
        if every < 1:
            raise CheckpointError("--checkpoint-every must be at least 1")
        self.key, self.every, self.actor = key, every, actor
        self._lock = threading.Lock()
        last = latest(store)
        self.last = last.seq if last else 0  # the entry that recorded the newest checkpoint

    def after_write(self, store: Store, force: bool = False) -> Taken | None:
        """Checkpoint if due (or, with ``force``, if anything was written since the last one)."""
        with self._lock:
            grown = store.head().seq - self.last
            if grown < (1 if force else self.every):
                return None
            taken = take(store, self.key, self.actor)
            self.last = taken.seq
            return taken


_latest: dict[str, tuple[int, Record[CheckpointPayload] | None]] = {}  # by store URL: (entries read, newest)
_latest_lock = threading.Lock()


def latest(store: Store) -> Record[CheckpointPayload] | None:
    """The newest recorded checkpoint that validates (what ``serve`` publishes).

    The ledger only grows, so each call reads just the checkpoint entries recorded since the last
    call in this process (a server checkpointing after every write would otherwise re-read them all).
    """
    with _latest_lock:
        read, found = _latest.get(store.url, (0, None))
    if read and not _still_there(store, read, found):  # a store wiped and refilled (tests, a fresh migration)
        read, found = 0, None
    for entry in store.entries(kind=CHECKPOINT_KIND.name, after_seq=read, limit=None):
        record = CHECKPOINT_KIND.read(entry)
        read = entry.seq
        if isinstance(record, Record):
            found = record
    with _latest_lock:
        if read >= _latest.get(store.url, (0, None))[0]:
            _latest[store.url] = (read, found)
    return found


def _still_there(store: Store, read: int, found: Record[CheckpointPayload] | None) -> bool:
    if store.head().seq < read:
        return False
    if found is None:
        return True
    entry = next(store.entries(after_seq=found.seq - 1, limit=1), None)
    return entry is not None and entry.seq == found.seq and CHECKPOINT_KIND.read(entry) == found


@dataclass
class Anchored:
    """``audit verify``'s answer: the chain's verification, plus what the tree and checkpoints showed."""

    chain: Verification
    first_break: Break | None = None
    checked: list[str] = field(default_factory=list)
    tree_size: int = 0

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.first_break is None


def verify(
    store: Store,
    kept: Sequence[tuple[str, Checkpoint]] = (),
    verifier: Verifier | None = None,
    progress: Progress = None,
) -> Anchored:
    """Verify the chain, the tree and every checkpoint, recorded in the ledger or ``kept`` elsewhere
    ((where, checkpoint) pairs whose signature the caller verified); the first problem is named."""
    recorded = list(CHECKPOINT_KIND.records(store))
    sizes = {c.size for _, c in kept} | {r.value.size for r in recorded if isinstance(r, Record)}
    leaves = bytearray()  # 32 bytes an entry: 32 MB at a million
    chain = store.verify(progress=progress, capture=sizes, leaves=leaves)
    result = Anchored(chain, tree_size=chain.entries)
    if not chain.ok:
        return result
    problems = list(_recorded(store, recorded, chain, leaves, verifier, result.checked))
    problems += _kept(store, kept, chain, leaves, result.checked)
    problems += _stored_tree(store, chain, leaves, result.checked)
    if problems:
        result.first_break = min(problems, key=lambda b: b.seq)
    return result


def _recorded(
    store: Store,
    recorded: Iterable,
    chain: Verification,
    leaves: bytearray,
    verifier: Verifier | None,
    checked: list[str],
):
    count = 0
    for r in recorded:
        if r.seq > chain.entries:
            continue  # recorded after the chain was read
        if isinstance(r, Malformed):
            yield Break(seq=r.seq, reason=f"checkpoint entry does not validate: {r.reason}")
            continue
        value = r.value
        if verifier is not None:
            try:
                note = read_checkpoint(value.note, verifier)
            except CheckpointError as e:
                yield Break(seq=r.seq, reason=f"recorded checkpoint: {e}")
                continue
            if (note.size, note.root.hex()) != (value.size, value.root):
                yield Break(seq=r.seq, reason="recorded checkpoint: its fields differ from the signed note")
                continue
        if value.size >= r.seq:
            yield Break(seq=r.seq, reason=f"checkpoint of {value.size} entries recorded as entry {r.seq}")
            continue
        now = chain.roots.get(value.size)
        if now != value.root:
            claimed = Checkpoint(value.origin, value.size, bytes.fromhex(value.root))
            yield _locate(store, leaves, f"the checkpoint recorded as entry {r.seq}", claimed, 0, now)
            continue
        count += 1
    if count:
        how = " and signed by the log key" if verifier else " (signatures not checked: no --log-key)"
        checked.append(f"{count} recorded checkpoints match the ledger{how}")


def _kept(
    store: Store, kept: Sequence[tuple[str, Checkpoint]], chain: Verification, leaves: bytearray, checked: list[str]
) -> list[Break]:
    problems = []
    matching = sorted(c.size for _, c in kept if chain.roots.get(c.size) == c.root.hex())
    for where, c in kept:
        now = chain.roots.get(c.size)
        if c.size > chain.entries:
            problems.append(
                Break(
                    seq=chain.entries + 1,
                    reason=f"{where} covers {c.size} entries; the ledger holds only {chain.entries}: "
                    f"entries {chain.entries + 1}..{c.size} were removed",
                )
            )
        elif now != c.root.hex():
            below = max((s for s in matching if s < c.size), default=0)
            problems.append(_locate(store, leaves, where, c, below, now))
        else:
            checked.append(f"{where}: the ledger's first {c.size} entries match its signed root")
    return problems


def _locate(store: Store, leaves: bytearray, where: str, c: Checkpoint, below: int, now: str | None) -> Break:
    """The first entry that no longer matches checkpoint ``c``: exact when the stored tree still gives the
    checkpoint's root (its leaves are then the ones that were signed), else bounded by the largest checkpoint
    that still matches (``below``)."""
    try:
        stored = merkle.stored_root(c.size, store.read_tiles) if store.tree_size() >= c.size else None
    except KeyError:  # a tile is missing
        stored = None
    if stored == c.root:
        first = _first_difference(_stored_leaves(store, c.size), leaves, c.size)
        if first is not None:
            seq, then, now_leaf = first
            return Break(
                seq=seq,
                reason=f"not the entry {where} signed (its tree root {c.root.hex()[:16]}...): "
                "altered, deleted, inserted or reordered, and the chain re-hashed",
                expected=then.hex(),
                actual=now_leaf.hex(),
            )
    return Break(
        seq=below + 1,
        reason=f"the ledger's first {c.size} entries no longer give the root {where} signed; the first change is "
        f"between entries {below + 1} and {c.size} (the stored tree was rewritten too, so it cannot be named)",
        expected=c.root.hex(),
        actual=now,
    )


def _leaf(leaves: bytearray, index: int) -> bytes:
    return bytes(leaves[index * merkle.HASH_SIZE : (index + 1) * merkle.HASH_SIZE])


def _first_difference(stored, leaves: bytearray, size: int) -> tuple[int, bytes, bytes] | None:
    """(seq, stored leaf, ledger leaf) of the first entry among the first ``size`` whose leaves differ."""
    for index, then in enumerate(stored):
        if index >= size:
            break
        now = _leaf(leaves, index)
        if then != now:
            return index + 1, then, now
    return None


def _stored_leaves(store: Store, size: int):
    for index in range(0, size, merkle.TILE_WIDTH):
        key = (0, index // merkle.TILE_WIDTH)
        data = store.read_tiles([key]).get(key, b"")
        want = min(merkle.TILE_WIDTH, size - index)
        for i in range(want):
            slot = data[i * merkle.HASH_SIZE : (i + 1) * merkle.HASH_SIZE]
            yield slot if len(slot) == merkle.HASH_SIZE else b""  # a missing or short tile differs


def _stored_tree(store: Store, chain: Verification, leaves: bytearray, checked: list[str]) -> list[Break]:
    """Every stored tile must be what the ledger's leaves give (proofs are served from them): the first
    leaf that differs is named; a tile above that disagrees with the leaves below it, or is missing, too."""
    held, entries = store.tree_size(), chain.entries
    if held > entries and store.head().seq >= held:  # written while the chain was read
        held = entries
    size = min(held, entries)
    if size == 0:
        if entries:
            checked.append(f"no stored Merkle tree yet: it lags the ledger by {entries} (the next write catches up)")
        return []
    ledger = merkle.grow(0, {}, (_leaf(leaves, i) for i in range(size)))
    stored = store.read_tiles(sorted(ledger))
    for (level, index), want in sorted(ledger.items()):
        got = stored.get((level, index), b"")[: len(want)]
        if got == want:
            continue
        slot = (
            next(
                (
                    i
                    for i in range(0, len(want), merkle.HASH_SIZE)
                    if got[i : i + merkle.HASH_SIZE] != want[i : i + merkle.HASH_SIZE]
                ),
                0,
            )
            // merkle.HASH_SIZE
        )
        seq = ((index * merkle.TILE_WIDTH + slot) << (merkle.TILE_HEIGHT * level)) + 1
        if level == 0:
            what = (
                "holds another leaf for this entry" if got[slot * 32 : slot * 32 + 32] else "has no leaf for this entry"
            )
            return [
                Break(
                    seq=seq,
                    reason=f"the stored Merkle tree {what}: the entry was rewritten and re-hashed after it was "
                    "recorded, or the tree was edited",
                    expected=got[slot * 32 : slot * 32 + 32].hex() or None,
                    actual=want[slot * 32 : slot * 32 + 32].hex(),
                )
            ]
        return [
            Break(
                seq=seq,
                reason=f"the stored Merkle tree's tile {level}/{index} (over entries from {seq} on) is missing or does "
                "not match the leaves below it: the tree was edited",
            )
        ]
    if held > entries:
        return [
            Break(
                seq=entries + 1,
                reason=f"the stored Merkle tree holds {held} entries, the ledger {entries}: entries "
                f"{entries + 1}..{held} were removed",
            )
        ]
    lag = "" if size == entries else f" (it lags the ledger by {entries - size}: the next write catches up)"
    checked.append(f"the stored Merkle tree matches the ledger over {size} entries{lag}")
    return []
