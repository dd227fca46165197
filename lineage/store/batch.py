"""One write transaction's worth of entries and facts, merged in memory, written at once.

Projecting event N of a batch may depend on events before it in the same
batch (the newest version of a dataset, whether a model exists), so the batch
answers those questions from what it holds first and from the store second.
Facts are merged here with the same rules the backends apply against stored
rows (projection.py): earliest first_seen, latest last_seen, the facet with
the greatest order, an edge's earliest time. The backend then writes the
whole batch with one statement per table. The ledger rows and the facts go
in the same transaction: all of the batch lands, or none of it.
"""

from __future__ import annotations

from lineage.ledger import LedgerEntry
from lineage.projection import UNVERSIONED, ColumnFact, EdgeFact, FacetFact, Facts, NodeFact


class Batch:
    def __init__(self, tx):
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
                have = self.nodes[n.id] = NodeFact(n.id, n.kind, n.namespace, n.name, n.version, n.entity, n.time, n.last)
            else:
                have.time = min(have.time, n.time)
                have.last = max(have.last, n.last)
            if n.entity and n.version is not None and n.version != UNVERSIONED:
                self._register_version(have)
        for f in facts.facets:
            key = (f.node, f.name)
            if key not in self.facets or f.order > self.facets[key].order:
                self.facets[key] = f
        for e in facts.edges:
            key = (e.src, e.type, e.dst)
            if key not in self.edges or e.time < self.edges[key].time:
                self.edges[key] = e
        for c in facts.columns:
            key = (c.src, c.src_field, c.dst, c.dst_field)
            if key not in self.columns or c.time < self.columns[key].time:
                self.columns[key] = c

    def _register_version(self, node: NodeFact) -> None:
        """Remember a version with its true first_seen: the earlier of this batch's and the store's.

        (A version first written by a START in an earlier batch and seen again
        in this one must keep its earlier time, or a read could pick it over a
        version that is really newer.)
        """
        if node.id not in self._stored_first:
            # a version of a prefetched entity that was not among its stored versions is not stored
            self._stored_first[node.id] = None if node.entity in self._prefetched else self.tx.first_seen(node.id)
        stored = self._stored_first[node.id]
        first = min(node.time, stored) if stored else node.time
        self._versions.setdefault(node.entity, {})[node.id] = (first, node.version)

    def __len__(self) -> int:
        return len(self.entries)
