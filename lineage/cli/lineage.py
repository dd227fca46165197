"""``auditgraph lineage ...``: questions about the graph."""

from __future__ import annotations

import click

from lineage.cli import render
from lineage.cli.options import (
    as_of_option,
    connect,
    domain_errors,
    emit_json,
    format_option,
    json_option,
    store_option,
    want_json,
)
from lineage.errors import IdError, NotFoundError
from lineage.graph import Graph
from lineage.query import DEFAULT_MAX_NODES, Traversal

KINDS = ("dataset", "model", "job", "run", "code")


@click.group()
def lineage():
    """Query the lineage graph: show, upstream, downstream, impact, path, search, history, columns.

    Ids are printed by every command and accepted by all of them:
    dataset:NAMESPACE/NAME[@VERSION], model:..., job:NAMESPACE/NAME, run:ID,
    code:URL@REVISION. A dataset may also be named by the URI you would paste
    (file:///tmp/x.csv, s3://bucket/key, dataset:file:///tmp/x.csv for the
    printed dataset:file//tmp/x.csv) or by an alias it declares in its
    symlinks facet (a Hive table name); ids are printed canonically.

    \b
    Example:
        auditgraph lineage upstream model:demo/churn-classifier --depth 4
    """


def traversal_options(fn):
    fn = click.option(
        "--depth", type=click.IntRange(min=0), default=None, help="Stop after this many hops (default: no limit)."
    )(fn)
    fn = click.option(
        "--kind", "kinds", multiple=True, type=click.Choice(KINDS), help="Only list nodes of this kind (repeatable)."
    )(fn)
    fn = click.option(
        "--max-nodes",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_NODES,
        show_default=True,
        help="Stop once this many nodes are reached; the result says it was truncated.",
    )(fn)
    return as_of_option(fn)


def print_traversal(walk: Traversal, fmt: str = "table") -> None:
    if fmt == "dot":
        click.echo(render.dot([n.id for n in walk.nodes], walk.edges))
    elif fmt == "mermaid":
        click.echo(render.mermaid([n.id for n in walk.nodes], walk.edges))
    else:
        title = f"{walk.direction} of {walk.root}" + (f" as of {walk.as_of}" if walk.as_of else "")
        render.table(title, ["distance", "kind", "id", "job"], ((n.distance, n.kind, n.id, n.job) for n in walk.nodes))
    if walk.truncated:
        render.note(f"truncated: {walk.truncated_reason}")


def job_type_option(fn):
    return click.option(
        "--job-type",
        "job_types",
        multiple=True,
        metavar="TYPE",
        help="Only list jobs (and their runs) whose jobType facet names TYPE as its jobType or "
        "integration, e.g. MODEL, TEST, TASK, DAG, SPARK (case-insensitive, repeatable).",
    )(fn)


def include_failed_option(fn):
    return click.option(
        "--include-failed",
        is_flag=True,
        help="Also list what runs that ended FAIL or ABORT wrote (left out by default: no later read binds to it).",
    )(fn)


def _walk(direction):
    @click.argument("node_id", metavar="ID")
    @store_option
    @traversal_options
    @job_type_option
    @format_option("dot", "mermaid")
    @domain_errors
    def command(node_id, store_url, depth, kinds, max_nodes, as_of, job_types, fmt, as_json, include_failed=False):
        with connect(store_url) as store:
            walk = Graph(store).traverse(
                node_id,
                direction,
                depth=depth,
                kinds=kinds,
                as_of=as_of,
                max_nodes=max_nodes,
                job_types=job_types,
                include_failed=include_failed,
            )
        if want_json(fmt, as_json):
            emit_json(walk.model_dump())
        else:
            print_traversal(walk, fmt)

    return include_failed_option(command) if direction == "downstream" else command


upstream = lineage.command("upstream")(_walk("upstream"))
upstream.help = """Everything that flowed into ID: runs, the data they read, the code that built them.

A dataset or model id starts from all its versions; a job id from all its runs.

\b
Example:
    auditgraph lineage upstream model:demo/churn-classifier --kind dataset
    auditgraph lineage upstream dataset:s3://demo-lake/features/churn.parquet --format dot | dot -Tsvg > up.svg
"""
downstream = lineage.command("downstream")(_walk("downstream"))
downstream.help = """Everything ID flowed into: the runs that read it and what they wrote.

--job-type keeps only the jobs of that type (and their runs) in the list; the
walk still goes through the others. What a run that ended FAIL or ABORT wrote
is left out unless --include-failed.

\b
Example:
    auditgraph lineage downstream dataset:s3://demo-lake/raw/customers.csv --depth 2 --json
    auditgraph lineage downstream dataset:s3://demo-lake/raw/customers.csv --include-failed
    auditgraph lineage downstream file:///tmp/orders.csv --job-type MODEL --kind job
"""


