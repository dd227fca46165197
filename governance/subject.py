"""The model version a gate evaluates, and what checks ask about it (computed once)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from governance import readmodels, records
from governance.errors import IncompleteError, NodeKindError
from lineage.graph import Graph
from lineage.ids import NodeKind
from lineage.query import Traversal
from lineage.store import Store

MAX_UPSTREAM = 100_000


class Subject:
    def __init__(self, store: Store, model: str):
        row = Graph(store).resolve(model)
        if row.kind != NodeKind.MODEL_VERSION:
            raise NodeKindError(f"{row.id} is a {row.kind}; the gate judges a model version (model:ns/name@version)")
        self.store, self.id, self.row = store, row.id, row

    @cached_property
    def upstream(self) -> Traversal:
        return Graph(self.store).traverse(self.id, "upstream", max_nodes=MAX_UPSTREAM)

    @cached_property
    def training_runs(self) -> list[str]:
        return [e.src for e in self.store.edges([self.id], "upstream", ["WROTE"])]

    @cached_property
    def inputs(self) -> list[str]:
        """Dataset and model versions the training runs read directly."""
        return sorted({e.src for e in self.store.edges(self.training_runs, "upstream", ["READ_BY"])})

    @cached_property
    def upstream_datasets(self) -> list[str]:
        """Every dataset version upstream; raises ``IncompleteError`` if the walk was cut short.

        A check that asks for the upstream data must see all of it: a producer that pads
        a run with inputs past the node cap must not hide a tagged dataset.
        """
        if self.upstream.truncated:
            raise IncompleteError(
                f"the upstream walk of {self.id} stopped early "
                f"({self.upstream.truncated_reason}); nothing upstream can be vouched for"
            )
        return [n.id for n in self.upstream.nodes if n.kind == NodeKind.DATASET_VERSION]

    @cached_property
    def approvals(self) -> list[readmodels.Approval]:
        return readmodels.approvals(self.store, self.id)

    @cached_property
    def training_actors(self) -> set[str]:
        """Who recorded the training runs' events (ledger actors), for separation of duties."""
        return {e.actor for run in self.training_runs for e in self.store.entries(subject=run, limit=None)}

    def facets(self, node: str) -> dict[str, Any]:
        return self.store.facets(node)

    def tags(self, node: str) -> dict[str, records.Cited]:
        return records.tags_of(self.store, node)

    def tagged_upstream(self, tags: list[str]) -> tuple[dict[str, list[str]], list[str]]:
        """Upstream dataset versions carrying any of ``tags``: {version: [tags]}, and the tag entries cited."""
        hits: dict[str, list[str]] = {}
        evidence: list[str] = []
        for dataset in self.upstream_datasets:
            found = {t: c for t, c in self.tags(dataset).items() if t in tags}
            if found:
                hits[dataset] = sorted(found)
                evidence += [e for c in found.values() for e in c.evidence]
        return hits, evidence

    def valid_approvals(self, role: str) -> list[readmodels.Approval]:
        """Approvals and rejections by ``role`` that count (signature, key, statement all verified)."""
        return [a for a in self.approvals if a.valid and a.role == role]
