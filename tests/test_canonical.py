"""The fast encoder and decoder give the reference bytes and values, or are not used.

Every hash in the ledger is over ``canonical_bytes`` (the standard library's
encoder). Ingestion takes a compiled path (orjson) for plain values; these
tests hold it to the reference byte for byte, including the cases where
orjson differs (floats, big integers, non-string keys), which must fall back.
"""

from __future__ import annotations

import io
import json
import math

import pytest
from conftest import run_event
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage.canonical import canonical_bytes, is_plain, plain_canonical_bytes, stored_json
from lineage.ingest import ingest, read_documents
from lineage.openlineage import MAX_DEPTH, parse_event

# Every code point but lone surrogates (which no encoder can write as UTF-8), keys included.
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
plain_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | text
plain_values = st.recursive(
    plain_scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5), max_leaves=40
)
any_scalars = plain_scalars | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
any_values = st.recursive(
    any_scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5), max_leaves=40
)


@settings(max_examples=500, deadline=None)
@given(plain_values)
@pytest.mark.slow
def test_the_fast_encoder_gives_the_reference_bytes_for_every_plain_value(value):
    assert is_plain(value, 1000)
    assert plain_canonical_bytes(value) == canonical_bytes(value)


@settings(max_examples=500, deadline=None)
@given(any_values)
@pytest.mark.slow
def test_any_json_value_is_either_plain_with_the_reference_bytes_or_holds_a_float(value):
    if is_plain(value, 1000):  # big integers are plain: orjson refuses them and the reference encoder writes them
        assert plain_canonical_bytes(value) == canonical_bytes(value)
    else:
        assert _holds_float(value)
    assert json.loads(stored_json(value)) == value


def _holds_float(value) -> bool:
    if isinstance(value, dict):
        return any(_holds_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_float(v) for v in value)
    return isinstance(value, float)


@pytest.mark.parametrize("value", [{"x": 1e-05}, {"x": 1e16}, {"x": 0.00001234}, [2.5, -0.0]])
def test_floats_make_a_value_not_plain(value):
    # orjson writes 1e-05 as 0.00001: a float may never reach the ledger through it
    assert not is_plain(value, 10)


@pytest.mark.parametrize("value", [{"x": 123456789012345678901234567890}, {"x": -(2**63) - 1}, {"x": 2**64}])
def test_integers_beyond_64_bits_fall_back_to_the_reference_encoder(value):
    assert is_plain(value, 10)
    assert plain_canonical_bytes(value) == canonical_bytes(value)


@pytest.mark.parametrize("value", [{1: "a"}, {None: 1}, {True: 1}])
def test_non_string_keys_fall_back_to_the_reference_encoder(value):
    assert plain_canonical_bytes(value) == canonical_bytes(value)


def test_non_json_values_are_refused_by_both_paths():
    import datetime

    for bad in ({"t": datetime.datetime(2024, 1, 1)}, {"x": object()}):
        assert not is_plain(bad, 10)
        with pytest.raises(TypeError):
            canonical_bytes(bad)
        with pytest.raises(TypeError):  # orjson could write a datetime; it is told not to
            plain_canonical_bytes(bad)
    with pytest.raises(ValueError):  # NaN is a float, so never plain; the reference encoder refuses it
        canonical_bytes({"x": math.nan})


def test_the_depth_limit_counts_containers_from_one():
    def nested(depth):
        value = {}
        for _ in range(depth - 1):
            value = {"a": value}
        return value

    assert is_plain(nested(MAX_DEPTH), MAX_DEPTH)
    with pytest.raises(RecursionError):
        is_plain(nested(MAX_DEPTH + 1), MAX_DEPTH)
    with pytest.raises(RecursionError):  # also once a float has made the value not plain
        is_plain([1.5, nested(MAX_DEPTH)], MAX_DEPTH)


def test_an_event_is_plain_only_without_floats():
    assert parse_event(run_event("r1")).plain
    event = run_event("r2")
    event["run"]["facets"] = {"metrics": {"_producer": "p", "_schemaURL": "s", "auc": 0.91}}
    assert not parse_event(event).plain


def test_a_jsonl_line_with_big_integers_and_floats_is_recorded_as_the_standard_decoder_reads_it(sqlite_store):
    # orjson reads 123456789012345678901234567890 as a float; the ledger must keep the integer
    event = run_event("f1")
    line = json.dumps(event)[:-1] + ', "x_big": 123456789012345678901234567890, "x_small": 1e-05}'
    report = ingest(sqlite_store, read_documents(io.BytesIO(line.encode() + b"\n"), "big.jsonl"), "tester")
    assert report.accepted == 1
    entry = next(sqlite_store.entries(kind="openlineage.event"))
    assert '"x_big":123456789012345678901234567890' in entry.payload
    assert '"x_small":1e-05' in entry.payload
    assert entry.payload == canonical_bytes(json.loads(line)).decode()


def test_a_fast_decoded_line_is_recorded_with_the_reference_bytes(sqlite_store):
    event = run_event("f2")
    event["job"]["facets"] = {"doc": {"_producer": "p", "_schemaURL": "s", "text": 'é \u2028 \x01 "q" \\ 😀'}}
    line = json.dumps(event, ensure_ascii=False).encode()
    ingest(sqlite_store, read_documents(io.BytesIO(line + b"\n"), "x.jsonl"), "tester")
    entry = next(sqlite_store.entries(kind="openlineage.event"))
    assert entry.payload.encode() == canonical_bytes(event)
