"""Spark as a real producer: PySpark 3.5 in ``local[1]`` with the OpenLineage Spark listener
(io.openlineage:openlineage-spark_2.12 from Maven Central), its events sent over HTTP, gzipped,
with an API key, to a real two-worker ``auditgraph serve`` on loopback.

Two applications (tests/producers/spark/orders_app.py) chained through a parquet directory:

    1. build     orders_1.csv + customers.csv -> enriched   mode("overwrite")
    2. build     orders_2.csv + customers.csv -> enriched   mode("append")
    3. aggregate enriched -> region_totals (a catalog table: CREATE, and a symlink to default.region_totals)
    4. build     orders_3.csv + customers.csv -> enriched   mode("overwrite")

Ground truth is what the applications did (the files each one named, the columns of their SQL) and
what they print (the rows they wrote). What the listener reports of it, found by running it and
written down here: each application is a job (``orders_build``, ``orders_aggregate``) whose run is
the parent of one run per write action; a plain path is namespace ``file``, name ``/abs/path``; an
overwrite carries ``lifecycleStateChange: OVERWRITE``, an append none; a CTAS writes the table
twice (the CREATE command and its insert), both children of the application run.

PySpark runs from its own virtualenv and the jar from var/ (``scripts/spark-env install``); without
them these tests fail in CI and skip elsewhere. Spark's UI is off and its driver binds to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import ROOT
from serving import create_key, require, serving

from lineage.ids import dataset_id

pytestmark = pytest.mark.producers

APP = Path(__file__).parent / "spark" / "orders_app.py"
NAMESPACE = "spark-tests"
CUSTOMERS = "customer_id,region\n10,north\n11,south\n12,east\n"
ORDERS = {  # each batch of orders, as the CSV the build application reads
    1: "order_id,customer_id,amount\n1,10,5.0\n2,11,7.5\n3,10,2.5\n",
    2: "order_id,customer_id,amount\n4,11,1.0\n",
    3: "order_id,customer_id,amount\n5,12,4.0\n",
}


def spark_env() -> tuple[Path, Path]:
    """The venv's python and the listener jar, as scripts/spark-env installs them."""
    python = require(
        ROOT / "var" / "producers" / "spark" / "bin" / "python", "PySpark venv", "scripts/spark-env install"
    )
    jars = sorted((ROOT / "var" / "producers" / "spark-jars").glob("openlineage-spark_2.12-*.jar"))
    return python, require(
        jars[-1] if jars else ROOT / "var" / "producers" / "spark-jars" / "openlineage-spark_2.12.jar",
        "OpenLineage Spark jar",
        "scripts/spark-env install",
    )


@dataclass
class Lake:
    """The four application runs, done; answers come from the server's HTTP API."""

    url: str
    read_key: str
    base: Path
    printed: list[dict]

    def get(self, path: str, **params) -> dict:
        answer = httpx.get(
            f"{self.url}/api/v1/{path}", params=params, timeout=30, headers={"Authorization": f"Bearer {self.read_key}"}
        )
        assert answer.status_code == 200, (path, params, answer.text)
        return answer.json()

    def file(self, name: str) -> str:
        return dataset_id("file", str(self.base / name))

    def writers(self, dataset: str) -> dict[str, str]:
        """{version id: the run that wrote it}, from the dataset's history."""
        return {v["id"]: v["written_by"] for v in self.get("history", id=dataset)["versions"]}

    def version_from(self, orders: int) -> str:
        """The version of enriched written by the build that read orders_<n>.csv."""
        found = [
            v
            for v, run in self.writers(self.file("enriched")).items()
            if any(
                e["src"] == f"{self.file(f'orders_{orders}.csv')}@unversioned" for e in self.get("nodes", id=run)["in"]
            )
        ]
        assert len(found) == 1, (orders, found)
        return found[0]

    def upstream_datasets(self, node: str) -> set[str]:
        walk = self.get("upstream", id=node)
        return {n["id"].split("@")[0] for n in walk["nodes"] if n["kind"] == "DatasetVersion"} - {node.split("@")[0]}

    def parent_job(self, run: str) -> str:
        parent = [e["dst"] for e in self.get("nodes", id=run)["out"] if e["type"] == "CHILD_OF"]
        assert len(parent) == 1, (run, parent)
        return [e["dst"] for e in self.get("nodes", id=parent[0])["out"] if e["type"] == "RUN_OF"][0]


