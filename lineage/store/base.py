"""The store interface: a narrow abstract core, a wide base class.

A backend implements the private hooks (``_begin_write`` and the ``_``-named
reads); the public methods live here once: they validate input, apply limits,
run the shared traversal code and turn driver errors into ``StoreError``.

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
from itertools import islice
from typing import Any, Callable, ClassVar, Iterable, Iterator, Sequence

from lineage.errors import EntryError, EventError, IdError, LedgerError, LineageError, NotFoundError, StoreError
from lineage.ids import (
    MAX_READINGS, NodeId, NodeKind, alternative_readings, check_length, dataset_id, is_bare_uri, kind_of, model_id,
    parse_id, shown,
)
from lineage.kinds import check as check_kind
from lineage.ledger import Ack, EntryCheck, Head, LedgerEntry, Pending, Verification, now, seal, verify_chain
from lineage.column_lineage import is_direct, schema_fields
from lineage.projection import FLOW_EDGES, OPENLINEAGE_KIND, ColumnFact, Facts, projector_for
from lineage.store.batch import Batch, follow_aliases
from lineage.store.binding import is_failed
from lineage.store.urls import redact
from lineage.query import (
    DEFAULT_MAX_NODES, ColumnEdge, ColumnHop, ColumnLineage, Direction, Edge, EdgeRef, NodeRow,
    PathResult, Traversal, bfs, bfs_over, edge_key, edge_refs, job_distances,
)
from lineage.query import CHECK_FACET, JOB_TYPE_FACET, is_check, job_type_matches

Progress = Callable[[int], None] | None


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


class Store(ABC):
    """A lineage store. Open one with ``lineage.store.open_store(url)``."""

    scheme: ClassVar[str]

    def __init__(self, url: str):
        self.url = url  # holds any password: show redact(self.url), never this

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact(self.url)}>"

    # --- hooks -------------------------------------------------------------

    @abstractmethod
    def _begin_write(self) -> contextlib.AbstractContextManager[WriteTx]: ...

    @abstractmethod
    def _head(self) -> Head: ...

    @abstractmethod
    def _iter_entries(self, kind: str | None, subject: str | None, since: str | None,
                      until: str | None, after_seq: int, limit: int | None) -> Iterator[LedgerEntry]: ...

    @abstractmethod
    def _nodes(self, ids: Sequence[str]) -> dict[str, NodeRow]: ...

    @abstractmethod
    def _facets(self, node_id: str) -> dict[str, Any]: ...

    @abstractmethod
    def _neighbors(self, ids: Sequence[str], direction: Direction, types: Sequence[str],
                   as_of: str | None) -> list[Edge]:
        """Edges of the given types that end at ``ids`` (upstream) or start at them (downstream)."""

    @abstractmethod
    def _column_edges(self, keys: Sequence[tuple[str, str | None]], direction: Direction) -> list[ColumnEdge]:
        """Column edges into (upstream) or out of (downstream) each (dataset, field); field None: any.

        Upstream of a field includes the edges into its whole dataset (dst_field WHOLE_DATASET).
        """

    @abstractmethod
    def _column_fields(self, entity: str) -> set[str]:
        """The fields of a dataset that column edges name (as source or as target)."""

    @abstractmethod
    def _search(self, text: str, kinds: Sequence[str], limit: int) -> list[NodeRow]: ...

    @abstractmethod
    def _facet_values(self, ids: Sequence[str], name: str) -> dict[str, Any]:
        """The value of facet ``name`` of each of these nodes that has it."""

    @abstractmethod
    def _stats(self) -> dict[str, Any]: ...

    @abstractmethod
    def _clear_projection(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Store":
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

    def append_many(self, items: Sequence[Pending], atomic: bool = False) -> list[Ack | LineageError]:
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
                results[i] = EventError(f"payload is not plain JSON: {e}")
                if atomic:
                    raise results[i] from None
                continue
            prepared.append((i, pending, payload, payload_digest))
        try:
            with self._begin_write() as tx:
                head, recorded_at = tx.head(), now()
                known = tx.find_many(list({(p.kind, d) for _, p, _, d in prepared}))
                batch = Batch(tx)
                batch.prefetch(*_lookups((p.kind, p.payload) for _, p, _, _ in prepared))
                for i, pending, payload, payload_digest in prepared:
                    key = (pending.kind, payload_digest)
                    if key in known:
                        results[i] = Ack(known[key].seq, known[key].hash, True, pending.subject)
                        continue
                    try:
                        facts = _project(pending.kind, pending.payload, batch,
                                         {"parsed": pending.hint, "digest": payload_digest})
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
        self._clear_projection()
        count = 0
        while chunk := list(self._iter_entries(None, None, None, None, count, batch)):
            payloads = [(entry.kind, json.loads(entry.payload)) for entry in chunk]
            with self._begin_write() as tx:
                pending = Batch(tx)
                pending.prefetch(*_lookups(payloads))
                for kind, payload in payloads:
                    pending.add(None, _project(kind, payload, pending))
                tx.write(pending)
            count = chunk[-1].seq
            if progress:
                progress(len(chunk))
        return count

    def copy_ledger_from(self, source: "Store", progress: Progress = None, batch: int = 1000,
                         up_to: int | None = None) -> Head:
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
                raise LedgerError(f"{redact(self.url)} holds a different ledger (entry {head.seq} differs); "
                                  "copy into an empty store")
        while chunk := [e for e in source.entries(after_seq=head.seq, limit=batch) if up_to is None or e.seq <= up_to]:
            payloads = [json.loads(entry.payload) for entry in chunk]
            with self._begin_write() as tx:
                pending = Batch(tx)
                pending.prefetch(*_lookups((e.kind, p) for e, p in zip(chunk, payloads)))
                for entry, payload in zip(chunk, payloads):
                    if entry.seq != head.seq + 1 or entry.prev_hash != head.hash:
                        raise LedgerError(f"source ledger is broken at entry {head.seq + 1}; "
                                          "run 'auditgraph audit verify' on it")
                    pending.add(entry, _project(entry.kind, payload, pending))
                    head = Head(entry.seq, entry.hash)
                tx.write(pending)
            if progress:
                progress(len(chunk))
        return head

    # --- ledger reads ------------------------------------------------------

    def head(self) -> Head:
        return self._head()

    def entries(self, *, kind: str | None = None, subject: str | None = None, since: str | None = None,
                until: str | None = None, after_seq: int = 0, limit: int | None = None) -> Iterator[LedgerEntry]:
        return self._iter_entries(kind, subject, since, until, after_seq, limit)

    def verify(self, checks: Iterable[EntryCheck] | None = None, progress: Progress = None) -> Verification:
        """Recompute the whole chain and run the plugins' entry checks (signatures); name the first break."""
        from lineage.plugins import entry_checks

        checks = entry_checks() if checks is None else list(checks)
        return verify_chain(self._iter_entries(None, None, None, None, 0, None), checks, progress)

    # --- graph reads -------------------------------------------------------

    def resolve(self, text: str) -> NodeRow:
        """The node an id names, accepting unescaped forms when only one reading exists.

        The work is bounded whatever the text: an id over ids.MAX_ID_BYTES is
        refused first, and at most ids.MAX_READINGS other readings are looked up,
        in one query; an id with more readings than that must be written canonically.
        """
        if isinstance(text, str):
            check_length(text)
        bare = is_bare_uri(text)  # a pasted location (s3://bucket/key) reads as a dataset id first
        try:
            found = self._canonical_rows([parse_id(f"dataset:{text}" if bare else text)])
        except IdError:
            if not bare:
                raise
            found = {}
        if found:
            return next(iter(found.values()))
        readings = list(islice(alternative_readings(text), MAX_READINGS + 1))
        if len(readings) > MAX_READINGS:
            raise IdError(f"no node {shown(text)} in the store, and it has more than {MAX_READINGS} unescaped "
                          "readings to try; write it as printed (namespace '/' as %2F, '@' as %40)")
        rows = self._canonical_rows(readings) if readings else {}
        if len(rows) == 1:
            return next(iter(rows.values()))
        if len(rows) > 1:
            raise IdError(f"{shown(text)} is ambiguous; it could be any of: " + ", ".join(sorted(rows)))
        raise NotFoundError(f"no node {shown(text)} in the store (try 'auditgraph lineage search')")

    def _canonical_rows(self, ids: Sequence[NodeId]) -> dict[str, NodeRow]:
        """The stored rows these ids name, an alias (symlinks) or a version of one read as its
        canonical dataset (projection.py: Identities)."""
        entities = sorted({str(i.entity()) for i in ids if i.prefix == "dataset"})
        targets = self._alias_targets(entities) if entities else {}
        named = [str(i.model_copy(update={"namespace": c.namespace, "name": c.name}))
                 if (c := targets.get(str(i.entity()))) else str(i) for i in ids]
        return self._nodes(list(dict.fromkeys(named)))

    def _alias_targets(self, entities: Sequence[str]) -> dict[str, NodeId]:
        """The canonical dataset of each alias among ``entities``, following chains as the batch does
        (one query for all of them; a chain costs one more per hop)."""
        declared: dict[str, list[str]] = {}
        for e in self._neighbors(list(entities), "downstream", ("ALIAS_OF",), None):
            declared.setdefault(e.src, []).append(e.dst)
        def targets_of(current: str) -> list[str]:
            if current not in declared:
                declared[current] = [e.dst for e in self._neighbors([current], "downstream", ("ALIAS_OF",), None)]
            return declared[current]

        found = {entity: follow_aliases(entity, targets_of) for entity in list(declared)}
        return {entity: parse_id(canonical) for entity, canonical in found.items() if canonical}

    def nodes(self, ids: Sequence[str]) -> dict[str, NodeRow]:
        """The stored rows of these exact ids (unknown ids are left out)."""
        return self._nodes(list(ids))

    def facets(self, node_id: str) -> dict[str, Any]:
        return self._facets(node_id)

    def edges(self, ids: Sequence[str], direction: Direction, types: Sequence[str],
              as_of: str | None = None) -> list[EdgeRef]:
        """Edges of ``types`` into ``ids`` (upstream) or out of them (downstream)."""
        return edge_refs(self._neighbors(list(ids), direction, list(types), as_of)) if ids else []

    def node(self, text: str) -> dict[str, Any]:
        """A node with its facets and its edges in both directions."""
        row = self.resolve(text)
        types = FLOW_EDGES + ("VERSION_OF", "RUN_OF", "CHILD_OF", "DESCENDANT_OF", "ALIAS_OF")
        facets = self._facets(row.id)
        return {
            **row.model_dump(),
            "aliases": sorted(e.src for e in self._neighbors([row.id], "upstream", ("ALIAS_OF",), None)),
            "facets": facets,
            **({"fields": self._fields(row, facets)} if row.kind in _HAS_FIELDS else {}),
            "in": [e.model_dump() for e in edge_refs(self._neighbors([row.id], "upstream", types, None))],
            "out": [e.model_dump() for e in edge_refs(self._neighbors([row.id], "downstream", types, None))],
        }

    def traverse(self, text: str, direction: Direction, *, depth: int | None = None,
                 kinds: Sequence[str] = (), as_of: str | None = None,
                 max_nodes: int = DEFAULT_MAX_NODES, job_types: Sequence[str] = (),
                 include_failed: bool = False) -> Traversal:
        """Everything upstream or downstream of a node, breadth first and bounded.

        Downstream leaves out what a run that ended FAIL or ABORT wrote (and what only that reaches),
        unless ``include_failed``: the failed run itself, which did read the node, stays.

        A dataset or model starts from all its versions, a job from all its runs.
        ``kinds`` filters what is returned (dataset, model, job, run, code), not
        what is walked through; so does ``job_types`` (query.job_type_matches),
        for jobs and their runs.
        """
        _check_limits(depth, max_nodes)
        row = self.resolve(text)
        starts = self._expand(row, as_of)
        distance, edges, reason = self._walk(starts, direction, FLOW_EDGES, as_of, depth, max_nodes)
        if direction == "downstream" and not include_failed:
            distance, edges = self._without_failed_writes(starts, distance, edges)
        nodes = self._annotate(distance)
        if kinds:
            nodes = [n for n in nodes if _prefix(n["id"]) in kinds]
        if job_types:
            nodes = self._of_job_types(nodes, job_types)
        inside = [e._asdict() for e in sorted(edges, key=edge_key) if e.src in distance and e.dst in distance]
        # one validation of plain dicts builds the whole result (far cheaper than a model per node and edge)
        return Traversal.model_validate({
            "root": row.id, "direction": direction, "depth": depth, "as_of": as_of, "nodes": nodes,
            "edges": inside, "truncated": reason is not None, "truncated_reason": reason})

    def impact(self, text: str, *, depth: int | None = None, as_of: str | None = None,
               max_nodes: int = DEFAULT_MAX_NODES, job_types: Sequence[str] = (),
               include_failed: bool = False) -> dict[str, Any]:
        """The jobs, datasets and models downstream of a node, grouped by distance.

        Distance counts jobs: the jobs that read the node and what they wrote are
        at distance 1, the jobs that read those at distance 2, and so on. Tests and
        quality checks (query.is_check) are listed apart, as ``checks``; ``job_types``
        keeps only the jobs and checks of those types.
        """
        walk = self.traverse(text, "downstream", depth=depth, as_of=as_of, max_nodes=max_nodes,
                             job_types=job_types, include_failed=include_failed)
        groups: dict[int, dict[str, set[str]]] = {}
        runs_away = job_distances([n.id for n in walk.nodes if n.distance == 0], walk.edges)
        for n in walk.nodes:
            if n.distance == 0 or n.kind in (NodeKind.RUN, NodeKind.CODE):
                continue
            level = runs_away[n.id] if n.id in runs_away else min(
                (runs_away.get(r.id, 1) for r in walk.nodes if r.job == n.id), default=1)
            if level == 0:  # a later version the start continues into: the start itself, not impact
                continue
            target = n.id if n.kind == NodeKind.JOB else str(parse_id(n.id).entity())
            group = groups.setdefault(level, {"jobs": set(), "datasets": set(), "models": set()})
            group[{"job": "jobs", "dataset": "datasets", "model": "models"}[_prefix(n.id)]].add(target)
        checks = self._checks(sorted({j for g in groups.values() for j in g["jobs"]}))
        for group in groups.values():
            group["checks"], group["jobs"] = group["jobs"] & checks, group["jobs"] - checks
        levels = [{"distance": d, **{k: sorted(v) for k, v in g.items()}} for d, g in sorted(groups.items())]
        return {"root": walk.root, "as_of": as_of, "levels": levels,
                "truncated": walk.truncated, "truncated_reason": walk.truncated_reason}

    def path(self, source: str, target: str, *, max_nodes: int = DEFAULT_MAX_NODES,
             as_of: str | None = None) -> PathResult:
        """A shortest data-flow path from source down to target (or, failing that, up to it)."""
        a, b = self.resolve(source), self.resolve(target)
        targets = set(self._expand(b, as_of))
        for direction in ("downstream", "upstream"):
            step = lambda ids, d=direction: self._neighbors(ids, d, FLOW_EDGES, as_of)  # noqa: E731
            starts = self._expand(a, as_of)
            distance, edges, reason, parent = bfs(starts, step, direction, None, max_nodes)
            hit = next((t for t in targets if t in distance), None)
            if hit:
                chain = [hit]
                while chain[-1] in parent:
                    chain.append(parent[chain[-1]])
                chain.reverse()
                links = set(zip(chain, chain[1:]))
                used = [e for e in edges if (e.src, e.dst) in links or (e.dst, e.src) in links]
                return PathResult(source=a.id, target=b.id, found=True, direction=direction,
                                  nodes=_bracket(a.id, chain, b.id), edges=edge_refs(used))
        return PathResult(source=a.id, target=b.id, found=False, truncated=reason is not None)

    def search(self, text: str, *, kinds: Sequence[str] = (), limit: int = 50) -> list[NodeRow]:
        if not text.strip():
            raise LineageError("search text is empty")
        if not 1 <= limit <= 10_000:
            raise LineageError("limit must be between 1 and 10000")
        return self._search(text, list(kinds), limit)

    def history(self, text: str) -> dict[str, Any]:
        """Versions (of a dataset or model), runs (of a job) or ledger entries (of anything) over time."""
        row = self.resolve(text)
        result: dict[str, Any] = {"id": row.id, "kind": row.kind}
        if row.kind in (NodeKind.DATASET, NodeKind.MODEL, NodeKind.JOB):
            edge = "RUN_OF" if row.kind == NodeKind.JOB else "VERSION_OF"
            members = [e.src for e in self._neighbors([row.id], "upstream", (edge,), None)]
            result["runs" if edge == "RUN_OF" else "versions"] = self._timeline(members)
        subjects = [row.id] + [r["id"] for r in result.get("runs", [])]
        entries = [e for s in subjects for e in self._iter_entries(None, s, None, None, 0, 1000)]
        result["entries"] = [
            {"seq": e.seq, "recorded_at": e.recorded_at, "kind": e.kind, "subject": e.subject,
             "event_time": e.event_time, "actor": e.actor, "hash": e.hash}
            for e in sorted(entries, key=lambda e: e.seq)
        ]
        return result

    def columns(self, dataset: str, field: str | None = None, *, depth: int | None = None,
                max_nodes: int = DEFAULT_MAX_NODES, direct_only: bool = False) -> ColumnLineage:
        """Column-level lineage of a dataset (or one of its fields), upstream and downstream.

        With ``a.x --DIRECT--> b.y`` and ``a.k --INDIRECT/JOIN--> b`` (the whole of b): upstream of
        ``b.y`` is ``a.x`` and ``a.k``; downstream of ``a.k`` is b (every field of it), so the walk
        goes on from all of b's edges. ``direct_only`` walks DIRECT edges only. A field that neither
        the dataset's schema facet nor any column edge names is refused (NotFoundError).
        """
        _check_limits(depth, max_nodes)
        row = self.resolve(dataset)
        entity = str(parse_id(row.id).entity()) if row.entity else row.id
        if field is not None and field not in self._fields(row, self._facets(row.id)):
            raise NotFoundError(f"{entity} has no field {shown(field)}: neither its schema facet nor any "
                                "column lineage names it (see 'auditgraph lineage show')")
        hops: list[ColumnHop] = []
        truncated = False
        for direction in ("upstream", "downstream"):
            seen = {(entity, field)}
            frontier, level = [(entity, field)], 0
            while frontier and (depth is None or level < depth) and not truncated:
                level += 1
                following = []
                for edge in self._canonical_column_edges(frontier, direction):
                    if direct_only and not is_direct(edge.transformations):
                        continue
                    hops.append(ColumnHop(**edge.model_dump(), direction=direction, distance=level))
                    key = (edge.src, edge.src_field) if direction == "upstream" else (edge.dst, edge.dst_field)
                    if key not in seen:
                        seen.add(key)
                        following.append(key)
                        truncated = len(seen) >= max_nodes
                frontier = following
        return ColumnLineage(dataset=entity, field=field, edges=hops, truncated=truncated)

    def _canonical_column_edges(self, keys: list[tuple[str, str | None]], direction: Direction) -> list:
        """Column edges of these (dataset, field) keys, as stated against the datasets or their aliases
        (an edge stated before a symlink arrived names the alias), each end read as its canonical dataset."""
        entities = sorted({e for e, _ in keys if e.startswith("dataset:")})
        aliases: dict[str, list[str]] = {}
        for e in self._neighbors(entities, "upstream", ("ALIAS_OF",), None) if entities else ():
            aliases.setdefault(e.dst, []).append(e.src)
        lookup = keys + [(a, f) for e, f in keys for a in aliases.get(e, ())]
        edges = self._column_edges(lookup, direction)
        ends = sorted({x for edge in edges for x in (edge.src, edge.dst) if x.startswith("dataset:")})
        canonical = {k: str(v) for k, v in self._alias_targets(ends).items()} if ends else {}
        if not canonical:
            return edges
        return [edge.model_copy(update={"src": canonical.get(edge.src, edge.src), "dst": canonical.get(edge.dst, edge.dst)})
                for edge in edges]

    def stats(self) -> dict[str, Any]:
        head = self._head()
        return {"url": redact(self.url), "ledger": {"entries": head.seq, "head": head.hash}, **self._stats()}

    # --- helpers -----------------------------------------------------------

    def _walk(self, starts: list[str], direction: Direction, types: Sequence[str], as_of: str | None,
              depth: int | None, max_nodes: int) -> tuple[dict[str, int], list[Edge], str | None]:
        """Breadth-first walk, one backend query per level. Backends may override with a faster equivalent."""
        step = lambda ids: self._neighbors(ids, direction, types, as_of)  # noqa: E731
        distance, edges, reason, _ = bfs(starts, step, direction, depth, max_nodes)
        return distance, edges, reason

    def _expand(self, row: NodeRow, as_of: str | None) -> list[str]:
        if row.kind in (NodeKind.DATASET, NodeKind.MODEL, NodeKind.JOB):
            edge = "RUN_OF" if row.kind == NodeKind.JOB else "VERSION_OF"
            members = [e.src for e in self._neighbors([row.id], "upstream", (edge,), as_of)]
            return members or [row.id]
        return [row.id]

    def _annotate(self, distance: dict[str, int]) -> list[dict[str, Any]]:
        """The reached nodes with their kind (read from the id) and, for runs, their job; jobs are
        added at the distance of their nearest run."""
        runs = [i for i in distance if i.startswith("run:")]
        job_of = {e.src: e.dst for e in self._neighbors(runs, "downstream", ("RUN_OF",), None)} if runs else {}
        reached = [{"id": i, "kind": kind_of(i), "distance": d, "job": job_of.get(i)} for i, d in distance.items()]
        jobs: dict[str, int] = {}
        for run, job in job_of.items():
            jobs[job] = min(jobs.get(job, distance[run]), distance[run])
        reached += [{"id": j, "kind": NodeKind.JOB, "distance": d, "job": None}
                    for j, d in jobs.items() if j not in distance]
        return sorted(reached, key=lambda n: (n["distance"], n["id"]))

    def _fields(self, row: NodeRow, facets: dict[str, Any]) -> list[str]:
        """A dataset's (or version's) fields: those its schema facet lists and those column lineage names."""
        entity = row.entity or row.id
        named = set(schema_fields(facets.get("schema")))
        if row.entity:
            named.update(schema_fields(self._facets(row.entity).get("schema")))
        return sorted(named | self._column_fields(entity))

    def _of_job_types(self, nodes: list[dict[str, Any]], wanted: Sequence[str]) -> list[dict[str, Any]]:
        """The nodes that are no job or run, and the jobs (and runs of jobs) of a wanted type."""
        job = {n["id"]: n["id"] if n["kind"] == NodeKind.JOB else n["job"]
               for n in nodes if n["kind"] in (NodeKind.JOB, NodeKind.RUN)}
        types = self._facet_values(sorted({j for j in job.values() if j}), JOB_TYPE_FACET)
        return [n for n in nodes if n["id"] not in job or job_type_matches(types.get(job[n["id"]]), wanted)]

    def _checks(self, jobs: list[str]) -> set[str]:
        """Which of these jobs are tests or quality checks."""
        if not jobs:
            return set()
        types, marked = self._facet_values(jobs, JOB_TYPE_FACET), self._facet_values(jobs, CHECK_FACET)
        return {j for j in jobs if is_check(types.get(j), j in marked)}

    def _without_failed_writes(self, starts: list[str], distance: dict[str, int],
                               edges: list[Edge]) -> tuple[dict[str, int], list[Edge]]:
        """The walk without the WROTE edges of failed runs (store/binding.py), walked again over what is left."""
        runs = [i for i in distance if i.startswith("run:")]
        failed = {r for r, state in self._facet_values(runs, "_state").items() if is_failed(state)} if runs else set()
        if not failed:
            return distance, edges
        kept = [e for e in edges if not (e.type == "WROTE" and e.src in failed)]
        reached, walked, _ = bfs_over(kept, starts, "downstream", None, max(len(distance), 1))
        return reached, walked

    def _timeline(self, members: list[str]) -> list[dict[str, Any]]:
        rows = self._nodes(members)
        wrote = {e.dst: e.src for e in self._neighbors(members, "upstream", ("WROTE",), None)}
        out = []
        for r in sorted(rows.values(), key=lambda r: (r.first_seen or "", r.id)):
            item = {"id": r.id, "version": r.version, "first_seen": r.first_seen, "last_seen": r.last_seen}
            if r.kind == NodeKind.RUN:
                item["state"] = (self._facets(r.id).get("_state") or {}).get("eventType")
            elif r.id in wrote:
                item["written_by"] = wrote[r.id]
                # an attempted write: no read binds to it (store/binding.py)
                item["failed"] = is_failed(self._facets(wrote[r.id]).get("_state"))
            out.append(item)
        return out


