"""A two-task Airflow DAG whose tasks declare what they read and write, run by test_airflow.py.

    extract_orders: raw orders CSV --> staged orders CSV (rows with an amount)
    summarize:      staged orders CSV --> per-customer totals CSV

Each PythonOperator does the work for real and names its files as inlets and outlets
(the provider's own File entity: the OpenLineage provider's manual-lineage path recognises
that class), which the provider turns into the task's input and output datasets. Paths come from AUDITGRAPH_AIRFLOW_DATA, a folder the test makes.
Loaded by `airflow dags test` under the isolated Airflow venv (scripts/airflow-env), never by pytest.
"""

import csv
import os
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from airflow import DAG
from airflow.operators.python import PythonOperator
from airflow.providers.common.compat.lineage.entities import File

DATA = Path(os.environ.get("AUDITGRAPH_AIRFLOW_DATA", "/nonexistent"))
RAW, STAGED, TOTALS = DATA / "raw_orders.csv", DATA / "staged_orders.csv", DATA / "customer_totals.csv"


def extract_orders() -> None:
    with open(RAW, newline="") as src, open(STAGED, "w", newline="") as dst:
        rows = [r for r in csv.DictReader(src) if r["amount"]]
        out = csv.DictWriter(dst, fieldnames=["order_id", "customer_id", "amount"])
        out.writeheader()
        out.writerows(rows)


def summarize() -> None:
    totals: dict[str, float] = defaultdict(float)
    with open(STAGED, newline="") as src:
        for row in csv.DictReader(src):
            totals[row["customer_id"]] += float(row["amount"])
    with open(TOTALS, "w", newline="") as dst:
        out = csv.writer(dst)
        out.writerow(["customer_id", "total"])
        out.writerows(sorted(totals.items()))


with DAG("orders_pipeline", start_date=datetime(2024, 1, 1), schedule=None, catchup=False):
    extract = PythonOperator(
        task_id="extract_orders",
        python_callable=extract_orders,
        inlets=[File(url=f"file://{RAW}")],
        outlets=[File(url=f"file://{STAGED}")],
    )
    total = PythonOperator(
        task_id="summarize",
        python_callable=summarize,
        inlets=[File(url=f"file://{STAGED}")],
        outlets=[File(url=f"file://{TOTALS}")],
    )
    extract >> total