def run_app(python: Path, jar: Path, url: str, key: str, base: Path, *args: str) -> dict:
    confs = {
        "spark.jars": str(jar),
        "spark.openlineage.namespace": NAMESPACE,
        "spark.openlineage.transport.type": "http",
        "spark.openlineage.transport.url": url,
        "spark.openlineage.transport.endpoint": "/api/v1/lineage",
        "spark.openlineage.transport.auth.type": "api_key",
        "spark.openlineage.transport.auth.apiKey": key,
        "spark.openlineage.transport.compression": "gzip",
        # Re-running a CTAS into the warehouse keeps Spark 3.5 from refusing a non-empty location.
        "spark.sql.legacy.allowNonEmptyLocationInCTAS": "true",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE_", "SPARK_", "PYSPARK_"))}
    env.update({"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": str(python), "NO_PROXY": "127.0.0.1,localhost"})
    command = [str(python), str(APP), *args, "--warehouse", str(base / "warehouse")]
    for key_value in confs.items():
        command += ["--conf", "=".join(key_value)]
    done = subprocess.run(command, cwd=base, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    python, jar = spark_env()
    base = tmp_path_factory.mktemp("spark")
    (base / "customers.csv").write_text(CUSTOMERS)
    for n, text in ORDERS.items():
        (base / f"orders_{n}.csv").write_text(text)
    store_url = f"sqlite:///{base}/store.db"
    ingest_key, read_key = create_key(store_url, "spark", "ingest"), create_key(store_url, "spark", "read")
    with serving(store_url, base / "server.log") as url:

        def build(n: int, mode: str) -> dict:
            return run_app(
                python,
                jar,
                url,
                ingest_key,
                base,
                "build",
                "--orders",
                str(base / f"orders_{n}.csv"),
                "--customers",
                str(base / "customers.csv"),
                "--out",
                str(base / "enriched"),
                "--mode",
                mode,
            )

        printed = [
            build(1, "overwrite"),
            build(2, "append"),
            run_app(
                python,
                jar,
                url,
                ingest_key,
                base,
                "aggregate",
                "--enriched",
                str(base / "enriched"),
                "--table",
                "region_totals",
                "--mode",
                "overwrite",
            ),
            build(3, "overwrite"),
        ]
        yield Lake(url, read_key, base, printed)


def test_the_applications_did_what_the_lineage_will_be_checked_against(lake):
    assert [p.get("rows") for p in lake.printed] == [3, 1, None, 1]
    # aggregate ran after the append: it saw orders 1-3 (north) and 2 and 4 (south)
    assert lake.printed[2]["totals"] == {"north": 7.5, "south": 8.5}


def test_every_spark_write_is_one_version_written_by_a_run_of_its_application(lake):
    writers = lake.writers(lake.file("enriched"))
    assert len(writers) == 3
    for version, run in writers.items():
        assert version.endswith("@" + run.removeprefix("run:"))
        assert lake.parent_job(run) == f"job:{NAMESPACE}/orders_build"
    table = lake.writers(lake.file("warehouse/region_totals"))
    assert {lake.parent_job(run) for run in table.values()} == {f"job:{NAMESPACE}/orders_aggregate"}


def test_the_second_application_reads_what_the_first_wrote_through_the_parquet_file(lake):
    appended = lake.version_from(2)
    readers = [e["dst"] for e in lake.get("nodes", id=appended)["out"] if e["type"] == "READ_BY"]
    assert readers and {lake.parent_job(r) for r in readers} == {f"job:{NAMESPACE}/orders_aggregate"}
    table = lake.file("warehouse/region_totals")
    assert {lake.file("enriched"), lake.file("orders_2.csv"), lake.file("customers.csv")} <= lake.upstream_datasets(
        table
    )
    path = lake.get("path", **{"from": lake.file("orders_2.csv"), "to": table})
    assert path["found"] is True
    assert (path["nodes"][0], path["nodes"][-1]) == (lake.file("orders_2.csv"), table)


def test_an_overwrite_version_has_only_its_own_writers_inputs_upstream(lake):
    overwritten = lake.version_from(3)
    assert lake.upstream_datasets(overwritten) == {lake.file("orders_3.csv"), lake.file("customers.csv")}
    first = lake.version_from(1)
    assert lake.upstream_datasets(first) == {lake.file("orders_1.csv"), lake.file("customers.csv")}


def test_an_append_version_keeps_the_earlier_writers_lineage(lake):
    appended = lake.version_from(2)
    assert lake.upstream_datasets(appended) == {
        lake.file("orders_1.csv"),
        lake.file("orders_2.csv"),
        lake.file("customers.csv"),
    }


def test_the_aggregate_over_an_appended_table_is_downstream_of_every_batch(lake):
    table = lake.file("warehouse/region_totals")
    assert {lake.file("orders_1.csv"), lake.file("orders_2.csv")} <= lake.upstream_datasets(table)
    impacted = lake.get("impact", id=lake.file("orders_1.csv"))
    assert table in json.dumps(impacted)


def test_column_lineage_follows_spark_from_the_table_back_to_the_csv_columns(lake):
    table = lake.file("warehouse/region_totals")
    found = lake.get("columns", dataset=table, field="total")
    edges = {(e["src"], e["src_field"], e["dst"], e["dst_field"]) for e in found["edges"]}
    assert (lake.file("enriched"), "amount", table, "total") in edges
    assert (lake.file("orders_2.csv"), "amount", lake.file("enriched"), "amount") in edges
    aggregation = [e for e in found["edges"] if e["dst"] == table and e["dst_field"] == "total"]
    assert [t["subtype"] for e in aggregation for t in e["transformations"]] == ["AGGREGATION"] * len(aggregation)
    region = lake.get("columns", dataset=lake.file("enriched"), field="region")["edges"]
    direct = {
        (e["src"], e["src_field"])
        for e in region
        if e["direction"] == "upstream" and {t["type"] for t in e["transformations"]} == {"DIRECT"}
    }
    assert direct == {(lake.file("customers.csv"), "region")}


def indirect_sources(found: dict) -> set[tuple[str, str, str]]:
    return {
        (e["src"], e["src_field"], t.get("subtype"))
        for e in found["edges"]
        for t in e.get("transformations", [])
        if t.get("type") == "INDIRECT"
    }


def test_the_join_key_is_an_indirect_dependency_of_every_enriched_column(lake):
    found = lake.get("columns", dataset=lake.file("enriched"))
    assert {(lake.file(f"orders_{n}.csv"), "customer_id", "JOIN") for n in ORDERS} <= indirect_sources(found)
    assert (lake.file("customers.csv"), "customer_id", "JOIN") in indirect_sources(found)


def test_the_symlinks_facet_of_the_catalog_table_is_kept_whole(lake):
    node = lake.get("nodes", id=lake.file("warehouse/region_totals"))
    identifiers = node["facets"]["symlinks"]["identifiers"]
    assert identifiers == [
        {"namespace": f"file:{lake.base / 'warehouse'}", "name": "default.region_totals", "type": "TABLE"}
    ]


def test_the_table_name_of_the_symlink_names_the_same_dataset(lake):
    alias = dataset_id(f"file:{lake.base / 'warehouse'}", "default.region_totals")
    node = lake.get("nodes", id=alias)
    assert node["id"] == lake.file("warehouse/region_totals")
    assert lake.file("enriched") in lake.upstream_datasets(alias)
