"""Identities and job metadata (issue 15, items 5-8 and 11), on every backend.

Symlinked identities are one dataset; pasted URIs name the dataset they point at;
jobType facets let queries tell models, tasks and tests apart; the parent facet's
root links a task run to its DAG run; lenient time reading warns, naming the field.
"""

from __future__ import annotations

import itertools
import json
import re

import httpx
import pytest
from click.testing import CliRunner
from conftest import CORPUS, ingest_events, live_server, run_event, snapshot

from lineage.cli import cli
from lineage.errors import IdError, NotFoundError
from lineage.graph import Graph
from lineage.ids import dataset_id
from lineage.openlineage import parse_event
from lineage.server import auth
from lineage.server.app import ServerConfig

S3A = {"namespace": "s3a://lake", "name": "raw/orders"}
HIVE = {"namespace": "hive://metastore:9083", "name": "raw.orders"}
CANONICAL, ALIAS = "dataset:s3a://lake/raw/orders", "dataset:hive://metastore:9083/raw.orders"
WRITER, READER, LATER = ("aaaaaaaa-0000-4000-8000-00000000000" + c for c in "123")


def spark_write(run: str = WRITER, time: str = "2024-05-01T10:00:00Z") -> dict:
    """Spark writes the physical location and declares the Hive table as its symlink."""
    out = {**S3A, "facets": {"symlinks": {"identifiers": [{**HIVE, "type": "TABLE"}]}}}
    return run_event("spark_app.write_orders", run, namespace="spark", time=time, outputs=[out])


def hive_read(run: str = READER, time: str = "2024-05-01T11:00:00Z", out: str = "mart.daily") -> dict:
    """The next job names the table by its Hive name only."""
    return run_event("daily_orders", run, namespace="trino", time=time, inputs=[HIVE], outputs=[("warehouse", out)])


def one_by_one(store, events: list[dict]) -> None:
    for event in events:  # separate batches, as separate HTTP posts would be
        ingest_events(store, [event])


# --- symlinks: one dataset, whatever the arrival order ------------------------------------------


@pytest.mark.parametrize("symlink_first", [True, False], ids=["symlink-first", "symlink-after-the-read"])
def test_a_read_by_the_hive_name_reaches_the_spark_writer_upstream_and_by_path(store, symlink_first):
    one_by_one(store, [spark_write(), hive_read()] if symlink_first else [hive_read(), spark_write()])
    upstream = {n.id for n in Graph(store).traverse("dataset:warehouse/mart.daily", "upstream").nodes}
    assert f"run:{WRITER}" in upstream and "job:spark/spark_app.write_orders" in upstream
    assert f"{CANONICAL}@{WRITER}" in upstream
    assert not any(i.startswith(ALIAS) for i in upstream)
    path = Graph(store).path(ALIAS, "dataset:warehouse/mart.daily")
    assert path.found and path.source == CANONICAL and path.nodes[1:3] == [f"{CANONICAL}@{WRITER}", f"run:{READER}"]


def test_symlinked_identities_give_one_graph_in_every_arrival_order_and_after_a_rebuild(store, tmp_path):
    events = [spark_write(), hive_read(), hive_read(LATER, "2024-05-01T12:00:00Z", "mart.weekly")]
    graphs = []
    for order in itertools.permutations(events):
        one_by_one(store, list(order))
        graphs.append(snapshot(store))
        store.rebuild()
        assert snapshot(store) == graphs[-1], "a rebuild changed the graph"
        _forget_ledger(store)
    first = graphs[0]
    assert all(g == first for g in graphs[1:])
    assert [src for src, type_, dst in first["edges"] if (type_, dst) == ("ALIAS_OF", CANONICAL)] == [ALIAS]
    assert sorted(i for (i,) in first["nodes"] if i.startswith("dataset:") and "@" in i) == sorted(
        [f"{CANONICAL}@{WRITER}", f"dataset:warehouse/mart.daily@{READER}", f"dataset:warehouse/mart.weekly@{LATER}"]
    )


def _forget_ledger(store) -> None:
    """Empty the store (ledger and graph) so the next arrival order starts from nothing."""
    if hasattr(store, "drop_everything"):
        store.drop_everything(confirm=True)
        return
    with store._tx() as db:
        for table in ("ledger", "nodes", "facets", "edges", "column_edges", "tiles"):
            db.execute(f"DELETE FROM {table}")
        db.execute("DELETE FROM meta WHERE key = 'tree_size'")


