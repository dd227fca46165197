"""The store contract: written once, run on every backend (the ``store`` fixture)."""

from __future__ import annotations

import random

import pytest
from conftest import (
    corpus_files,
    ingest_events,
    ingest_files,
    load,
    run_event,
    scenario_files,
    snapshot,
)

from lineage.errors import LineageError, NotFoundError
from lineage.graph import Graph
from lineage.ids import dataset_id

BQ = "bigquery"
GS = "gs://mock-bucket"


def ids(walk, prefix: str | None = None) -> set[str]:
    return {n.id for n in walk.nodes if prefix is None or n.id.startswith(prefix)}


def entities(walk, prefix: str) -> set[str]:
    """Dataset or model ids without their version."""
    return {n.id.split("@")[0] for n in walk.nodes if n.id.startswith(prefix)}


# --- the corpus -------------------------------------------------------------


def test_every_valid_and_lenient_corpus_event_is_accepted(store):
    report = ingest_files(store, corpus_files("valid") + corpus_files("lenient"))
    assert report.rejected == []
    assert report.accepted + report.duplicates == 93 + 39
    assert store.head().seq == report.accepted
    assert store.verify().ok


@pytest.mark.slow
def test_ingesting_the_corpus_twice_changes_nothing(store):
    files = corpus_files("valid") + corpus_files("lenient")
    first = ingest_files(store, files)
    head, graph = store.head(), snapshot(store)
    second = ingest_files(store, files)
    assert second.accepted == 0 and second.duplicates == first.accepted + first.duplicates
    assert store.head() == head
    assert snapshot(store) == graph


def test_invalid_corpus_events_are_rejected_or_have_their_bad_facet_flagged(store):
    report = ingest_files(store, corpus_files("invalid"))
    assert [(w.rsplit("/", 1)[-1], r) for w, r in report.rejected] == [
        ("event_no_run_id.json:1", "run.runId is missing: a run event without a run id cannot be merged or traced"),
    ]
    flagged = {w.rsplit("/", 1)[-1].split(":")[0] for w, m in report.warnings if "facet kept but not used" in m}
    assert flagged == {
        "event_invalid_dataset_facet.json",
        "event_invalid_input_dataset_facet.json",
        "event_invalid_job_facet.json",
        "event_invalid_output_dataset_facet.json",
        "event_invalid_run_facet.json",
    }
    assert report.accepted == 5


def test_a_flagged_parent_facet_is_kept_but_makes_no_edge(store):
    path = corpus_files("invalid")[-2]  # event_invalid_run_facet.json: parent.run without runId
    assert path.name == "event_invalid_run_facet.json"
    ingest_files(store, [path])
    event = load(path)
    node = Graph(store).node(f"run:{event['run']['runId']}")
    assert node["facets"]["parent"] == event["run"]["facets"]["parent"]
    assert [e for e in node["out"] if e["type"] == "CHILD_OF"] == []


# --- answers that match the events ------------------------------------------


def test_airflow_upstream_of_the_final_output_is_the_whole_bigquery_chain(store):
    ingest_files(store, scenario_files("airflow"))
    walk = Graph(store).traverse(dataset_id(GS, "result.csv"), "upstream")
    assert entities(walk, "dataset:") == {
        dataset_id(GS, "result.csv"),
        dataset_id(BQ, "mock-project.test.upload_cp"),
        dataset_id(BQ, "mock-project.test.upload"),
        dataset_id(GS, "copied.csv"),
        dataset_id(GS, "test.csv"),
    }
    assert ids(walk, "job:") == {"job:airflow/BQ.download", "job:airflow/BQ.copy", "job:airflow/BQ.upload"}
    assert walk.truncated is False


