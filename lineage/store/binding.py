"""Which version a read saw, and which version an append continued: by event time and run outcome.

Run once per write transaction, over the whole batch, before it is written
(``Batch.bind``). The rules, the same on every backend and in any arrival order:

* A read of no named version (``run`` read ``E`` at time ``t``, recorded as the
  run's ``_read:E`` facet, which keeps the earliest time) is bound to the newest
  *bindable* version of ``E`` whose first event time is at or before ``t``, else
  to ``E@unversioned``. One run reads one such version of ``E``::

      E@v1 --READ_BY--> run        (v1 newest bindable at t)

* A version is bindable unless every run that wrote it ended FAIL or ABORT (its
  merged ``_state``). A failed run's outputs stay in the graph as attempted
  writes (``run --WROTE--> E@run``; ``history`` marks them failed), but no later
  read binds to them and no append continues them.
* A version a run wrote is an append unless its ``lifecycleStateChange`` facet
  says OVERWRITE, CREATE, TRUNCATE or DROP: it continues the newest bindable
  version before it (``E@v1 --CONTINUED_BY--> E@v2``), so upstream of a read of
  v2 reaches v1's writer too. Models are replaced, never appended to.

Re-binding: whatever can move a binding (a version that lands earlier than a
stored read, a run that fails or stops failing, a read whose earliest time
moves, a lifecycle facet) makes the pass recompute the bindings of the reads
and appends of that dataset from the changed time on, and replace the edges
that differ. The ledger stays the source of truth: every input of a binding is
a projected fact of a recorded event, so a rebuild replays to the same edges;
the re-binding itself is recorded by the late event's own ledger entry (its
``recorded_at`` is when it became known, ``audit log --subject`` lists it). An
edge carries the event time it became true, so ``--as-of T`` answers with the
bindings that hold for events up to T, whatever order they arrived in.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING

from lineage.ids import NodeKind, parse_id
from lineage.projection import LIFECYCLE, READ_FACET, UNVERSIONED, EdgeFact, NodeFact, is_failed, replaces

if TYPE_CHECKING:
    from lineage.store.batch import Batch


class Binder:
    """The binding pass of one batch (see the module docstring)."""

    def __init__(self, batch: Batch):
        self.b, self.tx = batch, batch.tx
        self.versions: dict[str, dict[str, str]] = {}  # entity -> {version id: first event time}
        self.writers: dict[str, set[str]] = {}  # version id -> runs that wrote it
        self.states: dict[str, dict | None] = {}  # run -> merged _state value
        self._by_type: dict[str, list[tuple[str, str, str]]] | None = None  # this batch's edges, by type
        self._ladders: dict[str, list[tuple[str, str]]] = {}  # entity -> sorted (first, id) of bindable versions

    # --- what is known ----------------------------------------------------------

    def _load(self, entities: set[str]) -> None:
        """Every version of these entities, stored and this batch's (writers and outcomes: ``_prime``)."""
        b = self.b
        todo = sorted(e for e in entities if e not in self.versions)
        if not todo:
            return
        stored = {e: b._stored_versions.get(e, []) for e in todo if e in b._prefetched}
        missing = [e for e in todo if e not in b._prefetched]
        for entity, vid, version, first in self.tx.versions_of(missing) if missing else ():
            stored.setdefault(entity, []).append((first, vid, version))
        for entity in todo:
            known = {vid: first for first, vid, version in stored.get(entity, ()) if version != UNVERSIONED}
            for vid, (first, version) in b._versions.get(entity, {}).items():
                if version != UNVERSIONED:
                    known[vid] = min(first, known.get(vid, first))
            self.versions[entity] = {v: t for v, t in known.items() if v not in b.dropped_nodes}
            self._ladders[entity] = sorted((t, v) for v, t in self.versions[entity].items())

    def _prime(self, vids: set[str]) -> None:
        """Load, in bulk, the writers of these versions and their runs' outcomes."""
        todo = [v for v in vids if v not in self.writers]
        for v in todo:
            self.writers[v] = set()
        for src, dst, _ in self._edges(todo, "WROTE", "upstream") if todo else ():
            self.writers[dst].add(src)
        self._load_states({r for v in todo for r in self.writers[v]})

    def _load_states(self, runs: set[str]) -> None:
        todo = sorted(r for r in runs if r not in self.states)
        stored = (
            {
                node: (value, order)
                for node, name, value, order in self.tx.facets_like(todo, "_state")
                if name == "_state"
            }
            if todo
            else {}
        )
        for run in todo:
            mine = self.b.facets.get((run, "_state"))
            have = stored.get(run)
            if mine is not None and (have is None or mine.order > have[1]):
                self.states[run] = mine.value
            else:
                self.states[run] = have[0] if have else None

    def _edges(self, ids: list[str], type_: str, direction: str) -> list[tuple[str, str, str]]:
        """(src, dst, time) of the edges of ``type_`` into (upstream) or out of ``ids``, stored and this batch's."""
        b = self.b
        found = (
            {
                (s, d): t
                for s, d, t in self.tx.typed_edges(ids, type_, direction)
                if (s, type_, d) not in b.dropped_edges and s not in b.dropped_nodes and d not in b.dropped_nodes
            }
            if ids
            else {}
        )
        if self._by_type is None:
            self._by_type = {}
            for (s, t_, d), e in b.edges.items():
                self._by_type.setdefault(t_, []).append((s, d, e.time))
        wanted = set(ids)
        for s, d, t in self._by_type.get(type_, ()):
            if (d if direction == "upstream" else s) in wanted:
                found[(s, d)] = min(t, found.get((s, d), t))
        return [(s, d, t) for (s, d), t in found.items()]

    def failed(self, vid: str) -> bool:
        self._prime({vid})
        runs = self.writers[vid]
        return bool(runs) and all(is_failed(self.states.get(r)) for r in runs)

    def _below(self, entity: str, before: tuple[str, str], strict: bool) -> int:
        ladder = self._ladders.get(entity, [])
        return bisect_left(ladder, before) if strict else bisect_right(ladder, (before[0], "\U0010ffff"))

    def newest(self, entity: str, before: tuple[str, str], strict: bool) -> str | None:
        """The newest bindable version of ``entity`` at or before ``before`` = (time, id): walk down
        from the newest candidate (usually the first one is not failed)."""
        ladder = self._ladders.get(entity, [])
        for i in range(self._below(entity, before, strict) - 1, -1, -1):
            if not self.failed(ladder[i][1]):
                return ladder[i][1]
        return None

    def _candidates(self, wanted: list[tuple[str, tuple[str, str], bool]]) -> None:
        """Prime the newest candidate of each (entity, before, strict), so that ``newest`` rarely asks alone."""
        tops = set()
        for entity, before, strict in wanted:
            i = self._below(entity, before, strict)
            if i:
                tops.add(self._ladders[entity][i - 1][1])
        self._prime(tops)

    # --- the pass ------------------------------------------------------------------

    def run(self) -> None:
        b = self.b
        reads = {(r, e) for r, e in b.reads if e not in b.dropped_nodes}
        changed: dict[str, str] = {}  # entity -> earliest time from which its bindings may move
        landed: list[tuple[str, str, str]] = []  # (entity, version, first) of versions new or earlier here
        appends: set[str] = set()
        for entity, versions in b._versions.items():
            for vid, (first, version) in versions.items():
                stored = b._stored_first.get(vid)
                if version != UNVERSIONED and vid not in b.dropped_nodes and (stored is None or first < stored):
                    _earlier(changed, entity, first)
                    landed.append((entity, vid, first))
                    appends.add(vid)
        moved: dict[str, str] = {}  # entities whose versions failed, stopped failing or went: every read may move
        for node in b.dropped_nodes:
            if "@" in node and (node.startswith("dataset:") or node.startswith("model:")):
                _earlier(moved, _entity(node), "")
        appends |= {n for (n, name) in b.facets if name == LIFECYCLE and "@" in n}
        self._outcomes(moved, appends)
        for entity, since in moved.items():
            _earlier(changed, entity, since)
        self._load(set(changed) | {e for _, e in reads} | {_entity(v) for v in appends})
        # A stored read a landed version takes over is bound (bindings held before this batch) to the
        # newest bindable version before it, or to @unversioned: only those need looking at.
        self._candidates([(e, (first, ""), True) for e, _, first in landed])
        ids = {unversioned(e) for e in changed}
        ids |= {v for e in moved for v in self.versions.get(e, {})}
        ids |= {v for e, _, first in landed if (v := self.newest(e, (first, ""), strict=True))}
        for src, dst, t in self._edges(sorted(ids), "READ_BY", "downstream") if ids else ():
            if t >= changed[_entity(src)]:
                reads.add((dst, _entity(src)))
        for entity, since in changed.items():
            appends |= {v for v, first in self.versions.get(entity, {}).items() if first >= since}
        touched: set[str] = set()
        self._bind_reads(reads, touched)
        self._bind_appends(appends)
        for node in sorted(touched):
            self._settle_unversioned(node)

    def _outcomes(self, changed: dict[str, str], appends: set[str]) -> None:
        """Runs of this batch whose outcome flipped (failed <-> not): their outputs' bindability moved."""
        b = self.b
        runs = sorted({n for (n, name) in b.facets if name == "_state"})
        stored = (
            {
                node: (value, order)
                for node, name, value, order in self.tx.facets_like(runs, "_state")
                if name == "_state"
            }
            if runs
            else {}
        )
        flipped = []
        for run in runs:
            mine, have = b.facets[(run, "_state")], stored.get(run)
            merged = mine.value if have is None or mine.order > have[1] else have[0]
            if is_failed(merged) != is_failed(have[0] if have else None):
                flipped.append(run)
        for _, vid, _ in self._edges(flipped, "WROTE", "downstream") if flipped else ():
            entity = _entity(vid)
            self._load({entity})
            _earlier(changed, entity, self.versions.get(entity, {}).get(vid, ""))
            appends.add(vid)

    def _bind_reads(self, reads: set[tuple[str, str]], touched: set[str]) -> None:
        """Each (run, entity): the versions it named, and the one its earliest unnamed read binds to."""
        b = self.b
        runs = sorted({r for r, _ in reads})
        times: dict[tuple[str, str], str] = {}
        for node, name, value, _ in self.tx.facets_like(runs, READ_FACET) if runs else ():
            if (node, name) in b.dropped_facets:
                continue
            if isinstance(value, dict) and isinstance(value.get("time"), str):
                times[(node, name)] = value["time"]
        for (node, name), f in b.facets.items():
            if name.startswith(READ_FACET):
                times[(node, name)] = min(f.value["time"], times.get((node, name), f.value["time"]))
        current: dict[tuple[str, str], dict[str, str]] = {}
        for src, dst, t in self._edges(runs, "READ_BY", "upstream") if runs else ():
            current.setdefault((dst, _entity(src)), {})[src] = t
        named: dict[tuple[str, str], dict[str, str]] = {}  # (run, entity) -> {version it named: time}
        for (r, name), t in times.items():
            rest = name[len(READ_FACET) :] if name.startswith(READ_FACET) else None
            if rest is not None and "@" in rest:
                named.setdefault((r, _entity(rest)), {})[rest] = t
        self._candidates(
            [(e, (times[(r, READ_FACET + e)], ""), False) for r, e in reads if (r, READ_FACET + e) in times]
        )
        for run, entity in sorted(reads):
            want = dict(named.get((run, entity), {}))
            floating = times.get((run, READ_FACET + entity))
            if floating is not None:
                target = self.newest(entity, (floating, ""), strict=False) or unversioned(entity)
                want[target] = min(floating, want.get(target, floating))
            have = current.get((run, entity), {})
            for vid in have.keys() - want.keys():
                b._drop_edge((vid, "READ_BY", run))
                self._by_type = None
                if vid == unversioned(entity):
                    touched.add(vid)
            for vid, t in want.items():
                if vid in have and have[vid] <= t:
                    continue
                self._edge(vid, "READ_BY", run, t)
                if vid == unversioned(entity):
                    self._unversioned_node(entity, t)
                    if vid in have:  # an earlier time for a read it had: its last_seen may drop
                        touched.add(vid)

    def _bind_appends(self, appends: set[str]) -> None:
        b = self.b
        ids = sorted(v for v in appends if v.startswith("dataset:") and v not in b.dropped_nodes)
        if not ids:
            return
        self._load({_entity(v) for v in ids})
        stored = {
            node: (value, order)
            for node, name, value, order in self.tx.facets_like(ids, LIFECYCLE)
            if name == LIFECYCLE
        }
        lifecycle = {}
        for vid in ids:
            mine, have = b.facets.get((vid, LIFECYCLE)), stored.get(vid)
            lifecycle[vid] = (
                mine.value
                if mine is not None and (have is None or mine.order > have[1])
                else (have[0] if have else None)
            )
        self._prime(set(ids))
        self._candidates(
            [
                (_entity(v), (self.versions[_entity(v)][v], v), True)
                for v in ids
                if v in self.versions.get(_entity(v), {})
            ]
        )
        linked = {dst: (src, t) for src, dst, t in self._edges(ids, "CONTINUED_BY", "upstream")}
        for vid in ids:
            entity, first = _entity(vid), self.versions.get(_entity(vid), {}).get(vid)
            replaced = replaces(lifecycle.get(vid))
            prev = None
            if first is not None and self.writers[vid] and not self.failed(vid) and not replaced:
                prev = self.newest(entity, (first, vid), strict=True)
            old = linked.get(vid)
            if old and old[0] != prev:
                b._drop_edge((old[0], "CONTINUED_BY", vid))
                self._by_type = None
            if prev and first is not None and (not old or old[0] != prev or old[1] != first):
                self._edge(prev, "CONTINUED_BY", vid, first)

    def _edge(self, src: str, type_: str, dst: str, time: str) -> None:
        key = (src, type_, dst)
        have = self.b.edges.get(key)
        if have is None or time < have.time:
            self.b.edges[key] = EdgeFact(src, type_, dst, time)
            self._by_type = None

    def _unversioned_node(self, entity: str, time: str, last: str | None = None) -> None:
        vid, parsed = unversioned(entity), parse_id(entity)
        kind = NodeKind.MODEL_VERSION if entity.startswith("model:") else NodeKind.DATASET_VERSION
        fact = NodeFact(vid, kind, parsed.namespace, parsed.name, UNVERSIONED, entity, time, last or time)
        have = self.b.nodes.get(vid)
        if have is None:
            self.b.nodes[vid] = fact
        else:
            have.time, have.last = min(have.time, time), max(have.last, fact.last)
        self._edge(vid, "VERSION_OF", entity, time)

    def _settle_unversioned(self, vid: str) -> None:
        """``E@unversioned`` lost a read or moved one earlier: its times are those of the reads it
        still has (as if they alone had ever named it), and with none left and no writer, it goes."""
        b, entity = self.b, _entity(vid)
        remaining = self._edges([vid], "READ_BY", "downstream")
        if self._edges([vid], "WROTE", "upstream"):
            return
        b._drop_node(vid, entity)
        self._by_type = None
        if remaining:
            times = [t for _, _, t in remaining]
            self._unversioned_node(entity, min(times), max(times))
            for src, dst, t in remaining:
                self._edge(src, "READ_BY", dst, t)


def unversioned(entity: str) -> str:
    return f"{entity}@{UNVERSIONED}"


def _entity(vid: str) -> str:
    """The dataset or model of a version id: ids escape '@' in namespaces and names, so the first one
    starts the version."""
    return vid.partition("@")[0]


def _earlier(changed: dict[str, str], entity: str, time: str) -> None:
    changed[entity] = min(time, changed.get(entity, time))
