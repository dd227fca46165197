"""Two small PySpark applications chained through a parquet directory, run by test_spark.py.

    build:     orders CSV + customers CSV --join on customer_id--> enriched parquet
    aggregate: enriched parquet --sum(amount) by region--> region_totals (a catalog table)

Runs under the isolated pyspark venv (scripts/spark-env), never under the test interpreter.
Everything Spark and the OpenLineage listener need comes in as --conf key=value, so the test
shows how the producer is pointed at auditgraph. Prints one JSON line with what it did.

    python orders_app.py build --orders o.csv --customers c.csv --out enriched --mode append --conf k=v ...
"""

import argparse
import json

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def session(name: str, confs: list[str], warehouse: str) -> SparkSession:
    builder = (
        SparkSession.builder.master("local[1]")
        .appName(name)
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.warehouse.dir", warehouse)
        .config("spark.extraListeners", "io.openlineage.spark.agent.OpenLineageSparkListener")
    )
    for item in confs:
        key, _, value = item.partition("=")
        builder = builder.config(key, value)
    return builder.getOrCreate()


def build(spark: SparkSession, args) -> dict:
    orders = spark.read.option("header", True).schema("order_id INT, customer_id INT, amount DOUBLE").csv(args.orders)
    customers = spark.read.option("header", True).schema("customer_id INT, region STRING").csv(args.customers)
    enriched = orders.join(customers, "customer_id").select("order_id", "customer_id", "region", "amount")
    enriched.write.mode(args.mode).parquet(args.out)
    return {"rows": enriched.count()}


def aggregate(spark: SparkSession, args) -> dict:
    totals = spark.read.parquet(args.enriched).groupBy("region").agg(F.sum("amount").alias("total"))
    totals.write.mode(args.mode).format("parquet").saveAsTable(args.table)
    return {"totals": {r["region"]: r["total"] for r in spark.table(args.table).collect()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("app", choices=["build", "aggregate"])
    parser.add_argument("--orders")
    parser.add_argument("--customers")
    parser.add_argument("--out")
    parser.add_argument("--enriched")
    parser.add_argument("--table")
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--mode", default="overwrite", choices=["overwrite", "append"])
    parser.add_argument("--conf", action="append", default=[])
    args = parser.parse_args()
    spark = session(f"orders_{args.app}", args.conf, args.warehouse)
    try:
        result = (build if args.app == "build" else aggregate)(spark, args)
        result["application_id"] = spark.sparkContext.applicationId
    finally:
        spark.stop()  # flushes the listener: every event is sent before the process exits
    print(json.dumps(result))


if __name__ == "__main__":
    main()