def test_show_lists_the_aliases_and_every_command_accepts_one(store):
    one_by_one(store, [hive_read(), spark_write()])
    shown = Graph(store).node(ALIAS)
    assert (shown["id"], shown["aliases"]) == (CANONICAL, [ALIAS])
    assert Graph(store).resolve(f"{ALIAS}@{WRITER}").id == f"{CANONICAL}@{WRITER}"
    assert [v["id"] for v in Graph(store).history(ALIAS)["versions"]] == [f"{CANONICAL}@{WRITER}"]
    assert Graph(store).impact(ALIAS)["levels"][0]["jobs"] == ["job:trino/daily_orders"]
    assert Graph(store).traverse(ALIAS, "downstream").root == CANONICAL
    assert [r.id for r in Graph(store).search("raw.orders")] == [ALIAS]


def test_the_smallest_declaring_dataset_is_canonical_and_the_declarers_are_one_dataset(store):
    other = {
        "namespace": "s3a://archive",
        "name": "raw/orders",
        "facets": {"symlinks": {"identifiers": [{**HIVE, "type": "TABLE"}]}},
    }
    archive = run_event(
        "archive",
        "aaaaaaaa-0000-4000-8000-000000000009",
        namespace="spark",
        time="2024-05-01T09:00:00Z",
        outputs=[other],
    )
    one_by_one(store, [hive_read(), spark_write(), archive])  # s3a://archive... < s3a://lake...
    assert Graph(store).resolve(ALIAS).id == "dataset:s3a://archive/raw/orders"
    upstream = {n.id for n in Graph(store).traverse("dataset:warehouse/mart.daily", "upstream").nodes}
    assert f"run:{WRITER}" in upstream  # the read still reaches what was written before it, under either path
    # two datasets declaring one table are one dataset: the larger id is an alias of the smaller
    assert Graph(store).resolve(CANONICAL).id == "dataset:s3a://archive/raw/orders"


def test_a_symlinks_facet_that_breaks_its_spec_is_kept_with_a_warning_and_makes_no_alias(store):
    bad = run_event("w", namespace="spark", outputs=[{**S3A, "facets": {"symlinks": {"identifiers": [{"name": "x"}]}}}])
    report = ingest_events(store, [bad, hive_read()])
    assert any("outputs[0].facets.symlinks: identifiers[0] needs namespace and name" in w for _, w in report.warnings)
    assert Graph(store).resolve(ALIAS).id == ALIAS and Graph(store).node(CANONICAL)["aliases"] == []


# --- job types: tests and checks apart, filters -------------------------------------------------


def dbt(name: str, job_type: str, **kw) -> dict:
    facets = {"jobType": {"processingType": "BATCH", "integration": "DBT", "jobType": job_type}}
    return run_event(name, namespace="dbt", job_facets=facets, **kw)


def dbt_project() -> list[dict]:
    asserted = {
        "namespace": "duckdb",
        "name": "stg_orders",
        "inputFacets": {
            "dataQualityAssertions": {"assertions": [{"assertion": "not_null", "success": True, "column": "id"}]}
        },
    }
    return [
        dbt("stg_orders", "MODEL", inputs=[("duckdb", "raw_orders")], outputs=[("duckdb", "stg_orders")]),
        dbt("not_null_stg_orders_id", "TEST", inputs=[("duckdb", "stg_orders")]),
        run_event("expectations_suite", namespace="ge", inputs=[asserted]),
        run_event(
            "export",
            namespace="airflow",
            inputs=[("duckdb", "stg_orders")],
            outputs=[("s3://out", "orders")],
            job_facets={"jobType": {"processingType": "BATCH", "integration": "AIRFLOW", "jobType": "TASK"}},
        ),
    ]


def test_impact_lists_tests_and_quality_checks_apart_from_the_jobs_they_check(store):
    ingest_events(store, dbt_project())
    levels = Graph(store).impact("dataset:duckdb/raw_orders")["levels"]
    assert [(lv["distance"], lv["jobs"], lv["checks"]) for lv in levels] == [
        (1, ["job:dbt/stg_orders"], []),
        (2, ["job:airflow/export"], ["job:dbt/not_null_stg_orders_id", "job:ge/expectations_suite"]),
    ]
    assert Graph(store).node("job:dbt/stg_orders")["facets"]["_jobType"] == {
        "jobType": "MODEL",
        "integration": "DBT",
        "processingType": "BATCH",
    }


