"""The graph verified against its ledger (issue 17), on every backend.

Someone who can write the database changes the graph and leaves the ledger alone: SQL on the
SQLite file, Cypher on Neo4j. ``audit verify --graph`` replays the ledger and names every row that
differs; ``governance gate --verify-graph`` refuses to run on such a store and ``release`` (and
``rollback``) always refuses when what it reads differs. An untouched store passes, the whole
OpenLineage corpus included.
"""

from __future__ import annotations

import json
import random
import sqlite3

import pytest
from click.testing import CliRunner
from conftest import corpus_files, ingest_events, ingest_files, run_event

from governance import records
from lineage import graphcheck
from lineage.cli import cli
from lineage.errors import GraphError
from lineage.graphcheck import Difference, GraphCheck, check_graph, check_upstream, compare
from lineage.query import PROJECTION, Unreadable
from lineage.store import open_store

INGEST, TRAIN = "aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002"
SOURCE = "dataset:postgres://crm:5432/crm.public.customers"
FEATURES = "dataset:s3://lake/features/churn"
MODEL = "model:ml/churn@1"
FAKE = "dataset:evil/clean@v1"
DIGEST = "sha256:" + "ab" * 32
FORGED = json.dumps({"version": "1", "artifactDigest": "sha256:" + "00" * 32})
PII_POLICY = """\
rules:
  - id: pii-needs-privacy-approval
    title: PII upstream needs the privacy officer
    rationale: Personal data may only train a model a privacy officer approved.
    severity: block
    check: data_tags
    params: {tags: [pii], approval_role: privacy-officer}
"""


def pipeline() -> list[dict]:
    """CRM customers --ingest--> features (one column from birth_date) --train--> model ml/churn@1."""
    lineage = {
        "fields": {
            "age": {
                "inputFields": [
                    {"namespace": "postgres://crm:5432", "name": "crm.public.customers", "field": "birth_date"}
                ]
            }
        }
    }
    features = {"namespace": "s3://lake", "name": "features/churn", "facets": {"columnLineage": lineage}}
    model = {
        "namespace": "ml",
        "name": "churn",
        "facets": {
            "datasetType": {"_producer": "t", "_schemaURL": "t", "datasetType": "MODEL"},
            "auditgraph_model": {"version": "1", "artifactDigest": DIGEST, "framework": "sklearn"},
        },
    }
    code = {
        "sourceCodeLocation": {
            "_producer": "t",
            "_schemaURL": "t",
            "type": "git",
            "url": "https://git/ml",
            "version": "c0ffee",
        }
    }
    return [
        run_event(
            "ingest_customers",
            INGEST,
            time="2024-05-01T09:00:00Z",
            inputs=[("postgres://crm:5432", "crm.public.customers")],
            outputs=[features],
        ),
        run_event(
            "train_churn",
            TRAIN,
            event_type="START",
            time="2024-05-01T10:00:00Z",
            inputs=[("s3://lake", "features/churn")],
            job_facets=code,
        ),
        run_event("train_churn", TRAIN, time="2024-05-01T10:30:00Z", outputs=[model], job_facets=code),
    ]


