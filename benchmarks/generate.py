"""A seeded synthetic lineage generator shaped like a real ML platform, writing OpenLineage JSONL.

Each pipeline is an orchestrated DAG (a parent run) run once a "day":

    external sources --ingest_<s>--> staging/<s> --build_features--> features/<p>
        --train_<p>--> model <p> (a new model version per day, marked datasetType MODEL)

Feature builds are incremental (each reads yesterday's features too), so a
model version's upstream reaches back through every earlier day, as it does on
real platforms.

Staging and feature datasets get a new version per writing run (no version
facet), features carry column lineage, jobs carry a source code location, and
each run sends START and COMPLETE, so the graph has the shapes that make
lineage hard: long version chains, fan-in, parent runs and column edges.
About one graph node per event; ``--nodes`` picks the size.

    python -m benchmarks.generate --nodes 100000 --out benchmarks/data/100k.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

PRODUCER = "https://github.com/auditgraph/auditgraph/tree/0.1.0/benchmarks/generate.py"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
SOURCES_PER_PIPELINE = 4
COLUMNS = ("id", "ts", "amount", "region", "segment", "score")


def _facet(name: str, **fields) -> dict:
    return {"_producer": PRODUCER, "_schemaURL": f"https://openlineage.io/spec/facets/1-0-0/{name}.json", **fields}


class Platform:
    def __init__(self, pipelines: int, seed: int):
        self.rng = random.Random(seed)
        self.pipelines = pipelines
        self.start = datetime(2025, 1, 1, tzinfo=UTC)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def events(self, days: int) -> Iterator[dict]:
        for day in range(days):
            for p in range(self.pipelines):
                yield from self._pipeline_day(p, day)

    def _pipeline_day(self, p: int, day: int) -> Iterator[dict]:
        t = self.start + timedelta(days=day, minutes=p % 1440)
        ns = f"platform-{p % 50}"
        parent_run = self.uuid()
        parent = {
            "parent": _facet("ParentRunFacet", run={"runId": parent_run}, job={"namespace": ns, "name": f"dag_{p}"})
        }
        yield self._event("START", t, ns, f"dag_{p}", parent_run)
        staging = []
        for s in range(SOURCES_PER_PIPELINE):
            src = {"namespace": f"postgres://db-{(p + s) % 97}:5432", "name": f"crm.public.table_{(p * 7 + s) % 500}"}
            out = {"namespace": "s3://lake", "name": f"staging/p{p}/s{s}", "facets": {"schema": _schema()}}
            staging.append(out)
            yield from self._run(t + timedelta(minutes=1 + s), ns, f"dag_{p}.ingest_{s}", [src], [out], parent)
        features = {
            "namespace": "s3://lake",
            "name": f"features/p{p}",
            "facets": {
                "schema": _schema(),
                "columnLineage": _facet(
                    "ColumnLineageDatasetFacet",
                    fields={
                        c: {
                            "inputFields": [
                                {
                                    "namespace": "s3://lake",
                                    "name": f"staging/p{p}/s{k}",
                                    "field": c,
                                    "transformations": [{"type": "DIRECT", "subtype": "TRANSFORMATION"}],
                                }
                                for k in range(SOURCES_PER_PIPELINE)
                            ]
                        }
                        for c in COLUMNS
                    },
                ),
            },
        }
        previous = {"namespace": "s3://lake", "name": f"features/p{p}"}  # incremental: yesterday's features
        yield from self._run(
            t + timedelta(minutes=10), ns, f"dag_{p}.build_features", staging + [previous], [features], parent
        )
        model = {
            "namespace": "ml",
            "name": f"model_{p}",
            "facets": {
                "datasetType": _facet("DatasetTypeDatasetFacet", datasetType="MODEL"),
                "version": _facet("DatasetVersionDatasetFacet", datasetVersion=f"{day + 1}"),
            },
        }
        code = {
            "sourceCodeLocation": _facet(
                "SourceCodeLocationJobFacet",
                type="git",
                url=f"https://git.example.com/ml/p{p}",
                version=f"{self.rng.getrandbits(160):040x}",
            )
        }
        yield from self._run(t + timedelta(minutes=20), ns, f"dag_{p}.train", [features], [model], parent, code)
        yield self._event("COMPLETE", t + timedelta(minutes=40), ns, f"dag_{p}", parent_run)

    def _run(self, t, ns, job, inputs, outputs, parent, job_facets=None) -> Iterator[dict]:
        run = self.uuid()
        yield self._event("START", t, ns, job, run, inputs, outputs, parent, job_facets)
        yield self._event("COMPLETE", t + timedelta(minutes=5), ns, job, run, inputs, outputs, parent, job_facets)

    def _event(self, kind, t, ns, job, run, inputs=(), outputs=(), run_facets=None, job_facets=None) -> dict:
        return {
            "eventType": kind,
            "eventTime": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "producer": PRODUCER,
            "schemaURL": SCHEMA_URL,
            "run": {"runId": run, "facets": run_facets or {}},
            "job": {"namespace": ns, "name": job, "facets": job_facets or {}},
            "inputs": list(inputs),
            "outputs": list(outputs),
        }


def _schema() -> dict:
    return _facet("SchemaDatasetFacet", fields=[{"name": c, "type": "string"} for c in COLUMNS])


def plan(nodes: int) -> tuple[int, int]:
    """(pipelines, days) for about ``nodes`` graph nodes: ~14 nodes per pipeline-day, 90 days at most."""
    per_day = 2 * SOURCES_PER_PIPELINE + 6
    days = max(1, min(90, nodes // (per_day * 20)))
    pipelines = max(1, nodes // (per_day * days))
    return pipelines, days


def write(nodes: int, out: Path, seed: int = 42) -> int:
    pipelines, days = plan(nodes)
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(out, "w") as f:
        for event in Platform(pipelines, seed).events(days):
            f.write(json.dumps(event, separators=(",", ":")) + "\n")
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print(f"{write(args.nodes, args.out, args.seed)} events written to {args.out}")


if __name__ == "__main__":
    main()