@lineage.command()
@click.argument("node_id", metavar="ID")
@store_option
@json_option
@domain_errors
def show(node_id, store_url, as_json):
    """One node: what it is, its facets, and its edges in and out.

    \b
    Example:
        auditgraph lineage show job:demo/train_churn_model
    """
    with connect(store_url) as store:
        node = Graph(store).node(node_id)
    if as_json:
        emit_json(node)
        return
    render.table(
        node["id"],
        ["field", "value"],
        [
            ("kind", node["kind"]),
            ("namespace", node["namespace"]),
            ("name", node["name"]),
            ("version", node["version"]),
            ("first seen", node["first_seen"]),
            ("last seen", node["last_seen"]),
            ("facets", ", ".join(node["facets"]) or "-"),
            *([("aliases", ", ".join(node["aliases"]))] if node["aliases"] else []),
            *([("fields", ", ".join(node["fields"]) or "-")] if "fields" in node else []),
        ],
    )
    edges = [("in", e["type"], e["src"]) for e in node["in"]] + [("out", e["type"], e["dst"]) for e in node["out"]]
    if edges:
        render.table(None, ["direction", "edge", "other end"], edges)


@lineage.command()
@click.argument("node_id", metavar="ID")
@store_option
@click.option("--depth", type=click.IntRange(min=0), default=None, help="Stop after this many hops.")
@click.option("--max-nodes", type=click.IntRange(min=1), default=DEFAULT_MAX_NODES, show_default=True)
@as_of_option
@job_type_option
@include_failed_option
@json_option
@domain_errors
def impact(node_id, store_url, depth, max_nodes, as_of, job_types, include_failed, as_json):
    """What breaks if ID is bad: the jobs, datasets and models downstream, by distance.

    Distance counts jobs: jobs that read ID and what they wrote are at 1.
    Tests and quality checks (jobType TEST, e.g. dbt tests, or runs that send
    dataQualityAssertions) are listed apart, as kind "check" ("checks" in --json).
    A model or dataset that only a failed run (FAIL or ABORT) wrote is not
    impacted: no later read binds to it; --include-failed lists it.

    \b
    Example:
        auditgraph lineage impact dataset:s3://demo-lake/raw/customers.csv
        auditgraph lineage impact dataset:duckdb/dev.main.raw_orders --job-type MODEL
        auditgraph lineage impact dataset:s3://demo-lake/raw/customers.csv --include-failed
    """
    with connect(store_url) as store:
        result = Graph(store).impact(
            node_id, depth=depth, as_of=as_of, max_nodes=max_nodes, job_types=job_types, include_failed=include_failed
        )
    if as_json:
        emit_json(result)
        return
    rows = [
        (lv["distance"], kind[:-1], item)
        for lv in result["levels"]
        for kind in ("jobs", "checks", "datasets", "models")
        for item in lv[kind]
    ]
    render.table(f"impact of {result['root']}", ["distance", "kind", "id"], rows)
    if result["truncated"]:
        render.note(f"truncated: {result['truncated_reason']}")


@lineage.command()
@click.argument("source", metavar="A")
@click.argument("target", metavar="B")
@store_option
@as_of_option
@format_option("dot", "mermaid")
@domain_errors
def path(source, target, store_url, as_of, fmt, as_json):
    """A shortest data-flow path from A down to B (or from B down to A). Exits 1 if none.

    \b
    Example:
        auditgraph lineage path dataset:s3://demo-lake/raw/customers.csv model:demo/churn-classifier
    """
    with connect(store_url) as store:
        result = Graph(store).path(source, target, as_of=as_of)
    if want_json(fmt, as_json):
        emit_json(result.model_dump())
    elif not result.found:
        pass
    elif fmt == "dot":
        click.echo(render.dot(result.nodes, result.edges))
    elif fmt == "mermaid":
        click.echo(render.mermaid(result.nodes, result.edges))
    else:
        render.table(f"path ({result.direction})", ["step", "id"], enumerate(result.nodes))
    if not result.found:
        raise click.ClickException(f"no data-flow path between {result.source} and {result.target}")