def test_job_type_filters_impact_and_downstream_by_type_or_integration(store):
    ingest_events(store, dbt_project())
    impact = Graph(store).impact("dataset:duckdb/raw_orders", job_types=["model", "TASK"])
    assert [(lv["jobs"], lv["checks"]) for lv in impact["levels"]] == [
        (["job:dbt/stg_orders"], []),
        (["job:airflow/export"], []),
    ]
    walk = Graph(store).traverse("dataset:duckdb/raw_orders", "downstream", job_types=["DBT"], kinds=["job"])
    assert [n.id for n in walk.nodes] == ["job:dbt/stg_orders", "job:dbt/not_null_stg_orders_id"]
    runs = Graph(store).traverse("dataset:duckdb/raw_orders", "downstream", job_types=["TEST"], kinds=["run"]).nodes
    assert [n.job for n in runs] == ["job:dbt/not_null_stg_orders_id"]


@pytest.mark.slow
def test_job_type_is_a_query_parameter_of_impact_and_downstream_over_http(store):
    ingest_events(store, dbt_project())
    token = auth.create_key(store, "reader", ["read"], "test")[1]
    with live_server(ServerConfig(store_url=store.url, webhooks=False)) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            impact = client.get("/api/v1/impact", params={"id": "dataset:duckdb/raw_orders", "job_type": "TEST"})
            walk = client.get("/api/v1/downstream", params=[("id", "file:///nowhere.csv")])
            down = client.get(
                "/api/v1/downstream",
                params=[
                    ("id", "dataset:duckdb/raw_orders"),
                    ("kind", "job"),
                    ("job_type", "model"),
                    ("job_type", "task"),
                ],
            )
    assert impact.status_code == 200
    assert [(lv["jobs"], lv["checks"]) for lv in impact.json()["levels"]] == [
        ([], []),
        ([], ["job:dbt/not_null_stg_orders_id"]),
    ]
    assert walk.status_code == 404
    assert [n["id"] for n in down.json()["nodes"]] == ["job:dbt/stg_orders", "job:airflow/export"]


def test_the_cli_prints_checks_apart_and_the_aliases_of_a_dataset(sqlite_store, tmp_path):
    store = sqlite_store  # the CLI reads the same Store API, tested on both backends above
    ingest_events(store, dbt_project() + [hive_read(), spark_write()])
    url = store.url
    impact = CliRunner().invoke(
        cli, ["lineage", "impact", "dataset:duckdb/raw_orders", "--store", url, "--job-type", "TEST", "--json"]
    )
    assert impact.exit_code == 0, impact.output
    assert json.loads(impact.stdout)["levels"][1]["checks"] == ["job:dbt/not_null_stg_orders_id"]
    show = CliRunner().invoke(cli, ["lineage", "show", ALIAS, "--store", url])
    assert show.exit_code == 0 and ALIAS in show.stdout and "aliases" in show.stdout and CANONICAL in show.stdout
    helped = CliRunner().invoke(cli, ["lineage", "--help"])
    assert "file:///tmp/x.csv" in helped.stdout and "symlinks" in helped.stdout
    assert "--job-type" in CliRunner().invoke(cli, ["lineage", "impact", "--help"]).stdout


# --- the parent facet's root --------------------------------------------------------------------

DAG_RUN, GROUP_RUN, TASK_RUN = ("bbbbbbbb-0000-4000-8000-00000000000" + c for c in "123")


def task_event(root: dict | None) -> dict:
    parent = {"run": {"runId": GROUP_RUN}, "job": {"namespace": "airflow", "name": "etl.group"}}
    if root is not None:
        parent["root"] = root
    return run_event("etl.group.load", TASK_RUN, namespace="airflow", run_facets={"parent": parent})


def test_a_task_run_links_to_its_dag_run_through_the_root_when_the_parent_sends_nothing(store):
    report = ingest_events(
        store, [task_event({"run": {"runId": DAG_RUN}, "job": {"namespace": "airflow", "name": "etl"}})]
    )
    assert report.warnings == []
    out = {(e["type"], e["dst"]) for e in Graph(store).node(f"run:{TASK_RUN}")["out"]}
    assert {("CHILD_OF", f"run:{GROUP_RUN}"), ("DESCENDANT_OF", f"run:{DAG_RUN}")} <= out
    dag = Graph(store).node(f"run:{DAG_RUN}")
    assert [(e["type"], e["dst"]) for e in dag["out"]] == [("RUN_OF", "job:airflow/etl")]
    assert [(e["type"], e["src"]) for e in dag["in"]] == [("DESCENDANT_OF", f"run:{TASK_RUN}")]


