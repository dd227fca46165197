"""Versions follow event time and run outcome (issue 15, items 1, 2 and 9), on every backend.

A read of no named version binds to the newest version written, by a run that did not fail, at or
before the read's event time, whatever order the events arrive in; an append continues the version
before it, an overwrite does not.
"""

from __future__ import annotations

import itertools

import httpx
import pytest
from click.testing import CliRunner
from conftest import ingest_events, live_server, run_event, snapshot

from lineage.cli import cli
from lineage.graph import Graph
from lineage.ingest import Document, ingest
from lineage.store import open_store

W1, W2, R1, R2, F = (f"aaaaaaaa-0000-4000-8000-00000000000{i}" for i in range(1, 6))


def lifecycle(change: str) -> dict:
    return {"lifecycleStateChange": {"_producer": "x", "_schemaURL": "y", "lifecycleStateChange": change}}


def pipeline() -> list[dict]:
    """w1 writes t (START, COMPLETE); r1 reads it; w2 appends to t; r2 reads the newest t."""
    return [
        run_event("write", W1, event_type="START", time="2024-01-01T10:00:00Z", outputs=[("db", "t")]),
        run_event("write", W1, time="2024-01-01T10:01:00Z", outputs=[("db", "t")]),
        run_event("read", R1, time="2024-01-01T11:00:00Z", inputs=[("db", "t")], outputs=[("db", "u")]),
        run_event("write", W2, time="2024-01-01T12:00:00Z", outputs=[("db", "t")]),
        run_event("read", R2, event_type="START", time="2024-01-01T13:00:00Z", inputs=[("db", "t")]),
        run_event("read", R2, time="2024-01-01T13:05:00Z", inputs=[("db", "t")], outputs=[("db", "v")]),
    ]


def reads(store, run: str) -> list[str]:
    return sorted(e["src"] for e in Graph(store).node(f"run:{run}")["in"] if e["type"] == "READ_BY")


def one_by_one(store, events: list[dict]) -> None:
    """Each event in its own write transaction, as concurrent HTTP requests land."""
    for i, e in enumerate(events):
        ingest(store, [Document(f"e{i}", value=e)], "test", batch=1)


@pytest.mark.slow
def test_every_arrival_order_gives_the_same_graph_one_event_at_a_time(store, tmp_path):
    events = pipeline()
    one_by_one(store, events)
    expected = snapshot(store)
    assert reads(store, R1) == [f"dataset:db/t@{W1}"] and reads(store, R2) == [f"dataset:db/t@{W2}"]
    for n, order in enumerate(itertools.islice(itertools.permutations(events), 0, None, 37)):
        with open_store(f"sqlite:///{tmp_path}/p{n}.db") as other:
            one_by_one(other, list(order))
            assert snapshot(other) == expected, order


def test_a_read_that_arrives_before_the_write_is_rebound_on_both_backends_and_after_rebuild(store):
    events = pipeline()
    one_by_one(store, events[2:] + events[:2])  # the readers first, as the async transport may send them
    assert reads(store, R1) == [f"dataset:db/t@{W1}"]
    assert "dataset:db/t@unversioned" not in {r.id for r in Graph(store).search("@unversioned")}
    before = snapshot(store)
    store.rebuild()
    assert snapshot(store) == before


def test_a_run_reads_one_version_bound_at_its_earliest_read_even_if_its_start_comes_last(store):
    events = pipeline()
    late_write = run_event(
        "write", W2, time="2024-01-01T13:03:00Z", outputs=[("db", "t")]
    )  # between r2's START and COMPLETE
    one_by_one(store, [events[0], events[1], late_write, events[5], events[4]])  # r2: COMPLETE, then START
    assert reads(store, R2) == [f"dataset:db/t@{W1}"]


