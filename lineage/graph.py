"""The query service: what the lineage graph answers, on any backend.

``Graph(store)`` resolves ids (unescaped and aliased forms too), shows a node,
walks upstream and downstream, groups impact by distance, finds a path, lists a
node's history and its column lineage. It reads the store through the public
storage interface only (``lineage.store.base.Store``: ``nodes``, ``facets``,
``neighbors``, ``walk``, ``column_edges``, ``column_fields``, ``search_nodes``,
``facet_values``, ``entries``), so a new backend gets every answer by
implementing those. A ``Graph`` holds nothing but its store: make one per use.

Direction is the flow of data (``lineage.query``). With
``a --READ_BY--> r --WROTE--> b``: upstream of b is r then a, downstream of a
is r then b. Every walk is bounded (``depth``, ``max_nodes``) and says which
limit cut it short; cycles end, and depth 0 returns the start alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from typing import Any

from lineage.column_lineage import is_direct, schema_fields
from lineage.errors import IdError, Invalid, NotFoundError
from lineage.ids import (
    MAX_READINGS,
    NodeId,
    NodeKind,
    alternative_readings,
    check_length,
    is_bare_uri,
    kind_of,
    parse_id,
    shown,
)
from lineage.projection import FLOW_EDGES, is_failed
from lineage.query import (
    CHECK_FACET,
    DEFAULT_MAX_NODES,
    JOB_TYPE_FACET,
    ColumnHop,
    ColumnLineage,
    Direction,
    Edge,
    NodeRow,
    PathResult,
    Traversal,
    bfs,
    bfs_over,
    edge_key,
    edge_refs,
    is_check,
    job_distances,
    job_type_matches,
)
from lineage.store.base import Store
from lineage.store.batch import follow_aliases


class Graph:
    """The lineage graph of one store, as users ask about it."""

    def __init__(self, store: Store):
        self.store = store

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
            raise IdError(
                f"no node {shown(text)} in the store, and it has more than {MAX_READINGS} unescaped "
                "readings to try; write it as printed (namespace '/' as %2F, '@' as %40)"
            )
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
        named = [
            str(i.model_copy(update={"namespace": c.namespace, "name": c.name}))
            if (c := targets.get(str(i.entity())))
            else str(i)
            for i in ids
        ]
        return self.store.nodes(list(dict.fromkeys(named)))

    def _alias_targets(self, entities: Sequence[str]) -> dict[str, NodeId]:
        """The canonical dataset of each alias among ``entities``, following chains as the batch does
        (one query for all of them; a chain costs one more per hop)."""
        declared: dict[str, list[str]] = {}
        for e in self.store.neighbors(list(entities), "downstream", ("ALIAS_OF",), None):
            declared.setdefault(e.src, []).append(e.dst)

        def targets_of(current: str) -> list[str]:
            if current not in declared:
                declared[current] = [e.dst for e in self.store.neighbors([current], "downstream", ("ALIAS_OF",), None)]
            return declared[current]

        found = {entity: follow_aliases(entity, targets_of) for entity in list(declared)}
        return {entity: parse_id(canonical) for entity, canonical in found.items() if canonical}

    def node(self, text: str) -> dict[str, Any]:
        """A node with its facets and its edges in both directions."""
        row = self.resolve(text)
        types = FLOW_EDGES + ("VERSION_OF", "RUN_OF", "CHILD_OF", "DESCENDANT_OF", "ALIAS_OF")
        facets = self.store.facets(row.id)
        return {
            **row.model_dump(),
            "aliases": sorted(e.src for e in self.store.neighbors([row.id], "upstream", ("ALIAS_OF",), None)),
            "facets": facets,
            **({"fields": self._fields(row, facets)} if row.kind in _HAS_FIELDS else {}),
            "in": [e.model_dump() for e in edge_refs(self.store.neighbors([row.id], "upstream", types, None))],
            "out": [e.model_dump() for e in edge_refs(self.store.neighbors([row.id], "downstream", types, None))],
        }

    def traverse(
        self,
        text: str,
        direction: Direction,
        *,
        depth: int | None = None,
        kinds: Sequence[str] = (),
        as_of: str | None = None,
        max_nodes: int = DEFAULT_MAX_NODES,
        job_types: Sequence[str] = (),
        include_failed: bool = False,
    ) -> Traversal:
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
        distance, edges, reason = self.store.walk(starts, direction, FLOW_EDGES, as_of, depth, max_nodes)
        if direction == "downstream" and not include_failed:
            distance, edges = self._without_failed_writes(starts, distance, edges)
        nodes = self._annotate(distance)
        if kinds:
            nodes = [n for n in nodes if _prefix(n["id"]) in kinds]
        if job_types:
            nodes = self._of_job_types(nodes, job_types)
        inside = [e._asdict() for e in sorted(edges, key=edge_key) if e.src in distance and e.dst in distance]
        # one validation of plain dicts builds the whole result (far cheaper than a model per node and edge)
        return Traversal.model_validate(
            {
                "root": row.id,
                "direction": direction,
                "depth": depth,
                "as_of": as_of,
                "nodes": nodes,
                "edges": inside,
                "truncated": reason is not None,
                "truncated_reason": reason,
            }
        )

    def impact(
        self,
        text: str,
        *,
        depth: int | None = None,
        as_of: str | None = None,
        max_nodes: int = DEFAULT_MAX_NODES,
        job_types: Sequence[str] = (),
        include_failed: bool = False,
    ) -> dict[str, Any]:
        """The jobs, datasets and models downstream of a node, grouped by distance.

        Distance counts jobs: the jobs that read the node and what they wrote are
        at distance 1, the jobs that read those at distance 2, and so on. Tests and
        quality checks (query.is_check) are listed apart, as ``checks``; ``job_types``
        keeps only the jobs and checks of those types.
        """
        walk = self.traverse(
            text,
            "downstream",
            depth=depth,
            as_of=as_of,
            max_nodes=max_nodes,
            job_types=job_types,
            include_failed=include_failed,
        )
        groups: dict[int, dict[str, set[str]]] = {}
        runs_away = job_distances([n.id for n in walk.nodes if n.distance == 0], walk.edges)
        for n in walk.nodes:
            if n.distance == 0 or n.kind in (NodeKind.RUN, NodeKind.CODE):
                continue
            level = (
                runs_away[n.id]
                if n.id in runs_away
                else min((runs_away.get(r.id, 1) for r in walk.nodes if r.job == n.id), default=1)
            )
            if level == 0:  # a later version the start continues into: the start itself, not impact
                continue
            target = n.id if n.kind == NodeKind.JOB else str(parse_id(n.id).entity())
            group = groups.setdefault(level, {"jobs": set(), "datasets": set(), "models": set()})
            group[{"job": "jobs", "dataset": "datasets", "model": "models"}[_prefix(n.id)]].add(target)
        checks = self._checks(sorted({j for g in groups.values() for j in g["jobs"]}))
        for group in groups.values():
            group["checks"], group["jobs"] = group["jobs"] & checks, group["jobs"] - checks
        levels = [{"distance": d, **{k: sorted(v) for k, v in g.items()}} for d, g in sorted(groups.items())]
        return {
            "root": walk.root,
            "as_of": as_of,
            "levels": levels,
            "truncated": walk.truncated,
            "truncated_reason": walk.truncated_reason,
        }

    def path(
        self, source: str, target: str, *, max_nodes: int = DEFAULT_MAX_NODES, as_of: str | None = None
    ) -> PathResult:
        """A shortest data-flow path from source down to target (or, failing that, up to it)."""
        a, b = self.resolve(source), self.resolve(target)
        targets = set(self._expand(b, as_of))
        for direction in ("downstream", "upstream"):
            step = lambda ids, d=direction: self.store.neighbors(ids, d, FLOW_EDGES, as_of)  # noqa: E731
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
                return PathResult(
                    source=a.id,
                    target=b.id,
                    found=True,
                    direction=direction,
                    nodes=_bracket(a.id, chain, b.id),
                    edges=edge_refs(used),
                )
        return PathResult(source=a.id, target=b.id, found=False, truncated=reason is not None)

    def search(self, text: str, *, kinds: Sequence[str] = (), limit: int = 50) -> list[NodeRow]:
        """Up to ``limit`` (1 to 10000) nodes whose id contains ``text``, case-insensitive, of these
        ``kinds`` (dataset, model, job, run, code; empty: any), shortest id first."""
        if not text.strip():
            raise Invalid("search text is empty")
        if not 1 <= limit <= 10_000:
            raise Invalid(f"limit must be between 1 and 10000, got {limit}")
        return self.store.search_nodes(text, list(kinds), limit)

    def history(self, text: str) -> dict[str, Any]:
        """Versions (of a dataset or model), runs (of a job) or ledger entries (of anything) over time."""
        row = self.resolve(text)
        result: dict[str, Any] = {"id": row.id, "kind": row.kind}
        if row.kind in (NodeKind.DATASET, NodeKind.MODEL, NodeKind.JOB):
            edge = "RUN_OF" if row.kind == NodeKind.JOB else "VERSION_OF"
            members = [e.src for e in self.store.neighbors([row.id], "upstream", (edge,), None)]
            result["runs" if edge == "RUN_OF" else "versions"] = self._timeline(members)
        subjects = [row.id] + [r["id"] for r in result.get("runs", [])]
        entries = [e for s in subjects for e in self.store.entries(subject=s, limit=1000)]
        result["entries"] = [
            {
                "seq": e.seq,
                "recorded_at": e.recorded_at,
                "kind": e.kind,
                "subject": e.subject,
                "event_time": e.event_time,
                "actor": e.actor,
                "hash": e.hash,
            }
            for e in sorted(entries, key=lambda e: e.seq)
        ]
        return result

    def columns(
        self,
        dataset: str,
        field: str | None = None,
        *,
        depth: int | None = None,
        max_nodes: int = DEFAULT_MAX_NODES,
        direct_only: bool = False,
    ) -> ColumnLineage:
        """Column-level lineage of a dataset (or one of its fields), upstream and downstream.

        With ``a.x --DIRECT--> b.y`` and ``a.k --INDIRECT/JOIN--> b`` (the whole of b): upstream of
        ``b.y`` is ``a.x`` and ``a.k``; downstream of ``a.k`` is b (every field of it), so the walk
        goes on from all of b's edges. ``direct_only`` walks DIRECT edges only. A field that neither
        the dataset's schema facet nor any column edge names is refused (NotFoundError).
        """
        _check_limits(depth, max_nodes)
        row = self.resolve(dataset)
        entity = str(parse_id(row.id).entity()) if row.entity else row.id
        if field is not None and field not in self._fields(row, self.store.facets(row.id)):
            raise NotFoundError(
                f"{entity} has no field {shown(field)}: neither its schema facet nor any "
                "column lineage names it (see 'auditgraph lineage show')"
            )
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
        for e in self.store.neighbors(entities, "upstream", ("ALIAS_OF",), None) if entities else ():
            aliases.setdefault(e.dst, []).append(e.src)
        lookup = keys + [(a, f) for e, f in keys for a in aliases.get(e, ())]
        edges = self.store.column_edges(lookup, direction)
        ends = sorted({x for edge in edges for x in (edge.src, edge.dst) if x.startswith("dataset:")})
        canonical = {k: str(v) for k, v in self._alias_targets(ends).items()} if ends else {}
        if not canonical:
            return edges
        return [
            edge.model_copy(update={"src": canonical.get(edge.src, edge.src), "dst": canonical.get(edge.dst, edge.dst)})
            for edge in edges
        ]

    # --- helpers -----------------------------------------------------------

    def _expand(self, row: NodeRow, as_of: str | None) -> list[str]:
        if row.kind in (NodeKind.DATASET, NodeKind.MODEL, NodeKind.JOB):
            edge = "RUN_OF" if row.kind == NodeKind.JOB else "VERSION_OF"
            members = [e.src for e in self.store.neighbors([row.id], "upstream", (edge,), as_of)]
            return members or [row.id]
        return [row.id]

    def _annotate(self, distance: dict[str, int]) -> list[dict[str, Any]]:
        """The reached nodes with their kind (read from the id) and, for runs, their job; jobs are
        added at the distance of their nearest run."""
        runs = [i for i in distance if i.startswith("run:")]
        job_of = {e.src: e.dst for e in self.store.neighbors(runs, "downstream", ("RUN_OF",), None)} if runs else {}
        reached = [{"id": i, "kind": kind_of(i), "distance": d, "job": job_of.get(i)} for i, d in distance.items()]
        jobs: dict[str, int] = {}
        for run, job in job_of.items():
            jobs[job] = min(jobs.get(job, distance[run]), distance[run])
        reached += [
            {"id": j, "kind": NodeKind.JOB, "distance": d, "job": None} for j, d in jobs.items() if j not in distance
        ]
        return sorted(reached, key=lambda n: (n["distance"], n["id"]))

    def _fields(self, row: NodeRow, facets: dict[str, Any]) -> list[str]:
        """A dataset's (or version's) fields: those its schema facet lists and those column lineage names."""
        entity = row.entity or row.id
        named = set(schema_fields(facets.get("schema")))
        if row.entity:
            named.update(schema_fields(self.store.facets(row.entity).get("schema")))
        return sorted(named | self.store.column_fields(entity))

    def _of_job_types(self, nodes: list[dict[str, Any]], wanted: Sequence[str]) -> list[dict[str, Any]]:
        """The nodes that are no job or run, and the jobs (and runs of jobs) of a wanted type."""
        job = {
            n["id"]: n["id"] if n["kind"] == NodeKind.JOB else n["job"]
            for n in nodes
            if n["kind"] in (NodeKind.JOB, NodeKind.RUN)
        }
        types = self.store.facet_values(sorted({j for j in job.values() if j}), JOB_TYPE_FACET)
        return [n for n in nodes if n["id"] not in job or job_type_matches(types.get(job[n["id"]]), wanted)]

    def _checks(self, jobs: list[str]) -> set[str]:
        """Which of these jobs are tests or quality checks."""
        if not jobs:
            return set()
        types, marked = self.store.facet_values(jobs, JOB_TYPE_FACET), self.store.facet_values(jobs, CHECK_FACET)
        return {j for j in jobs if is_check(types.get(j), j in marked)}

    def _without_failed_writes(
        self, starts: list[str], distance: dict[str, int], edges: list[Edge]
    ) -> tuple[dict[str, int], list[Edge]]:
        """The walk without the WROTE edges of failed runs (store/binding.py), walked again over what is left."""
        runs = [i for i in distance if i.startswith("run:")]
        failed = (
            {r for r, state in self.store.facet_values(runs, "_state").items() if is_failed(state)} if runs else set()
        )
        if not failed:
            return distance, edges
        kept = [e for e in edges if not (e.type == "WROTE" and e.src in failed)]
        reached, walked, _ = bfs_over(kept, starts, "downstream", None, max(len(distance), 1))
        return reached, walked

    def _timeline(self, members: list[str]) -> list[dict[str, Any]]:
        rows = self.store.nodes(members)
        wrote = {e.dst: e.src for e in self.store.neighbors(members, "upstream", ("WROTE",), None)}
        out = []
        for r in sorted(rows.values(), key=lambda r: (r.first_seen or "", r.id)):
            item: dict[str, str | bool | None] = {
                "id": r.id,
                "version": r.version,
                "first_seen": r.first_seen,
                "last_seen": r.last_seen,
            }
            if r.kind == NodeKind.RUN:
                item["state"] = (self.store.facets(r.id).get("_state") or {}).get("eventType")
            elif r.id in wrote:
                item["written_by"] = wrote[r.id]
                # an attempted write: no read binds to it (store/binding.py)
                item["failed"] = is_failed(self.store.facets(wrote[r.id]).get("_state"))
            out.append(item)
        return out


_HAS_FIELDS = (NodeKind.DATASET, NodeKind.DATASET_VERSION, NodeKind.MODEL, NodeKind.MODEL_VERSION)


def _prefix(node_id: str) -> str:
    return node_id.partition(":")[0]


def _bracket(source: str, chain: list[str], target: str) -> list[str]:
    return ([source] if chain[0] != source else []) + chain + ([target] if chain[-1] != target else [])


def _check_limits(depth: int | None, max_nodes: int) -> None:
    if depth is not None and depth < 0:
        raise Invalid(f"depth must be 0 or more, got {depth}")
    if max_nodes < 1:
        raise Invalid(f"max nodes must be at least 1, got {max_nodes}")