def test_a_malformed_root_is_a_warning_and_the_parent_still_links(store):
    report = ingest_events(store, [task_event({"run": {}, "job": {"namespace": "airflow", "name": "etl"}})])
    assert [w for _, w in report.warnings] == ["run.facets.parent.root: run.runId is missing; the root is not used"]
    out = {(e["type"], e["dst"]) for e in Graph(store).node(f"run:{TASK_RUN}")["out"]}
    assert ("CHILD_OF", f"run:{GROUP_RUN}") in out and not any(t == "DESCENDANT_OF" for t, _ in out)


# --- pasted URIs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "namespace, name, pasted",
    [
        ("file", "/tmp/spark/out.csv", "dataset:file:///tmp/spark/out.csv"),
        ("file", "/tmp/spark/out.csv", "file:///tmp/spark/out.csv"),
        ("s3://bucket", "key/part-0.parquet", "s3://bucket/key/part-0.parquet"),
        ("hdfs://nn:8020", "/warehouse/t", "hdfs://nn:8020/warehouse/t"),
        ("hdfs://nn:8020", "/warehouse/t", "dataset:hdfs://nn:8020/warehouse/t"),
    ],
)
def test_a_pasted_uri_names_the_dataset_written_at_that_location(store, namespace, name, pasted):
    ingest_events(store, [run_event("writer", WRITER, outputs=[(namespace, name)])])
    assert Graph(store).resolve(pasted).id == dataset_id(namespace, name)
    assert Graph(store).resolve(f"{pasted}@{WRITER}").id == dataset_id(namespace, name, WRITER)
    assert "job:test/writer" in {n.id for n in Graph(store).traverse(pasted, "upstream").nodes}


def test_a_pasted_uri_that_names_two_datasets_is_ambiguous_and_one_that_names_none_is_not_found(store):
    ingest_events(
        store,
        [
            run_event(
                "w",
                outputs=[("file", "/tmp/a"), ("file:///tmp", "a"), ("hdfs://nn:8020", "/t"), ("hdfs://nn:8020", "t")],
            )
        ],
    )
    for pasted in ("file:///tmp/a", "dataset:file:///tmp/a"):
        with pytest.raises(
            IdError, match=re.escape("ambiguous; it could be any of: dataset:file//tmp/a, dataset:file://%2Ftmp/a")
        ):
            Graph(store).resolve(pasted)
    assert Graph(store).resolve("hdfs://nn:8020/t").id == "dataset:hdfs://nn:8020/t"  # the canonical reading wins
    with pytest.raises(NotFoundError, match="no node 'file:///missing.csv'"):
        Graph(store).resolve("file:///missing.csv")


# --- lenient reading warns ------------------------------------------------------------------------


def test_a_date_only_nominal_time_from_the_spec_serde_example_is_accepted_with_a_warning_naming_the_field(store):
    event = json.loads((CORPUS / "valid/OpenLineage/client/python/tests/serde_example_run_event.json").read_text())
    report = ingest_events(store, [event])
    assert report.accepted == 1
    warnings = [w for _, w in report.warnings]
    assert (
        "run.facets.nominalTime.nominalStartTime: '2020-01-01' is a date without a time; "
        "read as 2020-01-01T00:00:00.000000Z" in warnings
    )
    assert (
        "run.facets.nominalTime.nominalEndTime: '2020-01-02' is a date without a time; "
        "read as 2020-01-02T00:00:00.000000Z" in warnings
    )


