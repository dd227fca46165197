"""Validation of single events: what is rejected, what is accepted with a warning."""

from __future__ import annotations

import pytest
from conftest import CORPUS, load, run_event

from lineage.errors import EventError
from lineage.openlineage import parse_event


def test_a_valid_run_event_parses_with_no_warning():
    event = parse_event(run_event("j", "55555555-5555-4555-8555-555555555555"))
    assert (event.kind, event.subject, event.event_type, event.warnings) == (
        "RunEvent",
        "run:55555555-5555-4555-8555-555555555555",
        "COMPLETE",
        [],
    )


def test_an_event_time_without_a_zone_is_read_as_utc_with_a_warning():
    path = CORPUS / "valid/marquez/api/src/test/resources/open_lineage/event_required_no_timezone.json"
    event = parse_event(load(path))
    assert event.time_key == "2020-12-28T19:51:01.641499Z"
    assert "eventTime has no time zone; read as UTC" in event.warnings


def test_nanosecond_event_times_are_accepted():
    path = CORPUS / "valid/marquez/api/src/test/resources/open_lineage/event_required_nanoseconds.json"
    assert parse_event(load(path)).time_key.startswith("2020-12-28T19:51:01.641499")


def test_a_missing_schema_url_is_a_warning_not_a_rejection():
    path = CORPUS / "lenient/marquez/api/src/test/resources/open_lineage/event_without_schema_url.json"
    assert "schemaURL is missing" in parse_event(load(path)).warnings


def test_a_run_id_that_is_not_a_uuid_is_accepted_with_a_warning():
    event = parse_event(run_event("j", "run_id"))
    assert event.warnings == ["run.runId 'run_id' is not a UUID"]


def broken(**changes):
    event = run_event("j", "66666666-6666-4666-8666-666666666666", inputs=[("db", "t")])
    for path, value in changes.items():
        target = event
        *parents, last = path.split("__")
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        if value is KeyError:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return event


@pytest.mark.parametrize(
    "event, message",
    [
        ([], "an event must be a JSON object, got list"),
        ({"eventTime": "2024-01-01T00:00:00Z"}, "not an OpenLineage event: it has none of 'run', 'job', 'dataset'"),
        (broken(run__runId=KeyError), "run.runId is missing"),
        (broken(run__runId=""), "run.runId is missing"),
        (broken(run__runId="a b"), "run.runId: 'a b' has white space"),
        (broken(eventTime=KeyError), "eventTime: expected an ISO 8601 date-time"),
        (broken(eventTime="yesterday"), "eventTime: expected an ISO 8601 date-time"),
        (broken(eventTime="2024-13-45T00:00:00Z"), "eventTime: '2024-13-45T00:00:00Z' is not an ISO 8601 date-time"),
        (broken(eventType="DONE"), "eventType: 'DONE' is not one of"),
        (broken(job=KeyError), "job: expected an object with 'namespace' and 'name'"),
        (broken(job__name=""), "job.name: expected a non-empty string"),
        (broken(job__namespace=7), "job.namespace: expected a non-empty string, got 7"),
        (broken(inputs={"namespace": "a"}), "inputs: expected a list of datasets"),
        (broken(inputs__0__name=None), r"inputs\[0\].name: expected a non-empty string"),
        (broken(run__facets=[1]), "run.facets: expected an object of facets"),
        (broken(run__facets={"x": 1}), "run.facets.x: a facet must be an object"),
        (
            broken(inputs__0={"namespace": "a", "name": "b", "facets": {"schema": "nope"}}),
            r"inputs\[0\].facets.schema: a facet must be an object",
        ),
    ],
)
def test_an_event_that_would_lose_meaning_is_rejected_naming_the_field(event, message):
    with pytest.raises(EventError, match=message):
        parse_event(event)


@pytest.mark.parametrize(
    "facet, value, problem",
    [
        ("outputStatistics", {"rowCount": "wrong"}, "rowCount must be an integer, got 'wrong'"),
        (
            "columnLineage",
            {"fields": {"a": {"inputFields": [{"name": "x"}]}}},
            "fields.a.inputFields[0] needs namespace, name and field, non-empty strings of at most 4096 characters",
        ),
        ("version", {"datasetVersion": 3}, "datasetVersion must be a non-empty string"),
    ],
)
def test_a_standard_facet_that_breaks_its_spec_is_flagged(facet, value, problem):
    event = run_event("j", outputs=[{"namespace": "db", "name": "t", "facets": {facet: value}}])
    parsed = parse_event(event)
    assert parsed.bad_facets == {f"outputs[0].facets.{facet}"}
    assert parsed.warnings == [f"outputs[0].facets.{facet}: {problem}; facet kept but not used"]