def test_a_failed_run_makes_no_version_that_later_reads_bind_to_in_either_order(store, tmp_path):
    fail = [
        run_event("build", F, event_type="START", time="2024-01-01T12:30:00Z", outputs=[("db", "t")]),
        run_event("build", F, event_type="FAIL", time="2024-01-01T12:31:00Z"),
    ]
    events = pipeline() + fail
    one_by_one(store, events)
    assert reads(store, R2) == [f"dataset:db/t@{W2}"]
    history = {v["id"]: v for v in Graph(store).history("dataset:db/t")["versions"]}
    assert history[f"dataset:db/t@{F}"]["failed"] is True and history[f"dataset:db/t@{W2}"]["failed"] is False
    with open_store(f"sqlite:///{tmp_path}/fail-first.db") as other:
        one_by_one(other, [fail[1]] + events[:-1])
        assert snapshot(other) == snapshot(store)


def test_a_model_that_only_ever_failed_is_not_impacted_unless_asked(store):
    model = {
        "namespace": "ml",
        "name": "churn",
        "facets": {"datasetType": {"_producer": "x", "_schemaURL": "y", "datasetType": "MODEL"}},
    }
    ingest_events(
        store,
        [
            run_event(
                "train", F, event_type="START", time="2024-01-02T00:00:00Z", inputs=[("db", "t")], outputs=[model]
            ),
            run_event("train", F, event_type="FAIL", time="2024-01-02T00:01:00Z"),
        ],
    )
    default = Graph(store).impact("dataset:db/t")
    assert default["levels"] == [
        {"distance": 1, "jobs": ["job:test/train"], "checks": [], "datasets": [], "models": []}
    ]
    included = Graph(store).impact("dataset:db/t", include_failed=True)
    assert included["levels"][0]["models"] == ["model:ml/churn"]
    down = Graph(store).traverse("dataset:db/t", "downstream")
    assert f"model:ml/churn@{F}" not in {n.id for n in down.nodes}