def test_airflow_downstream_of_an_uploaded_file_follows_every_gcs_task(store):
    ingest_files(store, scenario_files("airflow"))
    walk = Graph(store).traverse(dataset_id(GS, "uploaded_file.txt"), "downstream")
    assert entities(walk, "dataset:") == {
        dataset_id(GS, "uploaded_file.txt"),
        dataset_id(GS, "copy_of_uploaded_file.txt"),
        dataset_id(GS, "compose_result.txt"),
        dataset_id("file", "/files/temp/downloaded_file.txt"),
    }
    assert ids(walk, "job:") == {
        "job:airflow/gcs_hook.rewrite_task",
        "job:airflow/gcs_hook.download_to_file",
        "job:airflow/gcs_hook.compose_task",
    }


def test_airflow_tasks_are_children_of_their_dag_run(store):
    ingest_files(store, scenario_files("airflow"))
    node = Graph(store).node("job:airflow/BQ.copy")
    [run] = [e["src"] for e in node["in"] if e["type"] == "RUN_OF"]
    parent = [e["dst"] for e in Graph(store).node(run)["out"] if e["type"] == "CHILD_OF"]
    assert parent == ["run:01936893-9751-7a91-a2a0-a51101a3970c"]
    dag_run = Graph(store).node(parent[0])
    assert [e["dst"] for e in dag_run["out"] if e["type"] == "RUN_OF"] == ["job:airflow/BQ"]


def test_spark_insert_reads_t1_and_writes_t2(store):
    ingest_files(store, scenario_files("spark_dataproc_simple_producer_test_complete"))
    ns = "hdfs://dataproc-producer-test-m"
    up = Graph(store).traverse(dataset_id(ns, "/user/hive/warehouse/t2"), "upstream")
    assert entities(up, "dataset:") == {
        dataset_id(ns, "/user/hive/warehouse/t2"),
        dataset_id(ns, "/user/hive/warehouse/t1"),
    }
    down = Graph(store).traverse(dataset_id(ns, "/user/hive/warehouse/t1"), "downstream", kinds=["job"])
    assert ids(down) == {"job:default/cl_i_test_application.execute_insert_into_hive_table.warehouse_t2"}


def test_spark_run_state_merges_start_running_complete_in_any_order(store, tmp_path):
    files = scenario_files("spark_dataproc_simple_producer_test_complete")
    shuffled = files[:]
    random.Random(7).shuffle(shuffled)
    ingest_files(store, shuffled)
    run = "run:" + load(files[13])["run"]["runId"]
    node = Graph(store).node(run)
    assert node["facets"]["_state"]["eventType"] == "COMPLETE"
    assert node["first_seen"] < node["last_seen"]


def test_events_of_one_run_give_the_same_graph_in_any_arrival_order(store, tmp_path):
    from lineage.store import open_store

    files = scenario_files("spark_dataproc_bigquery_shakespare")
    ingest_files(store, files)
    other = open_store(f"sqlite:///{tmp_path}/reversed.db")
    ingest_files(other, list(reversed(files)))
    assert snapshot(store) == snapshot(other)
    other.close()


def test_column_lineage_of_the_cll_scenario_both_ways(store):
    ingest_files(store, scenario_files("CLL"))
    tbl1 = dataset_id("file", "/tmp/cll_test/tbl1")
    up = Graph(store).columns(tbl1, "ident")
    assert {(h.src, h.src_field) for h in up.edges if h.direction == "upstream"} == {
        (dataset_id("file", "/tmp/cll_test/cll_source1"), "a"),
        (dataset_id("file", "/tmp/cll_test/cll_source1"), "b"),
        (dataset_id("file", "/tmp/cll_test/cll_source2"), "a"),
    }
    down = Graph(store).columns(dataset_id("file", "/tmp/cll_test/cll_source1"), "a")
    assert {(h.dst, h.dst_field) for h in down.edges if h.direction == "downstream"} >= {(tbl1, "ident")}
    identity = [h for h in up.edges if h.src_field == "a" and h.src.endswith("cll_source1")][0]
    assert {"type": "DIRECT", "subtype": "IDENTITY", "description": "", "masking": False} in identity.transformations


