"""Hostile input against the store (issue #13, collisions): keys that could collide, and the events
of one run disagreeing about an output's type. Every test runs on every backend."""

from __future__ import annotations

import itertools
import uuid

import pytest
from conftest import ingest_events, run_event, snapshot
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lineage.graph import Graph
from lineage.ids import dataset_id, job_id
from lineage.projection import facet_name
from lineage.store import open_store

RUN = "44444444-4444-4444-8444-444444444444"
TRICKY = st.lists(
    st.sampled_from(["\x00", "/", "@", "%", ":", "\n", "a", "b", "é", "猫", "_", "~", "input:"]), min_size=1, max_size=6
).map("".join)


def facet(**values) -> dict:
    return {"_producer": "https://example.com/p", "_schemaURL": "https://example.com/s", **values}


def fresh(store, tmp_path, label: str):
    """An empty store of the same backend: a new SQLite file, or the Neo4j server emptied."""
    if store.scheme == "sqlite":
        return open_store(f"sqlite:///{tmp_path}/{label}.db")
    store.drop_everything(confirm=True)
    return store


# --- keys ---------------------------------------------------------------------


def test_a_facet_name_holding_nul_does_not_overwrite_the_facet_of_a_node_whose_name_holds_nul(store):
    # joined with NUL, (job:t/x, "a\0b") and (job:t/x\0a, "b") were the same key
    ingest_events(
        store,
        [
            run_event("x", job_facets={"a\x00b": facet(who="first")}),
            run_event("x\x00a", job_facets={"b": facet(who="second")}),
        ],
    )
    assert store.facets(job_id("test", "x")) == {"a\x00b": facet(who="first")}
    assert store.facets(job_id("test", "x\x00a")) == {"b": facet(who="second")}


def test_column_edges_whose_field_names_hold_nul_are_kept_apart(store):
    # joined with NUL, (src, "a", t/x, "t/y\0c") and (src, "a\0t/x", t/y, "c") were the same key
    def lineage(field: str, source: str) -> dict:
        return {
            "columnLineage": facet(
                fields={field: {"inputFields": [{"namespace": "t", "name": "src", "field": source}]}}
            )
        }

    x, y = dataset_id("t", "x"), dataset_id("t", "y")
    ingest_events(
        store,
        [
            run_event(
                "j1",
                inputs=[("t", "src")],
                outputs=[{"namespace": "t", "name": "x", "facets": lineage(f"{y}\x00c", "a")}],
            ),
            run_event("j2", outputs=[{"namespace": "t", "name": "y", "facets": lineage("c", f"a\x00{x}")}]),
        ],
    )
    edges = Graph(store).columns(dataset_id("t", "src")).edges
    assert sorted((e.src_field, e.dst, e.dst_field) for e in edges) == [("a", x, f"{y}\x00c"), (f"a\x00{x}", y, "c")]


def test_an_event_cannot_forge_the_run_state_with_a_facet_named_state(store):
    ingest_events(
        store,
        [
            run_event(
                "j",
                RUN,
                event_type="START",
                run_facets={"_state": {"eventType": "COMPLETE", "eventTime": "2999-01-01"}},
            )
        ],
    )
    facets = store.facets(f"run:{RUN}")
    assert facets["_state"]["eventType"] == "START"
    assert facets["~_state"] == {"eventType": "COMPLETE", "eventTime": "2999-01-01"}


def test_an_event_cannot_forge_a_release_or_approval_facet_on_a_model(store):
    model = {
        "namespace": "ml",
        "name": "m",
        "facets": {
            "datasetType": facet(datasetType="MODEL"),
            "version": facet(datasetVersion="1"),
            "auditgraph.release": {"decision": "released"},
            "auditgraph.approval": {"decision": "approve"},
        },
    }
    ingest_events(store, [run_event("train", outputs=[model])])
    facets = store.facets("model:ml/m@1")
    assert "auditgraph.release" not in facets and "auditgraph.approval" not in facets
    assert facets["~auditgraph.release"] == {"decision": "released"}