_HAS_FIELDS = (NodeKind.DATASET, NodeKind.DATASET_VERSION, NodeKind.MODEL, NodeKind.MODEL_VERSION)


def _lookups(entries: Iterable[tuple[str, Any]]) -> tuple[set[str], set[str]]:
    """The dataset and model entities that (kind, payload) entries about to be projected name.

    Every write path (append, rebuild, migrate) prefetches these in bulk before
    projecting a batch; payloads are read defensively, since a rejected one is
    only refused later, by its projector.
    """
    entities: set[str] = set()
    ids: set[str] = set()
    for kind, raw in entries:
        if kind != OPENLINEAGE_KIND or not isinstance(raw, dict):
            continue
        named = [*_list(raw.get("inputs")), *_list(raw.get("outputs"))]
        if "run" not in raw and isinstance(raw.get("dataset"), dict):
            named.append(raw["dataset"])
        for ds in named:
            if isinstance(ds, dict) and isinstance(ds.get("namespace"), str) and isinstance(ds.get("name"), str):
                d, m = dataset_id(ds["namespace"], ds["name"]), model_id(ds["namespace"], ds["name"])
                entities.update((d, m))
                ids.add(m)
    return entities, ids


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _project(kind: str, payload: Any, ctx: Batch, hint: dict | None = None) -> Facts:
    project = projector_for(kind)
    return project(payload, ctx, hint) if project else Facts()


def _prefix(node_id: str) -> str:
    return node_id.partition(":")[0]


def _bracket(source: str, chain: list[str], target: str) -> list[str]:
    return ([source] if chain[0] != source else []) + chain + ([target] if chain[-1] != target else [])


def _check_limits(depth: int | None, max_nodes: int) -> None:
    if depth is not None and depth < 0:
        raise LineageError(f"depth must be 0 or more, got {depth}")
    if max_nodes < 1:
        raise LineageError(f"max nodes must be at least 1, got {max_nodes}")