# What each tampering does, on SQLite (SQL on the file) and on Neo4j (Cypher), and the differences it must make.
TAMPERING = {
    "a READ_BY edge deleted": (
        ["DELETE FROM edges WHERE type = 'READ_BY' AND dst = :ingest"],
        ["MATCH (:Node)-[r:READ_BY]->(:Node {id: $ingest}) DELETE r"],
        [("edges", "missing", (f"{SOURCE}@unversioned", "READ_BY", f"run:{INGEST}"))],
    ),
    "the model's artifactDigest facet forged": (
        ["UPDATE facets SET value = :forged WHERE node = :model AND name = 'auditgraph_model'"],
        ["MATCH (f:Facet {node: $model, name: 'auditgraph_model'}) SET f.value = $forged"],
        [("facets", "different", (MODEL, "auditgraph_model"))],
    ),
    "a fake input node added": (
        [
            "INSERT INTO nodes VALUES (:fake, 'DatasetVersion', 'evil', 'clean', 'v1', 'dataset:evil/clean', :t, :t)",
            "INSERT INTO edges VALUES (:fake, 'READ_BY', :train, :t)",
        ],
        [
            "MATCH (r:Node {id: $train}) CREATE (f:Node:DatasetVersion {id: $fake, kind: 'DatasetVersion', "
            "namespace: 'evil', name: 'clean', version: 'v1', entity: 'dataset:evil/clean', first_seen: $t, "
            "last_seen: $t})-[:READ_BY {time: $t}]->(r)"
        ],
        [("nodes", "extra", (FAKE,)), ("edges", "extra", (FAKE, "READ_BY", f"run:{TRAIN}"))],
    ),
    "a column edge altered": (
        ["UPDATE column_edges SET transformations = '[]' WHERE dst = :features"],
        ["MATCH (c:ColumnEdge {dst: $features}) SET c.transformations = '[]'"],
        [("column_edges", "different", (SOURCE, "birth_date", FEATURES, "age"))],
    ),
    "the WROTE edge into the model deleted (the walk no longer reaches the training run)": (
        ["DELETE FROM edges WHERE type = 'WROTE' AND dst = :model"],
        ["MATCH (:Node)-[r:WROTE]->(:Node {id: $model}) DELETE r"],
        [("edges", "missing", (f"run:{TRAIN}", "WROTE", MODEL))],
    ),
}
PARAMS = {
    "ingest": f"run:{INGEST}",
    "train": f"run:{TRAIN}",
    "model": MODEL,
    "features": FEATURES,
    "fake": FAKE,
    "forged": FORGED,
    "t": "2024-05-01T09:30:00.000000Z",
}


def tamper(store, how: str) -> None:
    sql, cypher, _ = TAMPERING[how]
    if store.scheme == "sqlite":
        db = sqlite3.connect(store.file)
        with db:
            for statement in sql:
                db.execute(statement, {k: v for k, v in PARAMS.items() if f":{k}" in statement})
        db.close()
    else:
        for statement in cypher:
            store._read(statement, **{k: v for k, v in PARAMS.items() if f"${k}" in statement})


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def trained(store, tmp_path):
    """The store with the pipeline recorded and the CRM source tagged pii; the pii policy file."""
    assert ingest_events(store, pipeline()).accepted == 3
    records.tag(store, SOURCE, ["pii"], "test")
    policy = tmp_path / "pii.yaml"
    policy.write_text(PII_POLICY)
    return store, policy


# --- an untouched store --------------------------------------------------------------------


def test_an_untouched_store_verifies_whole_and_upstream_and_the_gate_and_release_run(trained):
    store, policy = trained
    whole = check_graph(store)
    assert whole.ok and whole.compared == {"nodes": 11, "facets": 11, "edges": 10, "column_edges": 1}
    upstream = check_upstream(store, MODEL)
    assert upstream.ok and upstream.scope == f"upstream of {MODEL}"
    assert upstream.compared == whole.compared and upstream.entries == 3  # all of it is upstream; tags are not replayed
    result = run("audit", "verify", "--graph", "--store", store.url)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "graph ok: the graph (whole graph: nodes 11, facets 11, edges 10, column edges 1) "
        "is exactly what the ledger projects"
    )
    assert json.loads(run("audit", "verify", "--graph", "--json", "--store", store.url).stdout)["graph"]["ok"]
    gate = run("governance", "gate", MODEL, "--policy", policy, "--verify-graph", "--store", store.url)
    assert gate.exit_code == 1 and gate.stdout.startswith(f"BLOCKED: 1 blocking rule(s) for {MODEL}")
    assert run("governance", "release", MODEL, "--policy", policy, "--store", store.url).exit_code == 1
    records.tag(store, SOURCE, ["pii"], "test", remove=True)
    released = run("governance", "release", MODEL, "--policy", policy, "--store", store.url)
    assert released.exit_code == 0 and f"released {MODEL}" in released.stdout


