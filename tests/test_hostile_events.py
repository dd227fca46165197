"""Hostile OpenLineage events from a producer holding only an ingest key, sent to the real HTTP server
on loopback (the demo pipeline in a real SQLite store): facets that would break column lineage reads
and writes for everyone, and ids that could be stored but never named again.
"""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner
from conftest import live_server

from lineage import hooks
from lineage.cli import cli
from lineage.ids import MAX_ID_BYTES
from lineage.server import auth
from lineage.server.app import ServerConfig
from lineage.store import open_store

CUSTOMERS = {"namespace": "postgres://crm-db:5432", "name": "crm.public.customers"}
CUSTOMERS_ID = "dataset:postgres://crm-db:5432/crm.public.customers"
_runs = iter(range(1, 10**6))


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The demo store served over HTTP, with an ingest key and a read key."""
    home = tmp_path_factory.mktemp("events")
    url = f"sqlite:///{home}/store.db"
    assert run("demo", "--store", url).exit_code == 0
    with open_store(url) as store:
        keys = {scope: auth.create_key(store, scope, [scope], "test")[1] for scope in ("ingest", "read")}
    with live_server(ServerConfig(store_url=url, webhooks=False)) as base:
        yield {
            "base": base,
            "url": url,
            "ingest": {"Authorization": f"Bearer {keys['ingest']}"},
            "read": {"Authorization": f"Bearer {keys['read']}"},
        }


def event(
    job: str,
    outputs: list | None = None,
    run_facets: dict | None = None,
    job_facets: dict | None = None,
    time: str = "2024-01-01T00:00:00Z",
) -> tuple[str, dict]:
    rid = f"00000000-0000-4000-8000-{next(_runs):012d}"
    return rid, {
        "eventType": "COMPLETE",
        "eventTime": time,
        "producer": "p",
        "schemaURL": "s",
        "run": {"runId": rid, **({"facets": run_facets} if run_facets else {})},
        "job": {"namespace": "att", "name": job, **({"facets": job_facets} if job_facets else {})},
        "outputs": outputs or [{"namespace": "att", "name": f"{job}-out"}],
    }


def post(server, body: dict) -> httpx.Response:
    return httpx.post(f"{server['base']}/api/v1/lineage", json=body, headers=server["ingest"], timeout=30)


def get(server, route: str, **params) -> httpx.Response:
    return httpx.get(f"{server['base']}/api/v1/{route}", params=params, headers=server["read"], timeout=30)


def email_into(output: str, **spec) -> dict:
    """An output whose field ``c`` comes from the demo's customers.email, as the facet's spec says or not."""
    lineage = {"fields": {"c": {"inputFields": [{**CUSTOMERS, "field": "email"}], **spec}}}
    return {"namespace": "att", "name": output, "facets": {"columnLineage": lineage}}


# --- column lineage: a facet that breaks its spec is kept, flagged, and not used -----------


@pytest.mark.parametrize("description", [{"a": 1}, ["masked"], 5])
@pytest.mark.slow
def test_a_column_description_that_is_not_text_is_flagged_and_column_lineage_still_answers(server, description):
    output = f"described-{type(description).__name__}"
    _, hostile = event(
        f"j-{output}", [email_into(output, transformationType="IDENTITY", transformationDescription=description)]
    )
    answer = post(server, hostile)
    assert answer.status_code == 201
    assert answer.json()["warnings"] == [
        "outputs[0].facets.columnLineage: fields.c.transformationDescription must be a string; facet kept but not used"
    ]
    # a later, well-formed statement of the same column edge is still recorded and read back
    _, honest = event(
        f"j2-{output}",
        [email_into(output, transformationType="IDENTITY", transformationDescription="copied")],
        time="2024-01-02T00:00:00Z",
    )
    assert post(server, honest).status_code == 201
    columns = get(server, "columns", dataset=f"dataset:att/{output}")
    assert columns.status_code == 200
    assert [
        (e["src"], e["src_field"], e["dst_field"], [t["description"] for t in e["transformations"]])
        for e in columns.json()["edges"]
    ] == [(CUSTOMERS_ID, "email", "c", ["copied"])]
    assert get(server, "columns", dataset=CUSTOMERS_ID).status_code == 200
    for dataset in (CUSTOMERS_ID, f"dataset:att/{output}"):
        shown = run("lineage", "columns", dataset, "--store", server["url"])
        assert shown.exit_code == 0, shown.output


# --- ids that could be stored but never named ---------------------------------------------

LONG = "x" * (MAX_ID_BYTES + 1)
FLAGGED = {
    "a parent run id over 4 KiB": (
        {"run_facets": {"parent": {"run": {"runId": LONG}, "job": {"namespace": "att", "name": "parent"}}}},
        "run.facets.parent: run.runId: the id would be longer than 4096 bytes; facet kept but not used",
    ),
    "a parent run id with white space": (
        {"run_facets": {"parent": {"run": {"runId": "a b\nc"}, "job": {"namespace": "att", "name": "parent"}}}},
        "run.facets.parent: run.runId 'a b\\nc' has white space; facet kept but not used",
    ),
    "a parent run id of multi-byte characters over 4 KiB": (
        {"run_facets": {"parent": {"run": {"runId": "€" * 1400}, "job": {"namespace": "att", "name": "parent"}}}},
        "run.facets.parent: run.runId: the id would be longer than 4096 bytes; facet kept but not used",
    ),
    "a parent job name over 4 KiB": (
        {
            "run_facets": {
                "parent": {
                    "run": {"runId": "00000000-0000-4000-8000-ffffffffffff"},
                    "job": {"namespace": "att", "name": LONG},
                }
            }
        },
        "run.facets.parent: job: the id would be longer than 4096 bytes; facet kept but not used",
    ),
    "a dataset version over 4 KiB": (
        {"outputs": [{"namespace": "att", "name": "versioned", "facets": {"version": {"datasetVersion": "v" * 4090}}}]},
        "outputs[0].facets.version: datasetVersion: the id would be longer than 4096 bytes; facet kept but not used",
    ),
    "a code revision over 4 KiB": (
        {"job_facets": {"sourceCodeLocation": {"type": "git", "url": "https://git.example/repo", "version": LONG}}},
        "job.facets.sourceCodeLocation: version: the id would be longer than 4096 bytes; facet kept but not used",
    ),
}


@pytest.mark.parametrize("name", FLAGGED)
@pytest.mark.slow
def test_a_facet_naming_an_id_no_query_could_name_is_flagged_and_every_stored_node_can_be_named(server, name):
    parts, warning = FLAGGED[name]
    rid, body = event(f"j-{name}", **parts)
    answer = post(server, body)
    assert answer.status_code == 201
    assert answer.json()["warnings"] == [warning]
    shown = get(server, "nodes", id=f"run:{rid}")
    assert shown.status_code == 200
    neighbours = {e["src"] for e in shown.json()["in"]} | {e["dst"] for e in shown.json()["out"]}
    assert neighbours and all(get(server, "nodes", id=n).status_code == 200 for n in neighbours), neighbours
    with open_store(server["url"]) as store:  # what the webhook planner does for this entry: no IdTooLongError
        assert hooks.retraining_triggers(store, [f"run:{rid}"]) == []


def test_a_model_version_over_4_kib_rejects_the_event_naming_the_field_and_stores_nothing(server):
    rid, body = event(
        "j-model", [{"namespace": "att", "name": "model-x", "facets": {"auditgraph_model": {"version": "v" * 4090}}}]
    )
    with open_store(server["url"]) as store:
        before = store.head().seq
    answer = post(server, body)
    assert answer.status_code == 422
    assert "outputs[0].facets.auditgraph_model.version: the id would be longer than 4096 bytes" in answer.text
    assert get(server, "nodes", id=f"run:{rid}").status_code == 404
    with open_store(server["url"]) as store:
        assert store.head().seq == before


def test_ingest_from_a_file_rejects_an_unnameable_model_version_with_file_and_line_and_records_the_rest(
    server, tmp_path
):
    _, good = event("j-file-good")
    _, bad = event(
        "j-file-bad", [{"namespace": "att", "name": "model-y", "facets": {"auditgraph_model": {"version": "€" * 1400}}}]
    )
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    result = run("ingest", path, "--store", server["url"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"rejected: {path}:2: outputs[0].facets.auditgraph_model.version: the id would be longer than 4096 bytes",
        "accepted 1, duplicate 0, rejected 1",
    ]
