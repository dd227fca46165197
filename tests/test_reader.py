"""Reading JSON documents from streams: objects, arrays, JSON Lines, and broken input."""

from __future__ import annotations

import io
import json

import pytest

from lineage.errors import InputError
from lineage.ingest import read_documents


def read(text: str | bytes):
    data = text.encode() if isinstance(text, str) else text
    return [(d.where, d.value, d.error) for d in read_documents(io.BytesIO(data), "f")]


def test_a_single_pretty_printed_object():
    assert read('\n{\n  "a": 1\n}\n') == [("f:2", {"a": 1}, None)]


def test_an_array_is_unpacked_with_the_line_of_each_element():
    assert read('[\n {"a": 1},\n {"a": 2}\n]') == [("f:2", {"a": 1}, None), ("f:3", {"a": 2}, None)]


def test_json_lines_with_a_broken_line_reports_it_and_goes_on():
    docs = read('{"a": 1}\n{"a": \n{"a": 3}\n')
    assert docs[0] == ("f:1", {"a": 1}, None)
    assert docs[1] == ("f:2", None, "invalid JSON: Expecting ',' delimiter (at line 4)")
    assert docs[2] == ("f:3", {"a": 3}, None)


def test_an_unclosed_array_is_an_error():
    assert read('[{"a": 1}')[-1] == ("f:1", None, "the JSON array is not closed with ']'")


def test_a_missing_comma_in_an_array_stops_that_file():
    docs = read('[{"a": 1} {"a": 2}]')
    assert docs[1][2] == "expected ',' or ']' in the array, found '{'"
    assert len(docs) == 2


def test_invalid_utf8_is_an_input_error_naming_the_byte():
    with pytest.raises(InputError, match=r"f: invalid UTF-8 near byte 7"):
        read(b'{"a": "\xff"}')


def test_values_split_across_chunk_boundaries_are_read_whole(monkeypatch):
    monkeypatch.setattr("lineage.ingest.CHUNK", 7)
    events = [{"n": i, "text": "x" * i} for i in range(40)]
    assert [v for _, v, _ in read("\n".join(json.dumps(e) for e in events))] == events
    assert [v for _, v, _ in read(json.dumps(events))] == events


def test_a_number_at_a_chunk_boundary_is_not_cut(monkeypatch):
    monkeypatch.setattr("lineage.ingest.CHUNK", 4)
    assert [v for _, v, _ in read("1234567 89")] == [1234567, 89]


def test_reading_is_incremental():
    """The reader yields the first event before the stream is exhausted."""

    class Endless(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            line = b'{"a": 1}\n'
            buffer[: len(line)] = line
            return len(line)

    docs = read_documents(Endless(), "endless")
    assert [next(docs).value for _ in range(3)] == [{"a": 1}] * 3