# --- tampering, caught by every command -------------------------------------------------------


@pytest.mark.parametrize("how", TAMPERING)
def test_a_tampered_graph_is_named_by_audit_verify_and_blocks_the_gate_and_release(trained, how):
    store, policy = trained
    tamper(store, how)
    expected = [(part, problem, key) for part, problem, key in TAMPERING[how][2]]
    whole = check_graph(store)
    assert [(d.part, d.problem, d.key) for d in whole.differences] == expected
    upstream = check_upstream(store, MODEL)
    assert [(d.part, d.problem, d.key) for d in upstream.differences] == expected

    result = run("audit", "verify", "--graph", "--store", store.url)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(
        f"GRAPH DIFFERS: the graph (whole graph) differs from what the ledger projects in {len(expected)} row(s)"
    )
    assert lines[1:] == [f"  {d}" for d in whole.differences]
    listed = json.loads(run("audit", "verify", "--graph", "--json", "--store", store.url).stdout)
    assert listed["ok"] is False
    assert [(d["part"], d["problem"], tuple(d["key"])) for d in listed["graph"]["differences"]] == expected

    head = store.head()
    gate = run("governance", "gate", MODEL, "--policy", policy, "--verify-graph", "--store", store.url)
    assert gate.exit_code == 5
    assert gate.stderr.startswith("Error: the gate did not run: the graph (whole graph) differs")
    assert str(whole.differences[0]) in gate.stderr
    released = run("governance", "release", MODEL, "--policy", policy, "--store", store.url)
    assert released.exit_code == 5
    assert released.stderr.startswith(f"Error: {MODEL} was not released: the graph (upstream of {MODEL}) differs")
    assert str(upstream.differences[0]) in released.stderr
    assert store.head() == head, "a refused gate or release recorded something"


def test_without_the_check_a_deleted_edge_turns_the_pii_rule_green(trained):
    """Why the gate needs --verify-graph: the gate alone reads the forged graph and passes."""
    store, policy = trained
    tamper(store, "a READ_BY edge deleted")
    assert run("governance", "gate", MODEL, "--policy", policy, "--store", store.url).exit_code == 0
    assert run("governance", "gate", MODEL, "--policy", policy, "--store", store.url, "--verify-graph").exit_code == 5


def test_a_rollback_to_a_tampered_version_is_refused(trained):
    store, policy = trained
    records.tag(store, SOURCE, ["pii"], "test", remove=True)
    assert run("governance", "release", MODEL, "--policy", policy, "--store", store.url).exit_code == 0
    newer = run_event(
        "train_churn",
        "aaaaaaaa-0000-4000-8000-000000000003",
        time="2024-06-01T10:00:00Z",
        inputs=[("s3://lake", "features/churn")],
        outputs=[{"namespace": "ml", "name": "churn", "facets": {"auditgraph_model": {"version": "2"}}}],
    )
    ingest_events(store, [newer])
    assert run("governance", "release", "model:ml/churn@2", "--policy", policy, "--store", store.url).exit_code == 0
    tamper(store, "the model's artifactDigest facet forged")
    result = run(
        "governance",
        "rollback",
        "model:ml/churn",
        "--to",
        MODEL,
        "--reason",
        "drift",
        "--policy",
        policy,
        "--store",
        store.url,
    )
    assert result.exit_code == 5 and result.stderr.startswith(f"Error: not rolled back to {MODEL}: the graph")


