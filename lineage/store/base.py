"""The storage interface: what a backend stores and reads back, and nothing more.

A backend (``lineage/store/sqlite.py``, ``lineage/store/neo4j.py``, or a third
party's, registered under the ``auditgraph.stores`` entry point group)
implements the abstract methods of ``Store`` and of ``WriteTx``: raw reads of
the ledger and of the projected graph, one write transaction, and clearing the
projection. It may override ``walk`` with a faster equivalent. What the answers
mean to a user (resolving ids, traversals, impact, paths, history, column
lineage) is the query service's (``lineage.graph.Graph``), built on these
methods only; what an entry's payload means is the projection's
(``lineage.projection``): no module here reads an OpenLineage payload.

Write path (the same on every backend): inside one write transaction, for each
pending entry, (1) canonicalise the payload, (2) if (kind, payload digest) is
already recorded acknowledge it as a duplicate, else (3) compute the graph
facts, (4) seal the entry onto the chain head and (5) insert it and its facts
atomically. The transaction commits durably before any ``Ack`` is returned.
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Literal, overload

from lineage import merkle
from lineage.errors import EntryError, EventError, LedgerError, LineageError, StoreError
from lineage.kinds import check as check_kind
from lineage.ledger import Ack, EntryCheck, Head, LedgerEntry, Pending, Verification, now, seal, verify_chain
from lineage.projection import ColumnFact, Facts, lookups, projector_for
from lineage.query import ColumnEdge, Direction, Edge, EdgeRef, NodeRow, bfs, edge_refs
from lineage.store.batch import Batch
from lineage.store.urls import redact

Progress = Callable[[int], None] | None
_CATCH_UP = 50_000  # ledger entries hashed into the tree per step when a store's tree lags its ledger


class WriteTx(ABC):
    """One open write transaction: what the write path needs of a backend."""

    @abstractmethod
    def head(self) -> Head: ...

    @abstractmethod
    def find_many(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Head]:
        """The (seq, hash) of each recorded entry among these (kind, payload digest) keys."""

    @abstractmethod
    def write(self, batch: Batch) -> None:
        """Insert the batch's ledger entries and upsert its merged facts, in this transaction."""

    @abstractmethod
    def latest_version_row(self, entity: str, as_of: str) -> tuple[str, str, str] | None:
        """(first_seen, id, version) of the newest stored version of ``entity`` at or before ``as_of``."""

    @abstractmethod
    def exists(self, node_id: str) -> bool: ...

    @abstractmethod
    def first_seen(self, node_id: str) -> str | None:
        """The stored first_seen of a node, or None if it is not stored."""

    @abstractmethod
    def versions_of(self, entities: Sequence[str]) -> list[tuple[str, str, str, str]]:
        """(entity, id, version, first_seen) of every stored version of these entities."""

    @abstractmethod
    def existing(self, node_ids: Sequence[str]) -> set[str]:
        """Which of these node ids are stored."""

    @abstractmethod
    def edges_touching(self, node_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        """(src, type, dst) of every stored edge into or out of these nodes."""

    @abstractmethod
    def facet_orders(self, node_id: str) -> list[str]:
        """The merge order of each stored facet of a node."""

    @abstractmethod
    def typed_edges(self, node_ids: Sequence[str], type_: str, direction: str) -> list[tuple[str, str, str]]:
        """(src, dst, time) of every stored edge of ``type_`` into (upstream) or out of (downstream) these nodes."""

    @abstractmethod
    def facets_like(self, node_ids: Sequence[str], prefix: str) -> list[tuple[str, str, Any, str]]:
        """(node, name, value, order) of every stored facet of these nodes whose name starts with ``prefix``."""

    @abstractmethod
    def run_events(self, subject: str) -> list[tuple[str, str]]:
        """(payload digest, payload) of every recorded OpenLineage event about ``subject``, in ledger order."""

    @abstractmethod
    def alias_edges(self, entities: Sequence[str]) -> list[tuple[str, str]]:
        """(alias, declaring dataset) of every stored ALIAS_OF edge out of these entities."""

    @abstractmethod
    def stored_columns(self, keys: list[tuple[str, str, str, str]]) -> dict[tuple[str, str, str, str], ColumnFact]:
        """The stored column edge of each of these (src, src_field, dst, dst_field) keys, if any."""

    # the Merkle tree over the ledger (lineage.merkle): tiles are opaque bytes to a backend

    @abstractmethod
    def tree_size(self) -> int:
        """How many ledger entries the stored tree holds (0 for a store written before the tree existed)."""

    @abstractmethod
    def read_tiles(self, keys: Sequence[merkle.TileKey]) -> dict[merkle.TileKey, bytes]:
        """The stored tiles among these (level, index) keys."""

    @abstractmethod
    def write_tiles(self, tiles: dict[merkle.TileKey, bytes], size: int) -> None:
        """Upsert these tiles and record that the tree now holds ``size`` entries."""

    @abstractmethod
    def entry_hashes(self, after_seq: int, limit: int) -> list[str]:
        """The ``hash`` of up to ``limit`` ledger entries after ``after_seq``, in sequence order."""


class Store(ABC):
    """A lineage store. Open one with ``lineage.store.open_store(url)``; query it with ``lineage.graph.Graph``.

    A backend implements the abstract methods below. Reads take and return plain
    ids and rows; an id the store does not hold is simply left out of an answer.
    Driver errors are raised as ``StoreError``.
    """

    scheme: ClassVar[str]

    def __init__(self, url: str):
        self.url = url  # holds any password: show redact(self.url), never this

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact(self.url)}>"

    # --- what a backend implements: the ledger ------------------------------

    @abstractmethod
    def begin_write(self) -> contextlib.AbstractContextManager[WriteTx]:
        """Open one write transaction: it commits durably when the block ends, or rolls back on an error.
        Concurrent writers (threads or processes) are serialised, so the chain never forks."""

    @abstractmethod
    def head(self) -> Head:
        """The newest ledger entry's (seq, hash); (0, GENESIS) for an empty ledger."""

    @abstractmethod
    def tree_size(self) -> int:
        """How many ledger entries the stored Merkle tree holds (``WriteTx.tree_size``, committed)."""

    @abstractmethod
    def read_tiles(self, keys: Sequence[merkle.TileKey]) -> dict[merkle.TileKey, bytes]:
        """The committed tiles among these (level, index) keys."""

    @abstractmethod
    def iter_entries(
        self,
        kind: str | None,
        subject: str | None,
        since: str | None,
        until: str | None,
        after_seq: int,
        limit: int | None,
    ) -> Iterator[LedgerEntry]:
        """Ledger entries with seq > ``after_seq`` in seq order, at most ``limit``; each filter None: any.
        ``since``/``until`` bound ``recorded_at`` (inclusive)."""

    # --- what a backend implements: the projected graph ---------------------

    @abstractmethod
    def nodes(self, ids: Sequence[str]) -> dict[str, NodeRow]:
        """The stored rows of these exact ids (unknown ids are left out)."""

    @abstractmethod
    def facets(self, node_id: str) -> dict[str, Any]:
        """Every stored facet of a node, by name ({} for an unknown node)."""

    @abstractmethod
    def neighbors(
        self, ids: Sequence[str], direction: Direction, types: Sequence[str], as_of: str | None = None
    ) -> list[Edge]:
        """Edges of the given types that end at ``ids`` (upstream) or start at them (downstream),
        with ``time`` at or before ``as_of`` if given. With ``a --WROTE--> b``: upstream of [b] is that edge."""

    @abstractmethod
    def column_edges(self, keys: Sequence[tuple[str, str | None]], direction: Direction) -> list[ColumnEdge]:
        """Column edges into (upstream) or out of (downstream) each (dataset, field); field None: any.

        Upstream of a field includes the edges into its whole dataset (dst_field WHOLE_DATASET).
        """

    @abstractmethod
    def column_fields(self, entity: str) -> set[str]:
        """The fields of a dataset that column edges name (as source or as target)."""

    @abstractmethod
    def search_nodes(self, text: str, kinds: Sequence[str], limit: int) -> list[NodeRow]:
        """Up to ``limit`` nodes whose id contains ``text`` (case-insensitive), of these kinds (id
        prefixes; empty: any), shortest id first, then by id. The caller has checked the arguments."""

    @abstractmethod
    def facet_values(self, ids: Sequence[str], name: str) -> dict[str, Any]:
        """The value of facet ``name`` of each of these nodes that has it."""

    @abstractmethod
    def projection(self, part: str, ids: Sequence[str] | None = None) -> Iterator[tuple]:
        """Every stored row of one part of the projected graph (``query.PROJECTION``: nodes, facets, edges,
        column_edges), as every read sees it, sorted by its key in code point order; a row stored twice
        comes twice. ``ids``: only rows about these nodes (a node, its facets, the edges and column edges
        with either end among them). JSON values are parsed (``query.Unreadable`` if they do not parse).

        With the ledger, this is what ``lineage.graphcheck`` compares against a replay of the ledger."""

    @abstractmethod
    def backend_stats(self) -> dict[str, Any]:
        """What the backend holds: ``backend`` (its name), ``nodes`` by kind, ``edges`` by type,
        ``column_edges``, ``entries_by_kind``, and anything else it can tell (path, bytes)."""

    @abstractmethod
    def clear_projection(self) -> None:
        """Delete the projected graph (nodes, facets, edges, column edges); the ledger stays."""

    @abstractmethod
    def close(self) -> None: ...

    def walk(
        self,
        starts: list[str],
        direction: Direction,
        types: Sequence[str],
        as_of: str | None,
        depth: int | None,
        max_nodes: int,
    ) -> tuple[dict[str, int], list[Edge], str | None]:
        """Breadth-first walk from ``starts`` over edges of ``types``: (distance by node, edges walked,
        truncation reason or None). With ``a --READ_BY--> r --WROTE--> b``, upstream of b is r at 1,
        then a at 2; cycles end (a visited set); depth 0 returns the starts alone.

        One ``neighbors`` call per level (``query.bfs``). A backend may override it with a faster
        equivalent that returns exactly the same (the contract suite compares the two).
        """
        step = lambda ids: self.neighbors(ids, direction, types, as_of)  # noqa: E731
        distance, edges, reason, _ = bfs(starts, step, direction, depth, max_nodes)
        return distance, edges, reason

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- writes ------------------------------------------------------------

    def append(self, pending: Pending) -> Ack:
        """Record one entry durably; raise the error if it was rejected."""
        result = self.append_many([pending])[0]
        if isinstance(result, LineageError):
            raise result
        return result

    @overload
    def append_many(self, items: Sequence[Pending], atomic: Literal[True]) -> list[Ack]: ...
    @overload
    def append_many(self, items: Sequence[Pending], atomic: bool = False) -> list[Ack | LineageError]: ...
    def append_many(self, items: Sequence[Pending], atomic: bool = False) -> list[Ack] | list[Ack | LineageError]:
        """Record a batch. Each item is all-or-nothing; a rejected item is returned as its error.

        With ``atomic``, the first rejected item is raised and nothing in the
        batch is recorded. Nothing is acknowledged until the whole batch has
        committed durably.
        """
        results: list[Ack | LineageError | None] = [None] * len(items)
        prepared = []
        for i, pending in enumerate(items):
            try:
                check_kind(pending)  # a declared kind's payload must match its model
                payload, payload_digest = pending.canonical()
            except EntryError as e:
                results[i] = e
                if atomic:
                    raise
                continue
            except (TypeError, ValueError) as e:
                error = results[i] = EventError(f"payload is not plain JSON: {e}")
                if atomic:
                    raise error from None
                continue
            prepared.append((i, pending, payload, payload_digest))
        try:
            with self.begin_write() as tx:
                head, recorded_at = tx.head(), now()
                known = tx.find_many(list({(p.kind, d) for _, p, _, d in prepared}))
                batch = Batch(tx)
                batch.prefetch(*lookups((p.kind, p.payload) for _, p, _, _ in prepared))
                for i, pending, payload, payload_digest in prepared:
                    key = (pending.kind, payload_digest)
                    if key in known:
                        results[i] = Ack(known[key].seq, known[key].hash, True, pending.subject)
                        continue
                    try:
                        facts = _project(
                            pending.kind, pending.payload, batch, {"parsed": pending.hint, "digest": payload_digest}
                        )
                    except LineageError as e:
                        if atomic:
                            raise
                        results[i] = e
                        continue
                    entry = seal(pending, payload, payload_digest, head, recorded_at)
                    batch.add(entry, facts)
                    head = known[key] = Head(entry.seq, entry.hash)
                    results[i] = Ack(entry.seq, entry.hash, False, pending.subject)
                if len(batch):
                    extend_tree(tx, batch.entries[0].seq - 1, [e.hash for e in batch.entries])
                    tx.write(batch)
        except LineageError:
            raise
        except Exception as e:  # a driver or disk error: nothing in the batch was recorded
            raise StoreError(f"{self.scheme} store: write failed, nothing recorded: {e}") from e
        return results  # type: ignore[return-value]

    def rebuild(self, progress: Progress = None, batch: int = 2000) -> int:
        """Drop the graph and replay the whole ledger into it; return the entries replayed.

        Replays in pages of ``batch`` entries, one transaction each; an
        interrupted rebuild leaves a partial graph, and running it again fixes it.
        """
        self.clear_projection()
        count = 0
        while chunk := list(self.iter_entries(None, None, None, None, count, batch)):
            payloads = [(entry.kind, json.loads(entry.payload)) for entry in chunk]
            with self.begin_write() as tx:
                pending = Batch(tx)
                pending.prefetch(*lookups(payloads))
                for kind, payload in payloads:
                    pending.add(None, _project(kind, payload, pending))
                tx.write(pending)
            count = chunk[-1].seq
            if progress:
                progress(len(chunk))
        return count

    def copy_ledger_from(
        self, source: Store, progress: Progress = None, batch: int = 1000, up_to: int | None = None
    ) -> Head:
        """Replay ``source``'s ledger into this store, entry for entry (same seq, times and hashes).

        This store must be empty or hold a prefix of the source's ledger (an
        interrupted copy resumes). Each entry must chain onto the one before, so
        a broken source stops the copy at the break. Returns the new head, which
        equals the source's, or entry ``up_to``'s: a prefix of a ledger is a ledger,
        and its graph is what was known when that entry was recorded.
        """
        head = self.head()
        if head.seq:
            mine = next(source.entries(after_seq=head.seq - 1, limit=1), None)
            if mine is None or mine.hash != head.hash:
                raise LedgerError(
                    f"{redact(self.url)} holds a different ledger (entry {head.seq} differs); copy into an empty store"
                )
        while chunk := [e for e in source.entries(after_seq=head.seq, limit=batch) if up_to is None or e.seq <= up_to]:
            payloads = [json.loads(entry.payload) for entry in chunk]
            with self.begin_write() as tx:
                pending = Batch(tx)
                pending.prefetch(*lookups((e.kind, p) for e, p in zip(chunk, payloads)))
                for entry, payload in zip(chunk, payloads):
                    if entry.seq != head.seq + 1 or entry.prev_hash != head.hash:
                        raise LedgerError(
                            f"source ledger is broken at entry {head.seq + 1}; run 'auditgraph audit verify' on it"
                        )
                    pending.add(entry, _project(entry.kind, payload, pending))
                    head = Head(entry.seq, entry.hash)
                extend_tree(tx, chunk[0].seq - 1, [e.hash for e in chunk])
                tx.write(pending)
            if progress:
                progress(len(chunk))
        return head

    # --- ledger reads ------------------------------------------------------

    def entries(
        self,
        *,
        kind: str | None = None,
        subject: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> Iterator[LedgerEntry]:
        return self.iter_entries(kind, subject, since, until, after_seq, limit)

    def verify(
        self,
        checks: Iterable[EntryCheck] | None = None,
        progress: Progress = None,
        capture: Iterable[int] = (),
        leaves: bytearray | None = None,
    ) -> Verification:
        """Recompute the whole chain and its Merkle tree and run the plugins' entry checks (signatures);
        name the first break. ``capture``: tree sizes whose recomputed root to return (``Verification.roots``).
        Checkpoints and the stored tree are compared by ``lineage.anchors.verify``."""
        from lineage.plugins import entry_checks

        checks = entry_checks(self) if checks is None else list(checks)  # prepared against this store
        return verify_chain(self.iter_entries(None, None, None, None, 0, None), checks, progress, capture, leaves)

    # --- the stored Merkle tree ---------------------------------------------

    def sync_tree(self) -> int:
        """Bring the stored tree up to the ledger's head (a store written before the tree existed, or by an
        older auditgraph, catches up here; every write does it too). Returns the tree's size."""
        with self.begin_write() as tx:
            head = tx.head()
            extend_tree(tx, head.seq, [])
        return head.seq

    def tree_root(self, size: int) -> bytes:
        """The stored tree's root over the first ``size`` entries (``size`` <= ``tree_size()``)."""
        self._check_tree(size)
        return merkle.stored_root(size, self.read_tiles)

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        """The RFC 9162 inclusion proof of entry ``seq`` (leaf seq - 1) in the tree of ``size`` entries."""
        self._check_tree(size)
        if not 1 <= seq <= size:
            raise LedgerError(f"entry {seq} is not in a tree of {size} entries")
        return merkle.inclusion_proof(seq - 1, size, self.read_tiles)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """The RFC 9162 consistency proof from the tree of ``old`` entries to the tree of ``new``."""
        self._check_tree(new)
        if not 0 <= old <= new:
            raise LedgerError(f"no consistency proof from {old} entries to {new}")
        return merkle.consistency_proof(old, new, self.read_tiles) if old else []

    def _check_tree(self, size: int) -> None:
        held = self.tree_size()
        if size > held:
            raise LedgerError(
                f"the stored Merkle tree holds {held} entries, not {size}; "
                "'auditgraph audit checkpoint' (or any write) brings it up to the ledger"
            )

    # --- graph reads everyone needs ----------------------------------------

    def edges(
        self, ids: Sequence[str], direction: Direction, types: Sequence[str], as_of: str | None = None
    ) -> list[EdgeRef]:
        """Edges of ``types`` into ``ids`` (upstream) or out of them (downstream), sorted."""
        return edge_refs(self.neighbors(list(ids), direction, list(types), as_of)) if ids else []

    def stats(self) -> dict[str, Any]:
        """What the store holds: its URL (redacted), the ledger's size and head, and ``backend_stats``."""
        head = self.head()
        return {"url": redact(self.url), "ledger": {"entries": head.seq, "head": head.hash}, **self.backend_stats()}


def extend_tree(tx: WriteTx, seq_before: int, hashes: list[str]) -> None:
    """Add entries ``seq_before + 1 ...`` (their hashes) to the stored tree, in the same transaction as
    the entries themselves; first hash in any entries the tree lags behind (``Store.sync_tree``)."""
    size = tx.tree_size()
    if size > seq_before:
        raise LedgerError(
            f"the Merkle tree holds {size} entries but the ledger {seq_before}: "
            "entries were removed from the ledger; run 'auditgraph audit verify'"
        )
    while size < seq_before:
        lagging = tx.entry_hashes(size, min(_CATCH_UP, seq_before - size))
        if not lagging:
            raise LedgerError(f"ledger entry {size + 1} is missing; run 'auditgraph audit verify'")
        size = _add_leaves(tx, size, lagging)
    _add_leaves(tx, size, hashes)


def _add_leaves(tx: WriteTx, size: int, hashes: list[str]) -> int:
    if not hashes:
        return size
    edge = tx.read_tiles(merkle.right_edge(size))
    tx.write_tiles(merkle.grow(size, edge, map(merkle.entry_leaf, hashes)), size + len(hashes))
    return size + len(hashes)


def _project(kind: str, payload: Any, ctx: Batch, hint: dict | None = None) -> Facts:
    project = projector_for(kind)
    return project(payload, ctx, hint) if project else Facts()
