"""One write transaction's worth of entries and facts, merged in memory, written at once.

Projecting event N of a batch may depend on events before it in the same
batch (the newest version of a dataset, whether a model exists), so the batch
answers those questions from what it holds first and from the store second.
Facts are merged here with the same rules the backends apply against stored
rows (projection.py): earliest first_seen, latest last_seen, the facet with
the greatest order, an edge's earliest time. The backend then writes the
whole batch with one statement per table. The ledger rows and the facts go
in the same transaction: all of the batch lands, or none of it.

A run's events may disagree about an output's type (START names it bare,
COMPLETE marks it a model). ``settle`` applies the run's merged view: once any
event of the run writes the output as a model, what the run's events wrote as
a dataset version is dropped (``dropped_nodes``/``dropped_edges``, deleted by
the backend before it writes the batch) and those events are projected again,
so the graph is the same in any arrival order, in one batch or many, and
after a rebuild.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from lineage import column_lineage
from lineage.ledger import LedgerEntry
from lineage.projection import (
    OPENLINEAGE_KIND,
    UNVERSIONED,
    ColumnFact,
    EdgeFact,
    FacetFact,
    Facts,
    NodeFact,
    project_openlineage,
)
from lineage.store.binding import Binder

if TYPE_CHECKING:
    from lineage.store.base import WriteTx  # base builds batches: imported for the annotation only

UNITED = "0001-01-01T00:00:00.000000Z"  # two declarers of one alias were always one dataset

Edge = tuple[str, str, str]  # (src, type, dst)
MAX_ALIAS_HOPS = 16  # a chain of symlinks is followed this far


def follow_aliases(entity: str, targets_of) -> str | None:
    """Follow ALIAS_OF from ``entity`` (the smallest target first) to a dataset that is no alias; on a
    cycle, its smallest member. None if ``entity`` is no alias. The batch and the store's reads share it."""
    seen, current = [entity], entity
    for _ in range(MAX_ALIAS_HOPS):
        targets = targets_of(current)
        if not targets:
            break
        current = min(targets)
        if current in seen:
            current = min(seen[seen.index(current) :])
            break
        seen.append(current)
    return None if current == entity else current


