"""Lineage query routes under ``/api/v1``: the same JSON as the CLI's ``--json``.

Registered by ``lineage.builtins`` through the ``register_routes`` hook, as a
plugin's routes are; every route needs the ``read`` scope (or public reads).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Query

from lineage.graph import Graph
from lineage.openlineage import format_time, parse_time
from lineage.query import DEFAULT_MAX_NODES, Direction
from lineage.server.deps import CurrentStore, require

router = APIRouter(tags=["lineage"], dependencies=[require("read")])


def as_of_time(value: str | None) -> str | None:
    return format_time(parse_time(value, "as_of")[0]) if value else None


@router.get("/nodes")
def node(store: CurrentStore, id: str = Query(..., description="Node id, e.g. dataset:s3://bucket/table")) -> dict:
    """A node with its facets and its edges (the CLI's `lineage show --json`)."""
    return Graph(store).node(id)


def _walk(direction: Direction) -> Callable[..., dict]:
    def handler(
        store: CurrentStore,
        id: str,
        depth: int | None = Query(None, ge=0),
        kind: list[str] = Query([]),
        as_of: str | None = None,
        max_nodes: int = Query(DEFAULT_MAX_NODES, ge=1, le=1_000_000),
        job_type: list[str] = Query([], max_length=100),
        include_failed: bool = False,
    ) -> dict:
        return (
            Graph(store)
            .traverse(
                id,
                direction,
                depth=depth,
                kinds=kind,
                as_of=as_of_time(as_of),
                job_types=job_type,
                max_nodes=max_nodes,
                include_failed=include_failed,
            )
            .model_dump()
        )

    handler.__name__ = direction
    handler.__doc__ = f"Everything {direction} of a node (the CLI's `lineage {direction} --json`)."
    return handler


router.get("/upstream")(_walk("upstream"))
router.get("/downstream")(_walk("downstream"))


@router.get("/impact")
def impact(
    store: CurrentStore,
    id: str,
    depth: int | None = Query(None, ge=0),
    as_of: str | None = None,
    max_nodes: int = Query(DEFAULT_MAX_NODES, ge=1, le=1_000_000),
    job_type: list[str] = Query([], max_length=100),
    include_failed: bool = False,
) -> dict:
    """What a node feeds, grouped by distance (the CLI's `lineage impact --json`)."""
    return Graph(store).impact(
        id, depth=depth, as_of=as_of_time(as_of), max_nodes=max_nodes, job_types=job_type, include_failed=include_failed
    )


@router.get("/path")
def path(
    store: CurrentStore,
    source: str = Query(..., alias="from"),
    target: str = Query(..., alias="to"),
    as_of: str | None = None,
) -> dict:
    """A shortest data-flow path between two nodes (the CLI's `lineage path --json`)."""
    return Graph(store).path(source, target, as_of=as_of_time(as_of)).model_dump()


@router.get("/search")
def search(
    store: CurrentStore, q: str, kind: list[str] = Query([]), limit: int = Query(50, ge=1, le=10_000)
) -> list[dict]:
    """Nodes whose id or name contains the text (the CLI's `lineage search --json`)."""
    return [r.model_dump() for r in Graph(store).search(q, kinds=kind, limit=limit)]


@router.get("/columns")
def columns(
    store: CurrentStore,
    dataset: str,
    field: str | None = None,
    depth: int | None = Query(None, ge=0),
    direct_only: bool = False,
) -> dict:
    """Column-level lineage of a dataset or one field (the CLI's `lineage columns --json`)."""
    return Graph(store).columns(dataset, field, depth=depth, direct_only=direct_only).model_dump()


@router.get("/history")
def history(store: CurrentStore, id: str) -> dict:
    """Versions, runs and ledger entries of a node over time (the CLI's `lineage history --json`)."""
    return Graph(store).history(id)
