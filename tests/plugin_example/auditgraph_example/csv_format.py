"""A report format: the gate's rules as CSV, one line per rule, re-rendered byte for byte by `reports verify`."""

from __future__ import annotations

import csv
import io

from lineage.hookspecs import hookimpl
from reports.formats import ReportFormat


def rules_csv(bundle: dict, ctx) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rule", "check", "status"])
    for rule in (bundle["gate"] or {}).get("rules", []):
        writer.writerow([rule["rule"], rule["check"], rule["status"]])
    return out.getvalue()


@hookimpl
def register_report_formats():
    return [ReportFormat("csv", "rules.csv", rules_csv, reproducible=True, description="the gate's rules as CSV")]