@lineage.command()
@click.argument("text")
@store_option
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS), help="Only this kind (repeatable).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
@domain_errors
def search(text, store_url, kinds, limit, as_json):
    """Find nodes whose id contains TEXT (case-insensitive).

    \b
    Example:
        auditgraph lineage search churn --kind model
    """
    with connect(store_url) as store:
        rows = Graph(store).search(text, kinds=kinds, limit=limit)
    if as_json:
        emit_json([r.model_dump() for r in rows])
    else:
        render.table(
            f"{len(rows)} match(es) for {text!r}",
            ["kind", "id", "first seen"],
            ((r.kind, r.id, r.first_seen) for r in rows),
        )


@lineage.command()
@click.argument("node_id", metavar="ID")
@store_option
@json_option
@domain_errors
def history(node_id, store_url, as_json):
    """Versions of a dataset or model, runs of a job, and the ledger entries about ID.

    \b
    Example:
        auditgraph lineage history dataset:s3://demo-lake/features/churn.parquet
    """
    with connect(store_url) as store:
        result = Graph(store).history(node_id)
    if as_json:
        emit_json(result)
        return
    for key in ("versions", "runs"):
        if key in result:
            render.table(
                f"{key} of {result['id']}",
                ["first seen", "id", "state / written by"],
                ((i["first_seen"], i["id"], _written(i)) for i in result[key]),
            )
    render.table(
        f"ledger entries about {result['id']}",
        ["seq", "event time", "kind", "actor"],
        ((e["seq"], e["event_time"], e["kind"], e["actor"]) for e in result["entries"]),
    )


@lineage.command()
@click.argument("target", metavar="DATASET[:FIELD]")
@store_option
@click.option("--depth", type=click.IntRange(min=0), default=None, help="Stop after this many hops.")
@click.option(
    "--direct-only",
    is_flag=True,
    help="Only DIRECT edges (values derived from the source field); leave out INDIRECT ones "
    "(join keys, filters, group-bys, sorts, windows, conditions).",
)
@json_option
@domain_errors
def columns(target, store_url, depth, direct_only, as_json):
    """Column-level lineage of a dataset, or of one field, in both directions.

    Each edge shows how the source field was used, as TYPE/SUBTYPE: DIRECT (IDENTITY,
    TRANSFORMATION, AGGREGATION) or INDIRECT (JOIN, GROUP_BY, FILTER, SORT, WINDOW,
    CONDITIONAL), "masked" if the value was obfuscated. An edge into "(whole dataset)"
    is a dependency of every field (the facet's dataset list: a join key, a filter...).
    A field must be named by the dataset's schema or its column lineage (exit 1 if not).
    --json gives each edge's type, subtype, description and masking.

    \b
    Example:
        auditgraph lineage columns dataset:s3://demo-lake/features/churn.parquet:monthly_minutes --direct-only
    """
    with connect(store_url) as store:
        dataset, field = _split_field(store, target)
        result = Graph(store).columns(dataset, field, depth=depth, direct_only=direct_only)
    if as_json:
        emit_json(result.model_dump())
        return
    render.table(
        f"column lineage of {result.dataset}" + (f":{field}" if field else ""),
        ["direction", "distance", "from", "to", "transformations"],
        (
            (
                h.direction,
                h.distance,
                f"{h.src}:{h.src_field}",
                f"{h.dst}:{h.dst_field}" if h.dst_field is not None else f"{h.dst} (whole dataset)",
                ", ".join(map(_transformation, h.transformations)),
            )
            for h in result.edges
        ),
    )


def _transformation(t: dict) -> str:
    """DIRECT/IDENTITY, INDIRECT/JOIN (masked)..."""
    return "/".join(filter(None, (t["type"], t["subtype"]))) + (" (masked)" if t["masking"] else "")


def _split_field(store, target: str) -> tuple[str, str | None]:
    """DATASET or DATASET:FIELD; dataset ids hold ':' themselves, so ask the store."""
    try:
        return Graph(store).resolve(target).id, None
    except (IdError, NotFoundError) as whole:
        dataset, sep, field = target.rpartition(":")
        if not sep or not field:
            raise whole
        return Graph(store).resolve(dataset).id, field


def _written(item: dict) -> str:
    """A run's state, or who wrote a version (marked when that run failed: no read binds to it)."""
    text = item.get("state") or item.get("written_by") or ""
    return f"{text} (failed: an attempted write)" if item.get("failed") else text
