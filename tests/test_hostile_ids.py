"""Hostile ids, times and store URLs (issue 13): bounded work, injective ids, clean refusals, no leaked password.

Real parts only: a real SQLite file, the real CLI, a real HTTP server on loopback, and a
Neo4j URL pointing at a closed loopback port (the driver really tries to connect).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc

import httpx
import pytest
from click.testing import CliRunner
from conftest import free_port, ingest_events, live_server, run_event
from hypothesis import example, given
from hypothesis import strategies as st

from lineage.cli import cli
from lineage.errors import EventError, IdError, IdTooLongError, StoreError, StoreUrlError, TimeRangeError
from lineage.graph import Graph
from lineage.ids import MAX_ID_BYTES, MAX_READINGS, NodeId, code_id, dataset_id, job_id, model_id, parse_id, run_id
from lineage.ingest import Document, ingest
from lineage.openlineage import format_time, parse_time
from lineage.server import auth
from lineage.server.app import ServerConfig
from lineage.store import open_store, redact

HOSTILE_IDS = {
    "the issue's /@ pairs": "dataset:a/b" + "/@" * 300,
    "many slashes then many at signs": "dataset:a" + "/" * 400 + "b" + "@x" * 400,
    "many colons": "model:" + ":" * 2000 + "/x/" + "@" * 500,
    "many percent signs": "dataset:%/" + "%/@" * 600,
    "many at signs": "model:a/" + "b@" * 1500,
}


def lookups_of(store, monkeypatch) -> list[int]:
    """How many ids each of the store's node lookups asked for (the real lookup still runs)."""
    sizes: list[int] = []
    real = store.nodes

    def counting(ids):
        sizes.append(len(ids))
        return real(ids)

    monkeypatch.setattr(store, "nodes", counting)
    return sizes


# --- 1. resolving an id is bounded work -------------------------------------------------