def test_a_forged_facet_outside_what_a_release_reads_is_caught_whole_but_does_not_block_the_release(trained):
    store, policy = trained
    records.tag(store, SOURCE, ["pii"], "test", remove=True)
    unrelated = run_event("other", "aaaaaaaa-0000-4000-8000-000000000009", outputs=[("s3://lake", "elsewhere")])
    ingest_events(store, [unrelated])
    if store.scheme == "sqlite":
        with sqlite3.connect(store.file) as db:
            db.execute("UPDATE nodes SET last_seen = '9999' WHERE id = 'job:test/other'")
        db.close()
    else:
        store._read("MATCH (n:Node {id: 'job:test/other'}) SET n.last_seen = '9999'")
    assert [d.key for d in check_graph(store).differences][:1] == [("job:test/other",)]
    assert check_upstream(store, MODEL).ok
    assert run("governance", "release", MODEL, "--policy", policy, "--store", store.url).exit_code == 0


def test_a_region_too_large_to_replay_alone_is_checked_whole(trained, monkeypatch):
    store, _ = trained
    monkeypatch.setattr(graphcheck, "MAX_REGION", 3)
    assert check_upstream(store, MODEL).scope == "whole graph"
    tamper(store, "a READ_BY edge deleted")
    with pytest.raises(GraphError, match="was not released: the graph \\(whole graph\\) differs"):
        check_upstream(store, MODEL).require(f"{MODEL} was not released")


# --- the whole corpus: rebuild-vs-live exactly equal ------------------------------------------


@pytest.mark.slow
def test_the_corpus_graph_is_exactly_what_its_ledger_projects_whole_and_upstream_of_every_node(store):
    report = ingest_files(store, corpus_files("valid") + corpus_files("lenient"))
    assert report.rejected == []
    whole = check_graph(store)
    assert whole.ok, whole.lines()
    assert whole.compared == {"nodes": 258, "facets": 659, "edges": 280, "column_edges": 71}
    for (node,) in [row[:1] for row in store.projection("nodes")]:
        check = check_upstream(store, node)
        assert check.ok, (node, check.lines())


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_replaying_only_what_a_region_depends_on_gives_what_the_whole_replay_gives(tmp_path, seed):
    """check_upstream's replay selects the entries a region's rows can depend on; on random pipelines
    (floating reads bound by time, failed runs, overwrites, models marked late, symlinks, parents,
    column lineage, code) the region of every node must come out exactly as the whole replay has it."""
    events = random_events(random.Random(seed))
    with open_store(f"sqlite:///{tmp_path}/r.db") as store:
        ingest_events(store, events)  # one batch, as the whole replay's first batch
        assert check_graph(store).ok
        for (node,) in [row[:1] for row in store.projection("nodes")]:
            check = check_upstream(store, node)
            assert check.ok, (seed, node, check.lines())


def random_events(rng: random.Random, count: int = 25) -> list[dict]:
    tables = [("db", f"t{i}") for i in range(6)]
    aliases = [("hive", f"h{i}") for i in range(3)]
    runs = [f"aaaaaaaa-0000-4000-8000-{i:012d}" for i in range(8)]

    def facet(**fields):
        return {"_producer": "t", "_schemaURL": "t", **fields}

    def dataset(name: tuple[str, str], output: bool) -> dict:
        facets: dict = {}
        if rng.random() < 0.2:
            facets["version"] = facet(datasetVersion=f"v{rng.randrange(3)}")
        if output and rng.random() < 0.15:
            ident = rng.choice(aliases + tables)
            facets["symlinks"] = facet(identifiers=[{"namespace": ident[0], "name": ident[1], "type": "TABLE"}])
        if output and rng.random() < 0.1:
            facets["datasetType"] = facet(datasetType="MODEL")
        if output and rng.random() < 0.1:
            facets["lifecycleStateChange"] = facet(lifecycleStateChange=rng.choice(["OVERWRITE", "CREATE"]))
        if output and rng.random() < 0.2:
            src = rng.choice(tables + aliases)
            facets["columnLineage"] = facet(
                fields={"a": {"inputFields": [{"namespace": src[0], "name": src[1], "field": "b"}]}}
            )
        return {"namespace": name[0], "name": name[1], **({"facets": facets} if facets else {})}

    events = []
    for _ in range(count):
        run = rng.choice(runs)
        run_facets, job_facets = {}, {}
        if rng.random() < 0.2:
            run_facets["parent"] = facet(run={"runId": rng.choice(runs)}, job={"namespace": "test", "name": "dag"})
        if rng.random() < 0.3:
            job_facets["sourceCodeLocation"] = facet(type="git", url="https://git/x", version=f"c{rng.randrange(3)}")
        events.append(
            run_event(
                f"job{runs.index(run) % 4}",
                run,
                event_type=rng.choice(["START", "COMPLETE", "COMPLETE", "FAIL", "RUNNING"]),
                time=f"2024-01-01T{10 + rng.randrange(10):02d}:{rng.randrange(60):02d}:00Z",
                inputs=[dataset(d, False) for d in rng.sample(tables + aliases, rng.randrange(3))],
                outputs=[dataset(d, True) for d in rng.sample(tables, rng.randrange(2))],
                run_facets=run_facets,
                job_facets=job_facets,
            )
        )
    return events