@pytest.mark.slow
def test_include_failed_on_the_cli_and_over_http(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    model = {
        "namespace": "ml",
        "name": "m",
        "facets": {"datasetType": {"_producer": "x", "_schemaURL": "y", "datasetType": "MODEL"}},
    }
    with open_store(url) as s:
        ingest_events(
            s,
            [
                run_event(
                    "train", F, event_type="FAIL", time="2024-01-02T00:01:00Z", inputs=[("db", "t")], outputs=[model]
                )
            ],
        )
    runner = CliRunner()
    plain = runner.invoke(cli, ["lineage", "impact", "dataset:db/t", "--store", url, "--json"])
    wide = runner.invoke(cli, ["lineage", "impact", "dataset:db/t", "--store", url, "--json", "--include-failed"])
    assert plain.exit_code == 0 and '"model:ml/m"' not in plain.output
    assert wide.exit_code == 0 and '"model:ml/m"' in wide.output
    down = runner.invoke(
        cli, ["lineage", "downstream", "dataset:db/t", "--store", url, "--include-failed", "--kind", "model"]
    )
    assert down.exit_code == 0 and f"model:ml/m@{F}" in down.output
    from lineage.server.app import ServerConfig

    with live_server(ServerConfig(store_url=url, public_reads=True)) as base:
        off = httpx.get(f"{base}/api/v1/impact", params={"id": "dataset:db/t"}).json()
        on = httpx.get(f"{base}/api/v1/impact", params={"id": "dataset:db/t", "include_failed": "true"}).json()
        bad = httpx.get(f"{base}/api/v1/impact", params={"id": "dataset:db/t", "include_failed": "perhaps"})
    assert [lv["models"] for lv in off["levels"]] == [[]]
    assert [lv["models"] for lv in on["levels"]] == [["model:ml/m"]]
    assert bad.status_code == 422


def test_an_append_continues_the_previous_version_and_an_overwrite_does_not(store):
    ingest_events(
        store,
        [
            run_event("create", W1, time="2024-01-01T00:00:00Z", inputs=[("db", "src")], outputs=[("db", "t")]),
            run_event("append", W2, time="2024-01-02T00:00:00Z", outputs=[("db", "t")]),
            run_event("read", R1, time="2024-01-03T00:00:00Z", inputs=[("db", "t")]),
            run_event(
                "overwrite",
                F,
                time="2024-01-04T00:00:00Z",
                outputs=[{"namespace": "db", "name": "t", "facets": lifecycle("OVERWRITE")}],
            ),
            run_event("read", R2, time="2024-01-05T00:00:00Z", inputs=[("db", "t")]),
        ],
    )
    appended = {n.id for n in Graph(store).traverse(f"run:{R1}", "upstream", kinds=["job"]).nodes}
    assert appended == {"job:test/read", "job:test/append", "job:test/create"}
    overwritten = {n.id for n in Graph(store).traverse(f"run:{R2}", "upstream", kinds=["job"]).nodes}
    assert overwritten == {"job:test/read", "job:test/overwrite"}
    assert [e["src"] for e in Graph(store).node(f"dataset:db/t@{W2}")["in"] if e["type"] == "CONTINUED_BY"] == [
        f"dataset:db/t@{W1}"
    ]
    assert Graph(store).impact("dataset:db/src")["levels"][1]["jobs"] == ["job:test/read"]


def test_as_of_answers_with_the_bindings_of_events_up_to_that_time(store):
    events = pipeline()
    one_by_one(store, events[4:] + events[:4])
    then = Graph(store).traverse(f"dataset:db/t@{W1}", "downstream", kinds=["job"], as_of="2024-01-01T11:30:00.000000Z")
    assert {n.id for n in then.nodes} == {"job:test/read"}
    early = Graph(store).traverse(f"run:{R2}", "upstream", kinds=["dataset"], as_of="2024-01-01T12:30:00.000000Z")
    assert {n.id for n in early.nodes} == set()  # R2's read (13:00) had not happened by then
    assert reads(store, R2) == [f"dataset:db/t@{W2}"]


def test_a_known_at_copy_answers_with_what_was_known_before_a_late_write_rebound_the_reads(tmp_path):
    """--as-of asks what was true at an event time (with later corrections); a --known-at copy of the
    ledger answers what the store knew when, before a late write re-bound the read."""
    url = f"sqlite:///{tmp_path}/full.db"
    writer = run_event(
        "write", "00000000-0000-4000-8000-0000000000a1", time="2024-05-01T10:00:00Z", outputs=[("lake", "orders")]
    )
    reader = run_event(
        "read",
        "00000000-0000-4000-8000-0000000000a2",
        time="2024-05-01T11:00:00Z",
        inputs=[("lake", "orders")],
        outputs=[("mart", "report")],
    )
    with open_store(url) as store:
        ingest_events(store, [reader])  # the async transport delivered the reader first
        [*_, known] = store.entries(limit=None)
        cut = known.recorded_at  # the store knew the reader then, and not yet the writer
        ingest_events(store, [writer])
    then = f"sqlite:///{tmp_path}/then.db"
    done = CliRunner().invoke(cli, ["store", "migrate", "--from", url, "--to", then, "--known-at", cut])
    assert done.exit_code == 0, done.output

    def up(u):
        return {n.id for n in Graph(open_store(u)).traverse("dataset:mart/report", "upstream").nodes}

    assert "dataset:lake/orders@unversioned" in up(then) and "run:00000000-0000-4000-8000-0000000000a1" not in up(then)
    assert "run:00000000-0000-4000-8000-0000000000a1" in up(url)  # re-bound by event time once the write arrived


def test_the_history_table_marks_a_version_a_failed_run_wrote(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    with open_store(url) as s:
        ingest_events(s, [run_event("w", F, event_type="FAIL", time="2024-01-02T00:01:00Z", outputs=[("db", "out")])])
    shown = CliRunner().invoke(cli, ["lineage", "history", "dataset:db/out", "--store", url])
    assert shown.exit_code == 0 and "(failed: an attempted write)" in shown.output