@pytest.mark.parametrize("shape", sorted(HOSTILE_IDS))
def test_a_hostile_id_is_refused_after_a_bounded_number_of_lookups_and_little_memory(sqlite_store, monkeypatch, shape):
    text = HOSTILE_IDS[shape]
    assert len(text.encode()) <= MAX_ID_BYTES
    ingest_events(sqlite_store, [run_event("j", outputs=[("a", "b"), ("file:///tmp/a/b", "x@1/y")])])
    sizes = lookups_of(sqlite_store, monkeypatch)
    tracemalloc.start()
    try:
        with pytest.raises(IdError, match=f"more than {MAX_READINGS} unescaped readings"):
            Graph(sqlite_store).resolve(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sizes == [1]  # the printed reading only: the other readings were counted, not looked up
    assert peak < 2 << 20, f"resolving took {peak} bytes"
    row = Graph(sqlite_store).resolve(
        "dataset:file:///tmp/a/b/x@1/y"
    )  # an unescaped paste with few readings still works
    assert (row.namespace, row.name) == ("file:///tmp/a/b", "x@1/y") and len(sizes) == 3


def test_an_id_longer_than_4_kib_is_refused_before_any_lookup(sqlite_store, monkeypatch):
    sizes = lookups_of(sqlite_store, monkeypatch)
    for text in ("dataset:a/" + "b" * MAX_ID_BYTES, "dataset:a/" + "é" * (MAX_ID_BYTES // 2)):
        with pytest.raises(IdTooLongError, match=f"an id is at most {MAX_ID_BYTES} bytes") as caught:
            Graph(sqlite_store).resolve(text)
        assert len(str(caught.value)) < 300  # the message quotes the id cut short
    assert sizes == []


def test_an_event_whose_dataset_id_would_be_too_long_to_name_is_rejected(sqlite_store):
    long = run_event("j", outputs=[("n" * 3000, "x" * 3000)])
    report = ingest_events(sqlite_store, [long, run_event("k", outputs=[("a", "b")])])
    assert report.accepted == 1
    [(where, reason)] = report.rejected
    assert where == "event[0]" and reason.startswith("outputs[0]: namespace and name together are too long")
    assert sqlite_store.stats()["ledger"]["entries"] == 1


@pytest.mark.slow
def test_hostile_ids_over_http_get_a_clear_4xx_with_a_read_key(tmp_path):
    url = f"sqlite:///{tmp_path}/server.db"
    with open_store(url) as store:
        token = auth.create_key(store, "reader", ["read"], "test")[1]
    headers = {"Authorization": f"Bearer {token}"}
    with live_server(ServerConfig(store_url=url, webhooks=False)) as server:
        for text in HOSTILE_IDS.values():
            answer = httpx.get(f"{server}/api/v1/nodes", params={"id": text}, headers=headers, timeout=10)
            assert 400 <= answer.status_code < 500 and f"more than {MAX_READINGS}" in answer.json()["detail"]
        too_long = httpx.get(
            f"{server}/api/v1/upstream", params={"id": "dataset:a/" + "b" * 5000}, headers=headers, timeout=10
        )
        assert 400 <= too_long.status_code < 500
        assert f"an id is at most {MAX_ID_BYTES} bytes" in too_long.json()["detail"]


# --- 2. every id constructor is injective --------------------------------------------------

HOSTILE_TEXT = st.text(alphabet=st.sampled_from("@/%:\x00\n a9é") | st.characters(), min_size=1, max_size=20)


def test_code_ids_of_revisions_holding_an_at_sign_are_distinct():
    assert code_id("https://g/r", "a@b") != code_id("https://g/r@a", "b")
    assert parse_id(code_id("https://g/r", "a@b")) == NodeId(prefix="code", namespace="https://g/r", version="a@b")
    assert parse_id(code_id("u", "100%")).version == "100%"
    assert code_id("git@github.com:org/repo.git", "4f2c9e1") == "code:git@github.com:org/repo.git@4f2c9e1"


def node_ids():
    versioned = st.tuples(st.sampled_from(["dataset", "model"]), HOSTILE_TEXT, HOSTILE_TEXT, st.none() | HOSTILE_TEXT)
    return (
        versioned
        | st.tuples(st.just("job"), HOSTILE_TEXT, HOSTILE_TEXT, st.none())
        | st.tuples(st.just("run"), st.just(""), HOSTILE_TEXT, st.none())
        | st.tuples(st.just("code"), HOSTILE_TEXT, st.just(""), HOSTILE_TEXT)
    )


def printed(node: tuple) -> str:
    prefix, namespace, name, version = node
    make = {"dataset": dataset_id, "model": model_id}
    if prefix in make:
        return make[prefix](namespace, name, version)
    if prefix == "job":
        return job_id(namespace, name)
    return run_id(name) if prefix == "run" else code_id(namespace, version)


@given(node_ids(), node_ids())
@example(("code", "https://g/r", "", "a@b"), ("code", "https://g/r@a", "", "b"))
@example(("dataset", "n\x00@", "a/b%40", "v@1"), ("dataset", "n\x00", "@a/b@", "v@1"))
@pytest.mark.slow
def test_distinct_parts_of_every_kind_print_as_distinct_ids_that_read_back(a, b):
    for node in (a, b):
        prefix, namespace, name, version = node
        assert parse_id(printed(node)) == NodeId(prefix=prefix, namespace=namespace, name=name, version=version)
    assert (printed(a) == printed(b)) == (a == b)


# --- 3. times outside what datetime holds --------------------------------------------------

OVERFLOWING = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59.999999-00:00:01"]


@pytest.mark.parametrize("text", OVERFLOWING)
def test_a_time_beyond_datetime_after_its_offset_is_a_time_range_error(text):
    with pytest.raises(TimeRangeError, match="outside years 1-9999 once read in UTC") as caught:
        parse_time(text, "eventTime")
    assert isinstance(caught.value, EventError) and str(caught.value).startswith("eventTime: ")


def test_stored_times_are_fixed_width_so_early_years_sort_first():
    early, late = (format_time(parse_time(t)[0]) for t in ("0999-06-01T00:00:00+01:00", "2024-01-01T00:00:00Z"))
    assert early == "0999-05-31T23:00:00.000000Z" and early < late
    assert format_time(parse_time("9999-12-31T23:59:59.999999Z")[0]) == "9999-12-31T23:59:59.999999Z"


def test_ingest_rejects_an_overflowing_event_time_with_its_place_and_records_the_rest(sqlite_store):
    events = [run_event("before"), run_event("bad", time=OVERFLOWING[0]), run_event("after")]
    report = ingest(sqlite_store, (Document(f"events.jsonl:{i + 1}", value=e) for i, e in enumerate(events)), "t")
    assert report.accepted == 2
    assert report.rejected == [
        ("events.jsonl:2", f"eventTime: {OVERFLOWING[0]!r} is outside years 1-9999 once read in UTC")
    ]
    assert {r.name for r in Graph(sqlite_store).search("job:", kinds=["job"])} == {"before", "after"}


def test_an_event_whose_inputs_are_not_a_list_is_rejected_not_a_crash(sqlite_store):
    job_event = {"eventTime": "2024-05-01T10:00:00Z", "job": {"namespace": "n", "name": "j"}, "inputs": 5}
    report = ingest_events(sqlite_store, [job_event, run_event("after")])
    assert report.accepted == 1 and report.rejected == [("event[0]", "inputs: expected a list of datasets")]


def test_the_cli_ingest_lists_the_overflowing_event_exits_1_and_keeps_the_others(tmp_path):
    source = tmp_path / "events.jsonl"
    lines = [run_event("before"), run_event("bad", time=OVERFLOWING[1]), run_event("after")]
    source.write_text("".join(json.dumps(e) + "\n" for e in lines))
    store = f"sqlite:///{tmp_path}/cli.db"
    result = CliRunner().invoke(cli, ["ingest", str(source), "--store", store], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stdout == "accepted 2, duplicate 0, rejected 1\n"
    assert (
        f"rejected: {source}:2: eventTime: {OVERFLOWING[1]!r} is outside years 1-9999 once read in UTC" in result.stderr
    )
    with open_store(store) as s:
        assert s.stats()["ledger"]["entries"] == 2


@pytest.mark.parametrize(
    "command",
    [
        ["lineage", "upstream", "job:n/j", "--as-of"],
        ["lineage", "downstream", "job:n/j", "--as-of"],
        ["lineage", "impact", "job:n/j", "--as-of"],
        ["lineage", "path", "job:n/j", "job:n/k", "--as-of"],
        ["audit", "log", "--since"],
        ["audit", "log", "--until"],
    ],
)
@pytest.mark.parametrize("text", OVERFLOWING[:2])
def test_every_time_option_beyond_datetime_is_a_usage_error_with_the_reason(tmp_path, command, text):
    result = CliRunner().invoke(cli, [*command, text, "--store", f"sqlite:///{tmp_path}/s.db"])
    assert result.exit_code == 2, result.output
    assert f"{command[-1]}: {text!r} is outside years 1-9999 once read in UTC" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- 4. a store URL's password never reaches a message ---------------------------------

PASSWORDS = ["hun/ter2", "p#ss", "pa?ss", "p@ss@w", "p:a:ss", "p%40ss%2F", "pässwörd€", "a/b#c?d@e:f%g"]


def neo4j_urls(password: str) -> list[str]:
    port = free_port()  # nothing listens there
    return [
        f"neo4j://neo4j:{password}@127.0.0.1:{port}",
        f"bolt://neo4j:{password}@127.0.0.1:{port}?database=x",
        f"neo4j://neo4j:{password}@127.0.0.1:notaport",
        f"sqlite://u:{password}@host/x.db",
        f"neo4j:u:{password}@127.0.0.1",
    ]


@pytest.mark.slow
def test_open_store_errors_never_hold_the_password():
    for password in PASSWORDS:
        for url in neo4j_urls(password):
            with pytest.raises((StoreError, StoreUrlError)) as caught:  # unreachable, or malformed
                open_store(url)
            assert password not in str(caught.value) and password not in repr(caught.value), url
            assert "***" in str(caught.value)
            assert password not in redact(url)


@pytest.mark.parametrize("args", [["store", "stats"], ["lineage", "upstream", "job:n/j"], ["demo"]])
def test_cli_commands_never_print_the_password_of_their_store(args):
    for password in PASSWORDS:
        for url, code in zip(neo4j_urls(password), (3, 3, 2)):  # unreachable twice, then a port that is no number
            result = CliRunner().invoke(cli, [*args, "--store", url])
            assert result.exit_code == code, result.output
            assert password not in result.stdout + result.stderr
            assert result.stderr.startswith("Error: ") and "neo4j:***@127.0.0.1" in result.stderr


@pytest.mark.slow
def test_the_installed_command_prints_neither_the_password_nor_a_traceback(tmp_path):
    password = "a/b#c?d@e:f%gé"
    env = {**os.environ, "AUDITGRAPH_STORE": f"neo4j://neo4j:{password}@127.0.0.1:{free_port()}"}
    for args in (["store", "stats", "--json"], ["lineage", "search", "x"]):
        done = subprocess.run(
            [sys.executable, "-m", "lineage", *args], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert done.returncode == 3
        assert password not in done.stdout + done.stderr and "Traceback" not in done.stderr
        assert "Error: cannot open Neo4j store at neo4j://neo4j:***@127.0.0.1:" in done.stderr