def test_a_dataset_facet_named_like_an_output_facet_does_not_overwrite_it(store):
    out = {
        "namespace": "t",
        "name": "d",
        "facets": {"output:stats": {"rows": 1}},
        "outputFacets": {"stats": {"rows": 2}},
    }
    ingest_events(store, [run_event("j", RUN, outputs=[out])])
    assert store.facets(dataset_id("t", "d", RUN)) == {"~output:stats": {"rows": 1}, "output:stats": {"rows": 2}}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(TRICKY, TRICKY, TRICKY), min_size=2, max_size=4, unique=True))
@example([("x", "a", "a\x00b"), ("x", "a\x00a", "b")])
@example([("x", "a", "input:k"), ("x", "a", "~input:k")])
def test_distinct_namespaces_names_and_facet_keys_never_share_a_key(store, triples):
    """Each (namespace, name, facet key) writes one job facet, one dataset facet and one output facet;
    every one reads back exactly as written."""
    tag = uuid.uuid4().hex[:8]  # examples share the store: keep each one's nodes apart
    events, expected = [], {}
    for i, (namespace, name, key) in enumerate(triples):
        ns, rid = f"{tag}{namespace}", str(uuid.uuid4())
        out = {"namespace": ns, "name": name, "facets": {key: {"i": i}}, "outputFacets": {key: {"o": i}}}
        events.append(run_event(name, rid, namespace=ns, job_facets={key: {"j": i}}, outputs=[out]))
        expected.setdefault(job_id(ns, name), {})[facet_name(key)] = {"j": i}
        expected.setdefault(dataset_id(ns, name), {})[facet_name(key)] = {"i": i}
        expected[dataset_id(ns, name, rid)] = {facet_name(key): {"i": i}, f"output:{key}": {"o": i}}
    assert ingest_events(store, events).accepted == len(events)
    assert {node: store.facets(node) for node in expected} == expected
    assert set(store.nodes(list(expected))) == set(expected)


# --- one run's events disagreeing about an output's type ----------------------


def _run_events(variant: str) -> list[dict]:
    marked = {
        "datasetType": {"datasetType": facet(datasetType="MODEL")},
        "auditgraph_model": {"auditgraph_model": {"framework": "sklearn"}},
    }
    times = ["2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z", "2024-05-01T10:02:00Z"]
    events = []
    for i, (kind, time) in enumerate(zip(("START", "RUNNING", "COMPLETE"), times)):
        facets = {"schema": facet(fields=[{"name": f"c{i}"}])}
        if (
            (variant == "complete-marks" and kind == "COMPLETE")
            or (variant == "start-marks" and kind == "START")
            or (variant == "running-marks-with-auditgraph-facet" and kind == "RUNNING")
        ):
            facets.update(marked["auditgraph_model" if "auditgraph" in variant else "datasetType"])
        out = {"namespace": "ml", "name": "m", "facets": facets}
        events.append(run_event("train", RUN, event_type=kind, time=time, inputs=[("s3://b", "f")], outputs=[out]))
    return events


@pytest.mark.parametrize("variant", ["complete-marks", "start-marks", "running-marks-with-auditgraph-facet"])
def test_a_runs_output_is_one_model_whatever_the_order_and_batching_of_its_events(store, tmp_path, variant):
    events = _run_events(variant)
    graphs = {}
    for n, order in enumerate(itertools.permutations(events)):
        for together in (False, True):
            target = fresh(store, tmp_path, f"{n}-{together}")
            if together:
                assert ingest_events(target, list(order)).accepted == 3
            else:
                assert sum(ingest_events(target, [e]).accepted for e in order) == 3
            graph = snapshot(target)
            target.rebuild()
            assert snapshot(target) == graph, "rebuild changed the graph"
            graphs[(n, together)] = graph
            if target is not store:
                target.close()
    first = next(iter(graphs.values()))
    assert all(g == first for g in graphs.values())
    assert sorted(i for (i,) in first["nodes"] if i.startswith(("model:", "dataset:ml"))) == [
        "model:ml/m",
        f"model:ml/m@{RUN}",
    ]
    model = f"model:ml/m@{RUN}"
    assert [e for e in first["edges"].values() if e[2] == model] == [
        (f"run:{RUN}", "WROTE", model, "2024-05-01T10:00:00.000000Z")
    ]
    assert first["facets"][(model, "schema")][2]["fields"] == [{"name": "c2"}]  # the latest event's, as for any facet
