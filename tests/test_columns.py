"""Column lineage (issue 15, items 3 and 4), on every backend: datasets named only in a
columnLineage facet are nodes; the facet's ``dataset`` list (join keys, filters, sorts) is kept;
transformations have the current type/subtype shape, legacy ones mapped onto it; the CLI's
``lineage columns --direct-only/--json`` and the HTTP route answer alike."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner
from conftest import CORPUS, SCENARIOS, ingest_events, ingest_files, live_server, load, run_event

from lineage.cli import cli
from lineage.errors import NotFoundError
from lineage.graph import Graph
from lineage.ids import dataset_id
from lineage.openlineage import parse_event
from lineage.server.app import ServerConfig
from lineage.store import open_store

SHAKESPEARE = SCENARIOS / "spark_dataproc_bigquery_shakespare" / "events"
BIGQUERY_SOURCE = dataset_id("bigquery", "bigquery-public-data.samples.shakespeare")
SPARK_OUTPUT = dataset_id("file", "/tmp/outputs/1729097570970")
ORDERS, CUSTOMERS, REPORT = (dataset_id("lake", n) for n in ("orders", "customers", "report"))


def t(type_, subtype=None, description=None, masking=None):
    return {"type": type_, "subtype": subtype, "description": description, "masking": masking}


def field(ns: str, name: str, column: str, *transformations) -> dict:
    return {"namespace": ns, "name": name, "field": column, "transformations": list(transformations)}


def spark_join_event(run: str | None = None, time: str = "2024-05-01T10:00:00Z") -> dict:
    """What Spark (datasetLineageEnabled) sends for
    SELECT c.name, sum(o.amount) AS total FROM orders o JOIN customers c ON o.customer_id = c.id
    WHERE o.status = 'paid' GROUP BY c.name."""
    lineage = {
        "_producer": "x",
        "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
        "fields": {
            "name": {
                "inputFields": [
                    field(
                        "lake",
                        "customers",
                        "name",
                        {"type": "DIRECT", "subtype": "IDENTITY", "description": "", "masking": False},
                    )
                ]
            },
            "total": {
                "inputFields": [
                    field(
                        "lake",
                        "orders",
                        "amount",
                        {"type": "DIRECT", "subtype": "AGGREGATION", "description": "sum", "masking": False},
                    )
                ]
            },
        },
        "dataset": [
            field(
                "lake",
                "orders",
                "customer_id",
                {"type": "INDIRECT", "subtype": "JOIN", "description": "", "masking": False},
            ),
            field(
                "lake", "customers", "id", {"type": "INDIRECT", "subtype": "JOIN", "description": "", "masking": False}
            ),
            field(
                "lake",
                "orders",
                "status",
                {"type": "INDIRECT", "subtype": "FILTER", "description": "", "masking": False},
            ),
            field(
                "lake",
                "customers",
                "name",
                {"type": "INDIRECT", "subtype": "GROUP_BY", "description": "", "masking": False},
            ),
        ],
    }
    return run_event(
        "report",
        run,
        time=time,
        inputs=[("lake", "orders"), ("lake", "customers")],
        outputs=[{"namespace": "lake", "name": "report", "facets": {"columnLineage": lineage}}],
    )


def upstream(result) -> set[tuple]:
    return {
        (h.src, h.src_field, h.dst_field, tuple((x["type"], x["subtype"]) for x in h.transformations))
        for h in result.edges
        if h.direction == "upstream"
    }


# --- item 3: every dataset and field named in column lineage is a node ---------------------


def test_a_dataset_named_only_in_column_lineage_is_a_node_with_its_fields(store):
    # Spark's RUNNING event lists no inputs; the BigQuery table appears only in columnLineage
    ingest_files(store, [SHAKESPEARE / "1729097627541.json"])
    node = Graph(store).node(BIGQUERY_SOURCE)
    assert (node["kind"], node["namespace"], node["name"]) == (
        "Dataset",
        "bigquery",
        "bigquery-public-data.samples.shakespeare",
    )
    assert node["fields"] == ["word", "word_count"]
    down = Graph(store).columns(BIGQUERY_SOURCE, "word_count")
    assert {(h.dst, h.dst_field) for h in down.edges} == {(SPARK_OUTPUT, "word"), (SPARK_OUTPUT, "sum(word_count)")}


def test_show_and_columns_answer_for_the_source_column_of_a_column_edge_on_the_cli(tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    with open_store(url) as store:
        ingest_files(store, [SHAKESPEARE / "1729097627541.json"])
    show = CliRunner().invoke(cli, ["lineage", "show", BIGQUERY_SOURCE, "--store", url])
    assert show.exit_code == 0, show.output
    assert "fields" in show.stdout and "word, word_count" in show.stdout
    cols = CliRunner().invoke(cli, ["lineage", "columns", f"{BIGQUERY_SOURCE}:word", "--json", "--store", url])
    assert cols.exit_code == 0, cols.output
    assert {(h["dst_field"], h["direction"]) for h in json.loads(cols.stdout)["edges"]} == {
        ("word", "downstream"),
        ("sum(word_count)", "downstream"),
    }


def test_a_field_no_schema_or_column_lineage_names_is_a_one_line_error(store, tmp_path):
    ingest_files(store, [SHAKESPEARE / "1729097627541.json"])
    with pytest.raises(NotFoundError, match="has no field 'nope'"):
        Graph(store).columns(BIGQUERY_SOURCE, "nope")
    url = f"sqlite:///{tmp_path}/cli.db"
    with open_store(url) as s:
        ingest_files(s, [SHAKESPEARE / "1729097627541.json"])
    result = CliRunner().invoke(cli, ["lineage", "columns", f"{SPARK_OUTPUT}:nope", "--store", url])
    assert result.exit_code == 4
    assert result.stderr.strip().count("\n") == 0 and "has no field 'nope'" in result.stderr


# --- item 4: dataset-level (indirect) lineage, transformation types --------------------------


def test_the_join_key_of_a_spark_join_has_edges_into_the_whole_output(store):
    ingest_events(store, [spark_join_event()])
    keys = Graph(store).columns(ORDERS, "customer_id")
    assert [(h.direction, h.dst, h.dst_field, h.transformations) for h in keys.edges] == [
        ("downstream", REPORT, None, [t("INDIRECT", "JOIN", "", False)])
    ]
    assert upstream(Graph(store).columns(REPORT, "total")) == {
        (ORDERS, "amount", "total", (("DIRECT", "AGGREGATION"),)),
        (ORDERS, "customer_id", None, (("INDIRECT", "JOIN"),)),
        (ORDERS, "status", None, (("INDIRECT", "FILTER"),)),
        (CUSTOMERS, "id", None, (("INDIRECT", "JOIN"),)),
        (CUSTOMERS, "name", None, (("INDIRECT", "GROUP_BY"),)),
    }


def test_the_spec_example_dataset_list_keeps_sort_and_filter(store):
    facet = load(CORPUS / "facet_fragments/OpenLineage/spec/tests/ColumnLineageDatasetFacet/2.json")
    people = ("s3://test-bucket", "/iceberg_warehouse/some-database/people")
    ingest_events(
        store,
        [
            run_event(
                "people", inputs=[people], outputs=[{"namespace": "s3://test-bucket", "name": "out", "facets": facet}]
            )
        ],
    )
    up = Graph(store).columns(dataset_id("s3://test-bucket", "out"), "id")
    assert upstream(up) == {
        (dataset_id(*people), "id", "id", (("DIRECT", "IDENTITY"),)),
        (dataset_id(*people), "first_name", None, (("INDIRECT", "SORT"),)),
        (dataset_id(*people), "last_name", None, (("INDIRECT", "SORT"),)),
        (dataset_id(*people), "age", None, (("INDIRECT", "FILTER"),)),
    }


def test_direct_only_walks_direct_edges_only(store):
    ingest_files(store, [SHAKESPEARE / "1729097627541.json"])
    every = Graph(store).columns(SPARK_OUTPUT, "word")
    assert upstream(every) == {
        (BIGQUERY_SOURCE, "word", "word", (("DIRECT", "IDENTITY"), ("INDIRECT", "FILTER"), ("INDIRECT", "GROUP_BY"))),
        (BIGQUERY_SOURCE, "word_count", "word", (("INDIRECT", "FILTER"),)),
    }
    direct = Graph(store).columns(SPARK_OUTPUT, "word", direct_only=True)
    assert {(h.src_field, h.dst_field) for h in direct.edges} == {("word", "word")}
    ingest_events(store, [spark_join_event()])
    assert {(h.src, h.src_field) for h in Graph(store).columns(REPORT, "total", direct_only=True).edges} == {
        (ORDERS, "amount")
    }


@pytest.mark.parametrize(
    "legacy, description, expected",
    [
        ("IDENTITY", "identical", t("DIRECT", "IDENTITY", "identical", False)),
        ("TRANSFORMATION", "a + b", t("DIRECT", "TRANSFORMATION", "a + b", None)),
        ("AGGREGATION", "sum(a)", t("DIRECT", "AGGREGATION", "sum(a)", None)),
        ("MASKED", "sha256(email)", t("DIRECT", "TRANSFORMATION", "sha256(email)", True)),
    ],
)
def test_a_legacy_transformation_type_is_read_as_type_and_subtype(store, legacy, description, expected):
    lineage = {
        "columnLineage": {
            "_producer": "x",
            "_schemaURL": "y",
            "fields": {
                "b": {
                    "inputFields": [{"namespace": "t", "name": "a", "field": "a", "transformations": []}],
                    "transformationType": legacy,
                    "transformationDescription": description,
                }
            },
        }
    }
    ingest_events(
        store, [run_event("j", inputs=[("t", "a")], outputs=[{"namespace": "t", "name": "b", "facets": lineage}])]
    )
    assert [h.transformations for h in Graph(store).columns(dataset_id("t", "b"), "b").edges] == [[expected]]


def test_airflow_legacy_identity_lineage_reads_as_direct_identity(store):
    ingest_files(store, [SCENARIOS / "airflow" / "events" / "line_03.json"])
    edges = Graph(store).columns(dataset_id("bigquery", "mock-project.test.upload"), "a").edges
    assert {(h.src, h.src_field) for h in edges} == {
        (dataset_id("gs://mock-bucket", "copied.csv"), "a"),
        (dataset_id("gs://mock-bucket", "test.csv"), "a"),
    }
    assert all(h.transformations == [t("DIRECT", "IDENTITY", "identical", False)] for h in edges)


def test_an_edge_stated_direct_and_indirect_keeps_both_in_any_arrival_order(store, tmp_path):
    # Spark's legacy representation lists one input field twice: DIRECT/IDENTITY, then INDIRECT/SORT
    def event(run, time, *transformations):
        lineage = {
            "columnLineage": {
                "_producer": "x",
                "_schemaURL": "y",
                "fields": {"o": {"inputFields": [field("t", "a", "o", x) for x in transformations]}},
            }
        }
        return run_event(
            "j", run, time=time, inputs=[("t", "a")], outputs=[{"namespace": "t", "name": "b", "facets": lineage}]
        )

    first = event(
        "11111111-1111-1111-1111-111111111111",
        "2024-05-01T10:00:00Z",
        {"type": "DIRECT", "subtype": "IDENTITY"},
        {"type": "INDIRECT", "subtype": "SORT"},
    )
    later = event(
        "22222222-2222-2222-2222-222222222222", "2024-05-02T10:00:00Z", {"type": "INDIRECT", "subtype": "FILTER"}
    )
    ingest_events(store, [later])
    ingest_events(store, [first])
    other = open_store(f"sqlite:///{tmp_path}/in-order.db")
    ingest_events(other, [first])
    ingest_events(other, [later])
    for s in (store, other):
        [edge] = Graph(s).columns(dataset_id("t", "b"), "o").edges
        assert (edge.run, edge.time[:10]) == ("run:11111111-1111-1111-1111-111111111111", "2024-05-01")
        assert edge.transformations == [t("DIRECT", "IDENTITY"), t("INDIRECT", "FILTER"), t("INDIRECT", "SORT")]
    other.close()


def test_a_rebuild_gives_the_same_column_lineage(store):
    ingest_events(store, [spark_join_event()])
    ingest_files(store, [SHAKESPEARE / "1729097627541.json"])
    before = [Graph(store).columns(d).model_dump() for d in (REPORT, SPARK_OUTPUT)]
    assert [h["dst_field"] for h in before[0]["edges"]].count(None) == 4  # the join's whole-dataset edges
    store.rebuild()
    assert [Graph(store).columns(d).model_dump() for d in (REPORT, SPARK_OUTPUT)] == before


@pytest.mark.parametrize(
    "bad, problem",
    [
        ({"dataset": [{"namespace": "t", "name": "a"}]}, "dataset[0] needs namespace, name and field"),
        ({"dataset": {"namespace": "t"}}, "dataset must be a list"),
        (
            {"dataset": [field("t", "a", "k", {"subtype": "JOIN"})]},
            "dataset[0].transformations must be a list of objects with a string type",
        ),
        (
            {"dataset": [field("t", "a", "k", {"type": "INDIRECT", "masking": "yes"})]},
            "dataset[0].transformations must be",
        ),
        ({"dataset": [field("t", "", "k")]}, "dataset[0] needs namespace, name and field"),
        ({"dataset": [field("t", "a", "")]}, "dataset[0] needs namespace, name and field"),
        ({"fields": {"": {"inputFields": [field("t", "a", "x")]}}}, "fields: an output field name is empty"),
        (
            {"fields": {"o": {"inputFields": [field("t", "a", "x")], "transformationType": 3}}},
            "fields.o.transformationType must be a string",
        ),
    ],
)
def test_a_malformed_column_lineage_facet_is_kept_but_makes_no_edge_or_node(store, bad, problem):
    lineage = {"_producer": "x", "_schemaURL": "y", "fields": {}, **bad}
    event = run_event("j", outputs=[{"namespace": "t", "name": "b", "facets": {"columnLineage": lineage}}])
    parsed = parse_event(event)
    assert parsed.bad_facets == {"outputs[0].facets.columnLineage"}
    assert problem in parsed.warnings[0] and parsed.warnings[0].startswith("outputs[0].facets.columnLineage: ")
    assert ingest_events(store, [event]).accepted == 1
    assert Graph(store).columns(dataset_id("t", "b")).edges == []
    assert store.nodes([dataset_id("t", "a")]) == {}
    assert store.verify().ok


# --- the CLI and the HTTP route ----------------------------------------------------------------


@pytest.fixture
def cli_store(tmp_path):
    url = f"sqlite:///{tmp_path}/cli.db"
    with open_store(url) as store:
        ingest_events(store, [spark_join_event("33333333-3333-3333-3333-333333333333")])
    return url


def test_lineage_columns_prints_type_and_subtype_and_the_whole_dataset(cli_store):
    result = CliRunner().invoke(cli, ["lineage", "columns", f"{ORDERS}:customer_id", "--store", cli_store])
    assert result.exit_code == 0, result.output
    assert "dataset:lake/report (whole dataset)" in result.stdout and "INDIRECT/JOIN" in result.stdout


def test_lineage_columns_direct_only_and_json_carry_type_subtype_description_masking(cli_store):
    args = ["lineage", "columns", f"{REPORT}:total", "--json", "--store", cli_store]
    every = json.loads(CliRunner().invoke(cli, args).stdout)
    direct = json.loads(CliRunner().invoke(cli, [*args, "--direct-only"]).stdout)
    assert len(every["edges"]) == 5
    assert direct["edges"] == [
        {
            "src": ORDERS,
            "src_field": "amount",
            "dst": REPORT,
            "dst_field": "total",
            "run": "run:33333333-3333-3333-3333-333333333333",
            "time": every["edges"][0]["time"],
            "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION", "description": "sum", "masking": False}],
            "direction": "upstream",
            "distance": 1,
        }
    ]
    assert "--direct-only" in CliRunner().invoke(cli, ["lineage", "columns", "--help"]).stdout


@pytest.mark.slow
def test_the_http_columns_route_filters_direct_only_and_answers_like_the_cli(cli_store):
    with live_server(ServerConfig(store_url=cli_store, public_reads=True, webhooks=False)) as server:
        route = f"{server}/api/v1/columns"
        params = {"dataset": REPORT, "field": "total"}
        every = httpx.get(route, params=params)
        direct = httpx.get(route, params={**params, "direct_only": "true"})
        unknown = httpx.get(route, params={**params, "field": "nope"})
        bad = httpx.get(route, params={**params, "direct_only": "maybe"})
    cli_json = json.loads(
        CliRunner()
        .invoke(cli, ["lineage", "columns", f"{REPORT}:total", "--direct-only", "--json", "--store", cli_store])
        .stdout
    )
    assert every.status_code == 200 and len(every.json()["edges"]) == 5
    assert direct.status_code == 200 and direct.json() == cli_json
    assert [e["src_field"] for e in direct.json()["edges"]] == ["amount"]
    assert unknown.status_code == 404 and "has no field 'nope'" in unknown.json()["detail"]
    assert bad.status_code == 422


def test_column_lineage_into_a_model_output_is_the_models(store):
    """A review found the edges of a MODEL output stored against a dataset id no query reaches."""
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2026-10-01T01:00:00Z",
        "producer": "https://example.com/p",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "00000000-0000-4000-8000-000000000081"},
        "job": {"namespace": "x", "name": "a"},
        "inputs": [{"namespace": "file", "name": "/src"}],
        "outputs": [
            {
                "namespace": "ml",
                "name": "modelA",
                "facets": {
                    "datasetType": {"_producer": "p", "_schemaURL": "s", "datasetType": "MODEL"},
                    "columnLineage": {
                        "_producer": "p",
                        "_schemaURL": "s",
                        "fields": {
                            "score": {
                                "inputFields": [
                                    {
                                        "namespace": "file",
                                        "name": "/src",
                                        "field": "amount",
                                        "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION"}],
                                    }
                                ]
                            }
                        },
                    },
                },
            }
        ],
    }
    assert ingest_events(store, [event]).accepted == 1
    hops = {(h.src, h.src_field, h.dst, h.dst_field) for h in Graph(store).columns("model:ml/modelA", "score").edges}
    assert hops == {("dataset:file//src", "amount", "model:ml/modelA", "score")}


@pytest.mark.parametrize("symlink_first", [True, False], ids=["symlink-first", "symlink-after"])
def test_column_lineage_naming_an_alias_is_the_canonical_datasets(store, symlink_first):
    spark = run_event(
        "write",
        "00000000-0000-4000-8000-000000000091",
        time="2024-05-01T10:00:00Z",
        outputs=[
            {
                "namespace": "s3a://lake",
                "name": "raw/orders",
                "facets": {
                    "symlinks": {
                        "_producer": "p",
                        "_schemaURL": "s",
                        "identifiers": [{"namespace": "hive://metastore:9083", "name": "raw.orders", "type": "TABLE"}],
                    }
                },
            }
        ],
    )
    report = run_event(
        "report",
        "00000000-0000-4000-8000-000000000092",
        time="2024-05-01T11:00:00Z",
        inputs=[("hive://metastore:9083", "raw.orders")],
        outputs=[
            {
                "namespace": "warehouse",
                "name": "report",
                "facets": {
                    "columnLineage": {
                        "_producer": "p",
                        "_schemaURL": "s",
                        "fields": {
                            "total": {
                                "inputFields": [
                                    {"namespace": "hive://metastore:9083", "name": "raw.orders", "field": "amount"}
                                ]
                            }
                        },
                    }
                },
            }
        ],
    )
    for event in [spark, report] if symlink_first else [report, spark]:
        ingest_events(store, [event])
    hops = {(h.src, h.src_field) for h in Graph(store).columns("dataset:warehouse/report", "total").edges}
    assert hops == {("dataset:s3a://lake/raw/orders", "amount")}