# --- models, code, versions ---------------------------------------------------


def test_an_output_marked_as_model_becomes_a_model_version_with_its_code(store):
    model = {
        "namespace": "ml",
        "name": "churn",
        "facets": {
            "datasetType": {"_producer": "x", "_schemaURL": "y", "datasetType": "MODEL"},
            "version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "7"},
        },
    }
    code = {
        "sourceCodeLocation": {
            "_producer": "x",
            "_schemaURL": "y",
            "type": "git",
            "url": "git@github.com:org/repo.git",
            "version": "abc123",
        }
    }
    ingest_events(store, [run_event("train", inputs=[("s3://b", "features")], outputs=[model], job_facets=code)])
    walk = Graph(store).traverse("model:ml/churn@7", "upstream")
    assert ids(walk) >= {
        "model:ml/churn@7",
        "code:git@github.com:org/repo.git@abc123",
        "dataset:s3://b/features@unversioned",
    }
    assert Graph(store).resolve("model:ml/churn").kind == "Model"


def test_a_dataset_written_without_a_version_gets_one_per_run_and_readers_see_the_latest(store):
    r1, r2, r3 = (
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
        "33333333-3333-4333-8333-333333333333",
    )
    ingest_events(
        store,
        [
            run_event("write", r1, time="2024-01-01T00:00:00Z", outputs=[("db", "t")]),
            run_event("write", r2, time="2024-01-02T00:00:00Z", outputs=[("db", "t")]),
            run_event("read", r3, time="2024-01-03T00:00:00Z", inputs=[("db", "t")], outputs=[("db", "u")]),
        ],
    )
    history = Graph(store).history("dataset:db/t")
    assert [v["version"] for v in history["versions"]] == [r1, r2]
    assert [v["written_by"] for v in history["versions"]] == [f"run:{r1}", f"run:{r2}"]
    assert [e["src"] for e in Graph(store).node(f"run:{r3}")["in"] if e["type"] == "READ_BY"] == [f"dataset:db/t@{r2}"]
    # r2 appended (no lifecycleStateChange facet), so its version continues r1's
    assert ids(Graph(store).traverse(f"dataset:db/u@{r3}", "upstream", kinds=["dataset"])) == {
        f"dataset:db/u@{r3}",
        f"dataset:db/t@{r2}",
        f"dataset:db/t@{r1}",
    }


def test_as_of_leaves_out_edges_that_became_true_later(store):
    ingest_events(
        store,
        [
            run_event("a", time="2024-01-01T00:00:00Z", inputs=[("db", "src")], outputs=[("db", "mid")]),
            run_event("b", time="2024-03-01T00:00:00Z", inputs=[("db", "mid")], outputs=[("db", "late")]),
        ],
    )
    now = Graph(store).traverse("dataset:db/src", "downstream", kinds=["job"])
    then = Graph(store).traverse("dataset:db/src", "downstream", kinds=["job"], as_of="2024-02-01T00:00:00.000000Z")
    assert ids(now) == {"job:test/a", "job:test/b"}
    assert ids(then) == {"job:test/a"}