class Batch:
    def __init__(self, tx: WriteTx) -> None:
        self.tx = tx
        self.entries: list[LedgerEntry] = []
        self.nodes: dict[str, NodeFact] = {}
        self.facets: dict[tuple[str, str], FacetFact] = {}
        self.edges: dict[tuple[str, str, str], EdgeFact] = {}
        self.columns: dict[tuple[str, str, str, str], ColumnFact] = {}
        self._versions: dict[str, dict[str, tuple[str, str]]] = {}  # entity -> {id: (first_seen, version)}
        self._stored: dict[str, bool] = {}  # what the store said exists, asked once per batch
        self._stored_first: dict[str, str | None] = {}
        self._stored_versions: dict[str, list[tuple[str, str, str]]] = {}  # prefetched (first_seen, id, version)
        self._prefetched: set[str] = set()
        self.dropped_nodes: set[str] = set()  # stored nodes to delete (with their facets and edges) first
        self.dropped_edges: set[Edge] = set()
        self.dropped_facets: set[tuple[str, str]] = set()  # stored (node, facet name) to delete first
        self.reads: set[tuple[str, str]] = set()  # (run, entity) of every input projected: bound by bind()
        self._alias_targets: dict[str, set[str]] = {}  # alias -> datasets declaring it (stored and this batch's)

    # --- prefetching -------------------------------------------------------------

    def prefetch(self, entities: set[str], node_ids: set[str]) -> None:
        """Load, in two bulk queries, what projecting this batch will ask: every stored version of
        these entities (for the newest-version and first_seen questions) and which of these ids exist.

        Without it each question is a round trip, which on a server backend dominates ingestion.
        """
        self._prefetched = set(entities)
        for entity, node_id, version, first_seen in self.tx.versions_of(sorted(entities)):
            self._stored_versions.setdefault(entity, []).append((first_seen, node_id, version))
            self._stored_first[node_id] = first_seen
            self._stored[node_id] = True
        present = self.tx.existing(sorted(node_ids - self._stored.keys()))
        for node_id in node_ids:
            self._stored.setdefault(node_id, node_id in present)
        for entity in entities:
            self._alias_targets.setdefault(entity, set())
        for alias, target in self.tx.alias_edges(sorted(entities)):
            self._alias_targets[alias].add(target)

    # --- ProjectionContext --------------------------------------------------

    def exists(self, node_id: str) -> bool:
        if node_id in self.nodes:
            return True
        if node_id not in self._stored:
            self._stored[node_id] = self.tx.exists(node_id)
        return self._stored[node_id]

    def _stored_latest(self, entity: str, as_of: str) -> tuple[str, str, str] | None:
        if entity in self._prefetched:
            rows = [r for r in self._stored_versions.get(entity, ()) if r[0] <= as_of and r[2] != UNVERSIONED]
            return max(rows) if rows else None
        return self.tx.latest_version_row(entity, as_of)

    def latest_version(self, entity: str, as_of: str) -> str | None:
        """The newest known version at or before ``as_of``: the batch's, or the store's."""
        stored = self._stored_latest(entity, as_of)
        candidates = [(t, i, v) for i, (t, v) in self._versions.get(entity, {}).items() if t <= as_of]
        if stored:
            candidates.append(stored)
        return max(candidates)[2] if candidates else None

    # --- collecting ------------------------------------------------------------

    def add(self, entry: LedgerEntry | None, facts: Facts) -> None:
        if entry is not None:
            self.entries.append(entry)
        for n in facts.nodes.values():
            have = self.nodes.get(n.id)
            if have is None:
                have = self.nodes[n.id] = NodeFact(
                    n.id, n.kind, n.namespace, n.name, n.version, n.entity, n.time, n.last
                )
            else:
                have.time = min(have.time, n.time)
                have.last = max(have.last, n.last)
            if n.entity and n.version is not None and n.version != UNVERSIONED:
                self._register_version(have, n.entity, n.version)
        for f in facts.facets:
            fkey = (f.node, f.name)
            if fkey not in self.facets or f.order > self.facets[fkey].order:
                self.facets[fkey] = f
        for e in facts.edges:
            ekey = (e.src, e.type, e.dst)
            if ekey not in self.edges or e.time < self.edges[ekey].time:
                self.edges[ekey] = e
        for c in facts.columns:
            ckey = (c.src, c.src_field, c.dst, c.dst_field)
            self.columns[ckey] = merge_column(self.columns.get(ckey), c)
        self.reads.update(facts.reads)
        for run, dataset, model in facts.models:
            self.settle(run, dataset, model)
        for alias, target in facts.aliases:
            self.alias(alias, target)

    # --- a run's merged view of its outputs ------------------------------------

    def settle(self, run: str, dataset: str, model: str) -> None:
        """``run`` wrote ``model``: drop the versions of ``dataset`` its events wrote, and project those
        events again (now that the model exists they write it). Nothing to do in the usual case."""
        versions = self._known_versions(dataset)
        edges = self._edges_touching(versions | {dataset}) if versions else set()
        written = {v for v in versions if (run, "WROTE", v) in edges}
        if not written:
            return
        events = self._run_events(run)
        for v in written:
            self._drop_edge((run, "WROTE", v))
        for v in written:
            if {e for e in self._edges_touching({v}) if e != (v, "VERSION_OF", dataset)} == set():
                self._drop_node(v, dataset)
        digests = {d for d, _ in events}
        if not self._edges_touching({dataset}) and all(
            o.rpartition("|")[2] in digests for o in self._facet_orders(dataset)
        ):
            self._drop_node(dataset, None)
        for payload_digest, payload in events:
            self.add(None, _about(project_openlineage(payload, self, {"digest": payload_digest}), run, model))

    # --- identities: symlinks ----------------------------------------------------

    def canonical(self, entity: str) -> str | None:
        """The dataset an alias stands for: follow ALIAS_OF (the smallest target first) to a dataset
        that is no alias; on a cycle, its smallest member. None if ``entity`` is no alias."""
        return follow_aliases(entity, self._targets)

    def _targets(self, alias: str) -> set[str]:
        if alias not in self._alias_targets:
            self._alias_targets[alias] = {t for _, t in self.tx.alias_edges([alias])}
        return self._alias_targets[alias]

    def alias(self, alias: str, target: str) -> None:
        """``target`` declared ``alias`` as a symlink. If that changes what ``alias`` stands for, the
        events that named it were projected onto another dataset: drop the versions they made (of the
        alias, and of what it stood for) and project those events again."""
        if target in self._targets(alias):
            return
        before = self.canonical(alias)
        self._alias_targets[alias].add(target)
        if self.canonical(alias) != before:
            self._reproject([alias] + ([before] if before else []))
        self._unite(alias)

    def _unite(self, alias: str) -> None:
        """Datasets that declare the same alias are one dataset too (s3a:// and s3:// paths of one Hive
        table): every declarer other than the canonical becomes an alias of it, so what was written
        under any of them stays upstream of what reads the alias, whichever declared first."""
        canonical = self.canonical(alias)
        for declarer in sorted(self._targets(alias)):
            if canonical is None or declarer == canonical or self.canonical(declarer) == canonical:
                continue
            self.add(
                None, Facts(edges=[EdgeFact(declarer, "ALIAS_OF", canonical, UNITED)], aliases=[(declarer, canonical)])
            )

    def _reproject(self, entities: list[str]) -> None:
        runs: set[str] = set()
        for entity in entities:  # (this batch's unversioned reads are not among its _versions)
            versions = self._known_versions(entity) | {i for i, n in self.nodes.items() if n.entity == entity}
            for src, type_, dst in self._edges_touching(versions) if versions else ():
                if type_ in ("READ_BY", "WROTE"):
                    runs.add(dst if type_ == "READ_BY" else src)
            for v in versions:
                self._drop_node(v, entity)
            pending = {(r, e) for r, e in self.reads if e == entity}  # this batch's reads, not bound yet
            runs |= {r for r, _ in pending}
            self.reads -= pending
        from lineage.projection import READ_FACET

        for run in runs:  # the reads recorded against what the alias stood for are restated by the events
            for entity in entities:
                names = {READ_FACET + entity} | {READ_FACET + v for v in self._known_versions(entity)}
                for key in [k for k in self.facets if k[0] == run and k[1] in names]:
                    del self.facets[key]
                self.dropped_facets |= {(run, n) for n in names}
        events = [e for subject in sorted(runs) + entities for e in self._run_events(subject)]
        for payload_digest, payload in events:
            self.add(None, project_openlineage(payload, self, {"digest": payload_digest}))

    def _known_versions(self, entity: str) -> set[str]:
        stored = (
            self._stored_versions.get(entity, ())
            if entity in self._prefetched
            else [(t, i, v) for _, i, v, t in self.tx.versions_of([entity])]
        )
        return ({i for _, i, _ in stored} | set(self._versions.get(entity, {}))) - self.dropped_nodes

    def _edges_touching(self, ids: set[str]) -> set[Edge]:
        touching = [(src, type_, dst) for src, type_, dst in self.tx.edges_touching(sorted(ids))]  # rows as tuples
        stored = {
            e
            for e in touching
            if e not in self.dropped_edges and e[0] not in self.dropped_nodes and e[2] not in self.dropped_nodes
        }
        return stored | {k for k in self.edges if k[0] in ids or k[2] in ids}

    def _facet_orders(self, node: str) -> list[str]:
        stored = [] if node in self.dropped_nodes else self.tx.facet_orders(node)
        return stored + [f.order for (n, _), f in self.facets.items() if n == node]

    def _run_events(self, run: str) -> list[tuple[str, dict]]:
        """(payload digest, payload) of each event of ``run`` recorded so far, this batch's included."""
        found = dict(self.tx.run_events(run))
        found.update(
            (e.payload_digest, e.payload) for e in self.entries if e.subject == run and e.kind == OPENLINEAGE_KIND
        )
        return [(d, json.loads(p)) for d, p in found.items()]

    def _drop_edge(self, key: Edge) -> None:
        self.edges.pop(key, None)
        self.dropped_edges.add(key)

    def _drop_node(self, node: str, entity: str | None) -> None:
        self.nodes.pop(node, None)
        self.dropped_nodes.add(node)
        self._stored[node] = False
        for fkey in [k for k in self.facets if k[0] == node]:
            del self.facets[fkey]
        for ekey in [k for k in self.edges if node in (k[0], k[2])]:
            del self.edges[ekey]
        if entity is not None:
            self._versions.get(entity, {}).pop(node, None)
            self._stored_versions[entity] = [r for r in self._stored_versions.get(entity, ()) if r[1] != node]
            self._stored_first.pop(node, None)

    def _register_version(self, node: NodeFact, entity: str, version: str) -> None:
        """Remember a version (``node``, of ``entity``) with its true first_seen: the earlier of this
        batch's and the store's.

        (A version first written by a START in an earlier batch and seen again
        in this one must keep its earlier time, or a read could pick it over a
        version that is really newer.)
        """
        if node.id not in self._stored_first:
            # a version of a prefetched entity that was not among its stored versions is not stored
            self._stored_first[node.id] = None if entity in self._prefetched else self.tx.first_seen(node.id)
        stored = self._stored_first[node.id]
        first = min(node.time, stored) if stored else node.time
        self._versions.setdefault(entity, {})[node.id] = (first, version)

    def column_rows(self) -> list[ColumnFact]:
        """The batch's column edges merged with the stored ones (column_lineage: earliest run, union of
        transformations), ready to be written over them."""
        stored = self.tx.stored_columns(list(self.columns)) if self.columns else {}
        return [merge_column(stored.get(key), c) for key, c in self.columns.items()]

    def bind(self) -> None:
        """Bind reads and appends to versions by event time and run outcome (store/binding.py); the
        backend calls this once, before it writes the batch."""
        Binder(self).run()

    def __len__(self) -> int:
        return len(self.entries)


def merge_column(have: ColumnFact | None, new: ColumnFact) -> ColumnFact:
    """One column edge stated twice: the earliest (time, run) names it, its transformations are the union."""
    if have is None:
        return new
    first = min(have, new, key=lambda c: (c.time, c.run))
    return ColumnFact(
        new.src,
        new.src_field,
        new.dst,
        new.dst_field,
        first.run,
        first.time,
        column_lineage.merge(have.transformations, new.transformations),
    )


def _about(facts: Facts, run: str, model: str) -> Facts:
    """Of one event's facts, those about the versions of ``model`` that ``run`` wrote, and the model."""
    versions = {e.dst for e in facts.edges if e.src == run and e.type == "WROTE" and e.dst.startswith(model + "@")}
    keep = versions | {model}
    return Facts(
        nodes={k: n for k, n in facts.nodes.items() if k in keep},
        facets=[f for f in facts.facets if f.node in keep],
        edges=[
            e for e in facts.edges if (e.src == run and e.dst in versions) or (e.src in versions and e.dst == model)
        ],
    )