# --- the projection read and the comparison ----------------------------------------------------


def test_every_part_of_the_projection_comes_sorted_by_key_and_ids_pick_the_rows_about_them(trained):
    store, _ = trained
    for part, columns in PROJECTION.items():
        rows = list(store.projection(part))
        assert rows and all(len(r) == len(columns) for r in rows)
        width = {"nodes": 1, "facets": 2, "edges": 3, "column_edges": 4}[part]
        assert [r[:width] for r in rows] == sorted(r[:width] for r in rows)
        ids = [f"run:{TRAIN}", MODEL]
        ends = (0,) if part in ("nodes", "facets") else (0, 2)
        assert list(store.projection(part, ids)) == [r for r in rows if any(r[i] in ids for i in ends)]


def test_values_compare_strictly_and_the_order_of_an_objects_keys_does_not_matter():
    compared: dict[str, int] = {}
    graph = [("a", "x", {"n": 1, "m": [True]}, "o"), ("b", "x", 1, "o"), ("c", "x", 1, "o"), ("d", "x", "1", "o")]
    ledger = [("a", "x", {"m": [True], "n": 1}, "o"), ("b", "x", True, "o"), ("c", "x", 1.0, "o"), ("d", "x", 1, "o")]
    assert [d.key for d in compare("facets", graph, ledger, compared)] == [("b", "x"), ("c", "x"), ("d", "x")]
    assert compared == {"facets": 4}


def test_a_row_stored_twice_a_key_that_is_not_text_and_unreadable_json_are_differences():
    graph = [("a", "READ_BY", "r", "t"), ("a", "READ_BY", "r", "t"), (7, "READ_BY", "r", "t")]
    found = compare("edges", graph, [("a", "READ_BY", "r", "t")], {})
    assert [(d.problem, d.key) for d in found] == [
        ("extra", ("a", "READ_BY", "r")),
        ("extra", ("7", "'READ_BY'", "'r'")),
    ]
    unreadable = compare("facets", [("n", "f", Unreadable("{oops"), "o")], [("n", "f", "{oops", "o")], {})
    assert (
        str(unreadable[0])
        == 'facet \'f\' of n differs: value {"unreadable": "{oops"} in the graph, "{oops" by the ledger'
    )


def test_rows_out_of_key_order_are_a_backend_bug_not_a_verdict():
    with pytest.raises(RuntimeError, match="nodes rows out of key order"):
        compare("nodes", [("b",), ("a",)], [], {})


def test_a_refusal_names_at_most_three_differences_and_points_at_the_full_list():
    check = GraphCheck(
        "whole graph", 9, 9, differences=[Difference("nodes", (f"n{i}",), (f"n{i}",), None) for i in range(5)]
    )
    with pytest.raises(GraphError) as caught:
        check.require("the gate did not run")
    message = str(caught.value)
    assert message.count("is in the graph, but the ledger projects no such node") == 3
    assert "and 2 more (--json lists every one)" in message and "auditgraph audit verify --graph" in message
