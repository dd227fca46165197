"""Property tests: parsers and loaders either accept or refuse with our error; they never crash."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.errors import RuleFileError
from governance.rules import load_rule_file
from lineage.errors import EventError, InputError
from lineage.ingest import read_documents
from lineage.openlineage import parse_event

pytestmark = pytest.mark.slow  # hypothesis runs hundreds of generated inputs through each parser

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)
names = st.text(min_size=1, max_size=12)
dataset = st.fixed_dictionaries(
    {"namespace": names, "name": names}, optional={"facets": st.dictionaries(names, json_values, max_size=3)}
)
events = st.fixed_dictionaries(
    {
        "eventTime": st.sampled_from(
            ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00", "yesterday", "2024-13-01T00:00:00Z"]
        )
        | json_scalars
    },
    optional={
        "eventType": st.sampled_from(["START", "COMPLETE", "FAIL", "ABORT", "OTHER", "RUNNING", "DONE"]) | json_scalars,
        "run": st.fixed_dictionaries(
            {},
            optional={
                "runId": st.uuids().map(str) | json_scalars,
                "facets": st.dictionaries(names, json_values, max_size=3) | json_values,
            },
        ),
        "job": st.fixed_dictionaries({"namespace": names | json_scalars, "name": names | json_scalars}) | json_values,
        "inputs": st.lists(dataset | json_values, max_size=3) | json_values,
        "outputs": st.lists(dataset | json_values, max_size=3) | json_values,
        "producer": st.text(max_size=10),
        "schemaURL": st.text(max_size=10),
    },
)


@settings(max_examples=400, deadline=None)
@given(events | json_values)
def test_the_event_parser_accepts_or_refuses_with_an_event_error(value):
    try:
        parsed = parse_event(value)
    except EventError:
        return
    assert parsed.subject.split(":")[0] in ("run", "job", "dataset")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_the_reader_never_crashes_on_arbitrary_bytes(data):
    try:
        for doc in read_documents(io.BytesIO(data), "fuzz"):
            assert (doc.value is None) != (doc.error is None) or doc.value is None
    except InputError:
        pass


rule_keys = st.sampled_from(
    ["id", "title", "rationale", "severity", "check", "params", "evidences", "applies_to", "typo"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(max_size=400)
    | st.lists(st.dictionaries(rule_keys, json_values | st.text(max_size=10), max_size=6), max_size=3).map(
        lambda rules: __import__("yaml").safe_dump({"rules": rules})
    )
)
def test_the_rule_loader_accepts_or_refuses_with_a_rule_file_error(tmp_path_factory, text):
    path = Path(tmp_path_factory.mktemp("rules")) / "r.yaml"
    path.write_text(text)
    try:
        load_rule_file(path)
    except RuleFileError as e:
        assert str(path) in str(e)