@pytest.mark.parametrize(
    "patch, warning",
    [
        (
            {"eventTime": "20240501T100000Z"},
            "eventTime: '20240501T100000Z' is not an RFC 3339 date-time; read as 2024-05-01T10:00:00.000000Z",
        ),
        (
            {"eventTime": "2024-05-01T10:00Z"},
            "eventTime: '2024-05-01T10:00Z' is not an RFC 3339 date-time; read as 2024-05-01T10:00:00.000000Z",
        ),
        (
            {"nominalTime": {"nominalStartTime": "2024-05-01T10:00:00"}},
            "run.facets.nominalTime.nominalStartTime: '2024-05-01T10:00:00' has no time zone; read as UTC",
        ),
        (
            {"nominalTime": {"nominalStartTime": "2024-05-01T10:00:00Z", "nominalEndTime": "2024-05-02"}},
            "run.facets.nominalTime.nominalEndTime: '2024-05-02' is a date without a time; read as 2024-05-02T00:00:00.000000Z",
        ),
        (
            {"nominalTime": {"nominalStartTime": "tomorrow"}},
            "run.facets.nominalTime: nominalStartTime: expected an ISO 8601 date-time such as 2024-01-31T12:00:00Z, "
            "got 'tomorrow'; facet kept but not used",
        ),
    ],
)
def test_every_time_read_leniently_is_a_warning_naming_its_field(patch, warning):
    event = run_event("j")
    if "nominalTime" in patch:
        event["run"]["facets"]["nominalTime"] = patch["nominalTime"]
    else:
        event.update(patch)
    assert parse_event(event).warnings == [warning]


def _declaring_write(run: str, namespace: str, time: str) -> dict:
    out = {
        "namespace": namespace,
        "name": "raw/orders",
        "facets": {"symlinks": {"identifiers": [{**HIVE, "type": "TABLE"}]}},
    }
    return run_event(
        "write_" + namespace.split(":")[0],
        run,
        namespace="spark",
        time=time,
        inputs=[("file", "/in/orders.csv")],
        outputs=[out],
    )


TWO_DECLARERS = [
    _declaring_write("aaaaaaaa-0000-4000-8000-000000000020", "s3a://lake", "2026-03-01T00:00:00Z"),
    hive_read("aaaaaaaa-0000-4000-8000-000000000021", "2026-03-01T01:00:00Z", "mart.report"),
    _declaring_write("aaaaaaaa-0000-4000-8000-000000000022", "s3://lake", "2026-03-02T00:00:00Z"),
    hive_read("aaaaaaaa-0000-4000-8000-000000000023", "2026-03-02T01:00:00Z", "mart.report2"),
]
TWO_DECLARER_ORDERS = ((0, 1, 2, 3), (3, 2, 1, 0), (1, 2, 0, 3), (2, 0, 3, 1))
FORMER_CANONICAL = ("dataset:s3a://lake/raw/orders",)  # canonical until s3:// declares the same table


def test_two_datasets_declaring_one_symlink_are_one_dataset_and_no_read_loses_its_writer(store):
    """A review found the second declarer (s3:// after s3a://) moved earlier reads to a version nobody wrote."""
    graphs = []
    for order in TWO_DECLARER_ORDERS:
        one_by_one(store, [TWO_DECLARERS[i] for i in order])
        upstream = {n.id for n in Graph(store).traverse("dataset:warehouse/mart.report", "upstream").nodes}
        assert "run:aaaaaaaa-0000-4000-8000-000000000020" in upstream, order  # the s3a writer it really read
        assert Graph(store).path("dataset:file//in/orders.csv", "dataset:warehouse/mart.report").found
        graphs.append(snapshot(store))
        store.rebuild()
        assert snapshot(store) == graphs[-1]
        _forget_ledger(store)
    for g in graphs:  # all but the former canonical's own last_seen (the xfail below)
        g["nodes"][FORMER_CANONICAL] = g["nodes"][FORMER_CANONICAL][:7]
    assert all(g == graphs[0] for g in graphs[1:])


@pytest.mark.xfail(
    strict=True,
    reason="projection bug: s3a:// was canonical when the hive read (01:00) arrived first, and keeps that "
    "read's time as its last_seen after s3:// takes over (orders 0123 only); re-projection never lowers a "
    "node's last_seen (found when the snapshot became the whole projection, issue 17)",
)
def test_two_declarers_give_the_same_graph_whatever_the_order_including_the_former_canonicals_times(store):
    graphs = []
    for order in TWO_DECLARER_ORDERS:
        one_by_one(store, [TWO_DECLARERS[i] for i in order])
        graphs.append(snapshot(store))
        _forget_ledger(store)
    assert all(g["nodes"][FORMER_CANONICAL] == graphs[0]["nodes"][FORMER_CANONICAL] for g in graphs[1:])
