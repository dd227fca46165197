"""Lineage query results, and the bounded breadth-first search every backend shares.

A traversal never enumerates paths. It walks level by level from the start
nodes, keeps a visited set (so cycles end), stops at ``depth`` hops or when
``max_nodes`` nodes are reached, and says which limit cut it short in
``truncated``. Each level is one backend call (``step``), so the cost is
proportional to the nodes reached, not to the number of paths.

Direction is the flow of data. With ``a --READ_BY--> r --WROTE--> b``:
upstream of ``b`` is ``r`` (depth 1) then ``a`` (depth 2); downstream of ``a``
is ``r`` then ``b``. Depth 0 returns the start nodes only.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, field_validator

from lineage.column_lineage import WHOLE_DATASET, merge

Direction = Literal["upstream", "downstream"]
DEFAULT_MAX_NODES = 10_000


class NodeRow(BaseModel):
    id: str
    kind: str
    namespace: str = ""
    name: str = ""
    version: str | None = None
    entity: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None


class EdgeRef(BaseModel):
    src: str
    type: str
    dst: str
    time: str | None = None


class Edge(NamedTuple):
    """An edge as backends return it and walks use it: a tuple, so that a deep walk does not
    build thousands of models it drops again. Results carry ``EdgeRef``; ``edge_refs`` converts."""

    src: str
    type: str
    dst: str
    time: str | None = None


def edge_refs(edges: Iterable[Edge]) -> list[EdgeRef]:
    """Public edge objects, sorted by (src, type, dst) so that answers are stable."""
    return [EdgeRef(src=e.src, type=e.type, dst=e.dst, time=e.time) for e in sorted(edges, key=edge_key)]


class Reached(BaseModel):
    id: str
    kind: str
    distance: int
    job: str | None = None


class Traversal(BaseModel):
    root: str
    direction: Direction
    depth: int | None
    as_of: str | None
    nodes: list[Reached]
    edges: list[EdgeRef]
    truncated: bool = False
    truncated_reason: str | None = None


class ColumnEdge(BaseModel):
    """``src.src_field`` flowed into ``dst.dst_field``; ``dst_field`` None: into the whole of ``dst``
    (an entry of the facet's ``dataset`` list: a join key, filter, group-by, sort...).

    Each transformation is ``{"type": DIRECT|INDIRECT, "subtype", "description", "masking"}``
    (``lineage.column_lineage``); legacy shapes older stores hold are read in this one.
    """

    src: str
    src_field: str
    dst: str
    dst_field: str | None
    run: str | None = None
    time: str | None = None
    transformations: list[dict] = []

    @field_validator("dst_field", mode="before")
    @classmethod
    def _whole_dataset(cls, value: str | None) -> str | None:
        return None if value == WHOLE_DATASET else value

    @field_validator("transformations", mode="before")
    @classmethod
    def _current_shape(cls, value: list) -> list[dict]:
        return merge(value)


class ColumnHop(ColumnEdge):
    direction: Direction
    distance: int


class ColumnLineage(BaseModel):
    dataset: str
    field: str | None
    edges: list[ColumnHop]
    truncated: bool = False


class PathResult(BaseModel):
    source: str
    target: str
    found: bool
    direction: Direction | None = None
    nodes: list[str] = []
    edges: list[EdgeRef] = []
    truncated: bool = False


# The projected graph as rows (``Store.projection``): each part's columns, its key first (KEY_WIDTH columns).
PROJECTION = {
    "nodes": ("id", "kind", "namespace", "name", "version", "entity", "first_seen", "last_seen"),
    "facets": ("node", "name", "value", "ord"),
    "edges": ("src", "type", "dst", "time"),
    "column_edges": ("src", "src_field", "dst", "dst_field", "run", "time", "transformations"),
}
KEY_WIDTH = {"nodes": 1, "facets": 2, "edges": 3, "column_edges": 4}
JSON_COLUMNS = {"nodes": (), "facets": (2,), "edges": (), "column_edges": (6,)}  # stored as JSON text


class Unreadable(NamedTuple):
    """A stored JSON value (a facet's, a column edge's transformations) that is not JSON: only a hand-edited
    store holds one, and it equals no value the ledger projects."""

    text: str


def stored_value(text: Any) -> Any:
    """A stored JSON column read back: its value, or ``Unreadable`` if it is not JSON text."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return Unreadable(text if isinstance(text, str) else repr(text))


JOB_TYPE_FACET = "_jobType"  # projection: the jobType facet's jobType, integration, processingType, upper-cased
CHECK_FACET = "_check"  # projection: a run of the job asserted on its inputs (dataQualityAssertions)
CHECK_JOB_TYPES = frozenset({"TEST"})  # dbt's tests; Great Expectations and others use dataQualityAssertions


def job_type_matches(stated: dict | None, wanted: Iterable[str]) -> bool:
    """Whether a job's ``_jobType`` names one of ``wanted`` as its jobType or its integration
    (case-insensitive: ``TEST``, ``model``, ``TASK``, ``DAG``, ``spark``). A job without one matches none."""
    named = {v for k, v in (stated or {}).items() if k in ("jobType", "integration")}
    return any(w.upper() in named for w in wanted)


def is_check(stated: dict | None, asserted: bool) -> bool:
    """A test or quality check: jobType TEST, or a run that asserted on its inputs."""
    return asserted or (stated or {}).get("jobType") in CHECK_JOB_TYPES


def edge_key(edge: Edge) -> tuple[str, str, str]:
    """The order answers list edges in: (src, type, dst)."""
    return edge.src, edge.type, edge.dst


Step = Callable[[list[str]], list[Edge]]


def far_end(edge: Edge, direction: Direction) -> str:
    return edge.src if direction == "upstream" else edge.dst


def bfs(
    starts: list[str], step: Step, direction: Direction, depth: int | None, max_nodes: int
) -> tuple[dict[str, int], list[Edge], str | None, dict[str, str]]:
    """Breadth-first search; returns (distance by node, edges, truncation reason, parent by node)."""
    distance = {s: 0 for s in starts}
    parent: dict[str, str] = {}
    edges: list[Edge] = []
    frontier, level, reason = list(starts), 0, None
    while frontier and (depth is None or level < depth):
        level += 1
        following: list[str] = []
        for edge in step(frontier):
            other, here = far_end(edge, direction), edge.dst if direction == "upstream" else edge.src
            if other not in distance:
                if len(distance) >= max_nodes:
                    reason = f"node cap of {max_nodes} reached"
                    break
                distance[other] = level
                parent[other] = here
                following.append(other)
            edges.append(edge)
        if reason:
            break
        frontier = following
    if reason is None and frontier and depth is not None and level == depth:
        if any(far_end(e, direction) not in distance for e in step(frontier)):
            reason = f"depth limit of {depth} reached"
    return distance, edges, reason, parent


def job_distances(starts: list[str], edges: Iterable[Edge | EdgeRef]) -> dict[str, int]:
    """How many runs lie on the shortest way from ``starts`` down to each node, over these edges.

    With ``a --READ_BY--> r1 --WROTE--> b --CONTINUED_BY--> b2 --READ_BY--> r2``: r1 and b are 1
    away, b2 too (a newer version of b is no further step), r2 is 2. A 0-1 BFS: entering a run costs 1.
    """
    out_of: dict[str, list[str]] = {}
    for e in edges:
        out_of.setdefault(e.src, []).append(e.dst)
    best = {s: 0 for s in starts}
    queue = deque(starts)
    while queue:
        node = queue.popleft()
        for nxt in out_of.get(node, ()):
            cost = best[node] + (1 if nxt.startswith("run:") else 0)
            if cost < best.get(nxt, cost + 1):
                best[nxt] = cost
                queue.appendleft(nxt) if cost == best[node] else queue.append(nxt)
    return best


def bfs_over(
    edges: Iterable[Edge], starts: list[str], direction: Direction, depth: int | None, max_nodes: int
) -> tuple[dict[str, int], list[Edge], str | None]:
    """``bfs`` over edges already fetched (every edge into, or out of, the reachable set): what a
    backend that finds the closure in one query returns from its ``walk``."""
    upstream = direction == "upstream"  # a step starts from an edge's dst upstream, its src downstream
    adjacency: dict[str, list[Edge]] = {}
    for edge in edges:
        adjacency.setdefault(edge.dst if upstream else edge.src, []).append(edge)
    distance, walked, reason, _ = bfs(
        starts, lambda ids: [e for i in ids for e in adjacency.get(i, ())], direction, depth, max_nodes
    )
    return distance, walked, reason