@pytest.mark.parametrize("event_type", ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER", None])
def test_every_event_type_and_none_is_accepted_and_recorded_as_the_run_state(store, event_type):
    event = run_event("job", event_type=event_type, outputs=[("db", "t")])
    report = ingest_events(store, [event])
    assert report.accepted == 1
    assert Graph(store).node(f"run:{event['run']['runId']}")["facets"]["_state"]["eventType"] == event_type


def test_a_terminal_state_wins_over_a_running_event_at_the_same_time(store):
    run = "44444444-4444-4444-8444-444444444444"
    ingest_events(store, [run_event("j", run, event_type="FAIL"), run_event("j", run, event_type="RUNNING")])
    assert Graph(store).node(f"run:{run}")["facets"]["_state"]["eventType"] == "FAIL"


def test_custom_facets_are_kept_whole(store):
    facet = {"_producer": "x", "_schemaURL": "y", "nested": {"deep": [1, 2.5, "three", None, True]}}
    event = run_event("j", run_facets={"my_custom": facet})
    ingest_events(store, [event])
    assert Graph(store).node(f"run:{event['run']['runId']}")["facets"]["my_custom"] == facet


def test_dataset_and_job_events_record_their_nodes(store):
    client = corpus_files("valid", "OpenLineage", "client")
    dataset_event, job_event = (
        load(p) for p in client if p.name in ("serde_example_dataset_event.json", "serde_example_job_event.json")
    )
    assert ingest_events(store, [dataset_event, job_event]).accepted == 2
    d, j = dataset_event["dataset"], job_event["job"]
    assert Graph(store).resolve(dataset_id(d["namespace"], d["name"])).kind == "Dataset"
    assert Graph(store).resolve(f"job:{j['namespace']}/{j['name']}").kind == "Job"


# --- traversal limits ---------------------------------------------------------


def chain(n: int) -> list[dict]:
    return [
        run_event(
            f"step{i}", time=f"2024-01-01T00:{i:02d}:00Z", inputs=[("db", f"t{i}")], outputs=[("db", f"t{i + 1}")]
        )
        for i in range(n)
    ]


def test_depth_zero_returns_only_the_start_and_says_it_was_truncated(store):
    ingest_events(store, chain(3))
    walk = Graph(store).traverse("dataset:db/t3", "upstream", depth=0)
    assert [n.distance for n in walk.nodes] == [0]
    assert walk.truncated and walk.truncated_reason == "depth limit of 0 reached"


def test_upstream_stops_at_the_depth_limit(store):
    ingest_events(store, chain(5))
    walk = Graph(store).traverse("dataset:db/t5", "upstream", depth=4, kinds=["dataset"])
    assert entities(walk, "dataset:") == {"dataset:db/t5", "dataset:db/t4", "dataset:db/t3"}
    assert walk.truncated


def test_a_full_walk_is_not_truncated(store):
    ingest_events(store, chain(5))
    walk = Graph(store).traverse("dataset:db/t5", "upstream")
    assert len(entities(walk, "dataset:")) == 6 and not walk.truncated


def test_the_node_cap_stops_the_walk_and_says_so(store):
    ingest_events(store, chain(10))
    walk = Graph(store).traverse("dataset:db/t10", "upstream", max_nodes=5)
    assert walk.truncated and walk.truncated_reason == "node cap of 5 reached"
    assert len([n for n in walk.nodes if not n.id.startswith("job:")]) == 5


def test_a_cycle_ends(store):
    ingest_events(
        store,
        [
            run_event(
                "ab",
                time="2024-01-01T00:00:00Z",
                inputs=[("db", "a")],
                outputs=[
                    {
                        "namespace": "db",
                        "name": "b",
                        "facets": {"version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "1"}},
                    }
                ],
            ),
            run_event(
                "ba",
                time="2024-01-02T00:00:00Z",
                inputs=[
                    {
                        "namespace": "db",
                        "name": "b",
                        "facets": {"version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "1"}},
                    }
                ],
                outputs=[
                    {
                        "namespace": "db",
                        "name": "a",
                        "facets": {"version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "unversioned"}},
                    }
                ],
            ),
        ],
    )
    walk = Graph(store).traverse("dataset:db/a", "downstream")
    assert {"dataset:db/b@1", "dataset:db/a@unversioned"} <= ids(walk)
    assert not walk.truncated


def test_impact_groups_jobs_datasets_and_models_by_distance(store):
    ingest_events(store, chain(3))
    result = Graph(store).impact("dataset:db/t0")
    assert [(lv["distance"], lv["jobs"], lv["datasets"]) for lv in result["levels"]] == [
        (1, ["job:test/step0"], ["dataset:db/t1"]),
        (2, ["job:test/step1"], ["dataset:db/t2"]),
        (3, ["job:test/step2"], ["dataset:db/t3"]),
    ]


def test_path_finds_the_data_flow_between_two_datasets(store):
    ingest_events(store, chain(3))
    result = Graph(store).path("dataset:db/t0", "dataset:db/t3")
    assert result.found and result.direction == "downstream"
    assert result.nodes[0] == "dataset:db/t0" and result.nodes[-1] == "dataset:db/t3"
    assert len([n for n in result.nodes if n.startswith("run:")]) == 3
    backwards = Graph(store).path("dataset:db/t3", "dataset:db/t0")
    assert backwards.found and backwards.direction == "upstream"


def test_path_between_unconnected_nodes_is_not_found(store):
    ingest_events(store, chain(1) + [run_event("other", inputs=[("db", "x")], outputs=[("db", "y")])])
    assert not Graph(store).path("dataset:db/t0", "dataset:db/y").found


def test_search_finds_by_substring_and_kind(store):
    ingest_files(store, scenario_files("airflow"))
    found = [r.id for r in Graph(store).search("UPLOAD_CP", kinds=["dataset"])]
    assert found[0] == "dataset:bigquery/mock-project.test.upload_cp"
    assert all(i.startswith("dataset:") for i in found)


def test_search_treats_like_wildcards_literally(store):
    ingest_events(store, [run_event("j", outputs=[("db", "a_b")]), run_event("j", outputs=[("db", "axb")])])
    assert {r.id.split("@")[0] for r in Graph(store).search("a_b", kinds=["dataset"])} == {"dataset:db/a_b"}


# --- ids against the store ------------------------------------------------------


def test_an_unescaped_pasted_id_resolves_when_only_one_reading_exists(store):
    ingest_events(store, [run_event("j", outputs=[("file:///tmp", "x.csv")])])
    assert Graph(store).resolve("dataset:file:///tmp/x.csv").id == dataset_id("file:///tmp", "x.csv")


def test_an_unknown_id_says_it_is_not_in_the_store(store):
    with pytest.raises(NotFoundError, match="no node 'dataset:db/nothing' in the store"):
        Graph(store).resolve("dataset:db/nothing")


def test_bad_limits_are_refused(store):
    ingest_events(store, chain(1))
    with pytest.raises(LineageError, match="depth must be 0 or more"):
        Graph(store).traverse("dataset:db/t1", "upstream", depth=-1)


# --- the ledger --------------------------------------------------------------------


@pytest.mark.slow
def test_rebuild_gives_the_same_graph(store):
    ingest_files(store, corpus_files("valid") + corpus_files("lenient"))
    before = snapshot(store)
    assert store.rebuild() == store.head().seq
    assert snapshot(store) == before


def test_a_rejected_event_in_a_batch_changes_nothing_and_the_rest_land(store):
    good = run_event("j", outputs=[("db", "t")])
    bad = run_event("j")
    bad["eventType"] = "EXPLODED"
    report = ingest_events(store, [good, bad, run_event("k")])
    assert report.accepted == 2
    assert report.rejected == [
        ("event[1]", "eventType: 'EXPLODED' is not one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER")
    ]
    assert store.head().seq == 2 and store.verify().ok


def test_ledger_entries_filter_by_kind_subject_and_time(store):
    event = run_event("j")
    ingest_events(store, [event, run_event("k")])
    entries = list(store.entries(subject=f"run:{event['run']['runId']}"))
    assert [e.seq for e in entries] == [1]
    assert list(store.entries(kind="nothing")) == []
    assert len(list(store.entries(since="2000-01-01T00:00:00.000000Z"))) == 2
    assert list(store.entries(until="2000-01-01T00:00:00.000000Z")) == []


def test_a_read_in_a_batch_picks_the_truly_newest_version_even_if_an_older_one_was_seen_again(store):
    """Run x STARTs (writing t) in one batch; in the next, run y writes t later, x COMPLETEs, then t is read."""
    from lineage.ingest import Document, ingest

    x, y, r = (
        "aaaaaaaa-0000-4000-8000-000000000001",
        "aaaaaaaa-0000-4000-8000-000000000002",
        "aaaaaaaa-0000-4000-8000-000000000003",
    )
    first = [run_event("w", x, event_type="START", time="2024-01-01T10:00:00Z", outputs=[("db", "t")])]
    second = [
        run_event("w", y, time="2024-01-01T10:04:00Z", outputs=[("db", "t")]),
        run_event("w", x, time="2024-01-01T10:05:00Z", outputs=[("db", "t")]),
        run_event("r", r, time="2024-01-01T10:06:00Z", inputs=[("db", "t")]),
    ]
    for events in (first, second):
        ingest(store, (Document(f"e{i}", value=e) for i, e in enumerate(events)), "test", batch=len(events))
    read = [e["src"] for e in Graph(store).node(f"run:{r}")["in"] if e["type"] == "READ_BY"]
    assert read == [f"dataset:db/t@{y}"]


@pytest.mark.slow
def test_the_one_query_walks_equal_the_level_by_level_walk(store, tmp_path):
    """Each backend's fast ``walk`` (a recursive CTE on SQLite, a pruning BFS expand on Neo4j)
    returns exactly what the shared level-by-level BFS does: distances, edges and truncation,
    at every depth, with a node cap that cuts and with --as-of, on a generated platform with
    long version chains."""
    from benchmarks.generate import write
    from lineage.ingest import ingest, read_documents
    from lineage.projection import FLOW_EDGES
    from lineage.store.base import Store

    path = tmp_path / "platform.jsonl"
    write(2000, path)
    with open(path, "rb") as f:
        assert ingest(store, read_documents(f, "platform.jsonl"), "tester").ok
    models = [r.id for r in Graph(store).search("model:", kinds=["model"], limit=1000) if "@" in r.id]
    newest = max(models, key=lambda m: int(m.rsplit("@", 1)[1]))
    source = next(r.id for r in Graph(store).search("dataset:postgres", kinds=["dataset"], limit=50) if "@" not in r.id)
    middle = sorted(e.time for e in store.edges([newest], "upstream", ["WROTE"]))[0]
    deepest = 0
    for text, direction in ((newest, "upstream"), (source, "downstream")):
        starts = Graph(store)._expand(Graph(store).resolve(text), None)
        for depth in (None, 1, 3, 9, 12):
            for max_nodes in (10_000, 7):
                for as_of in (None, middle):
                    fast = store.walk(starts, direction, FLOW_EDGES, as_of, depth, max_nodes)
                    slow = Store.walk(store, starts, direction, FLOW_EDGES, as_of, depth, max_nodes)
                    assert fast[0] == slow[0], (text, depth, max_nodes, as_of)
                    assert sorted(fast[1]) == sorted(slow[1]) and fast[2] == slow[2]
                    deepest = max(deepest, *fast[0].values())
    assert deepest > 10  # the unbounded walks went deeper than every bound tried


@pytest.mark.slow
def test_bulk_ingest_leaves_no_cyclic_garbage_behind_its_batches(store, tmp_path):
    """Ingest pauses the cyclic collector (it tripled decoding time) and collects between batches:
    the Neo4j driver leaves cyclic garbage per transaction, which grew the 1M ingest to 8.8 GB."""
    import gc

    from benchmarks.generate import write
    from lineage.ingest import ingest, read_documents

    path = tmp_path / "platform.jsonl"
    write(600, path)
    gc.collect()
    gc.disable()  # so nothing collects behind the test's back
    try:
        with open(path, "rb") as f:
            report = ingest(store, read_documents(f, "platform.jsonl"), "tester", batch=50)
        left = gc.collect()
    finally:
        gc.enable()
    assert report.accepted > 300
    assert left < 100, f"{left} unreachable objects were left by {report.accepted // 50} batches"
