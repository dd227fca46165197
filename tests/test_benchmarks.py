"""The benchmark suite's own code runs: on a small generated platform, every measure it takes
is produced, and the summary renders from the committed results (so the suite cannot rot
between the runs that take an hour)."""

from __future__ import annotations

import pytest

from benchmarks import run, summary
from benchmarks.generate import write
from lineage.ingest import ingest, read_documents
from lineage.store import open_store


@pytest.mark.slow
def test_the_traversal_measures_and_their_floors_on_a_small_platform(tmp_path):
    path = tmp_path / "platform.jsonl"
    write(2000, path)
    with open_store(f"sqlite:///{tmp_path}/bench.db") as store:
        with open(path, "rb") as f:
            assert ingest(store, read_documents(f, "platform.jsonl"), "bench").ok
        subjects = run.pick_subjects(store)
        out = run.traversals(store, run.graph_floor(tmp_path / "bench.db"), subjects, repeat=2)
    for direction, name in (("upstream", "model"), ("downstream", "source")):
        for depth in ("d5", "d20", "unbounded"):
            assert out[f"{direction}_{name}_{depth}"]["nodes"] > 1
        assert out[f"floor_{direction}_{name}"]["p50_ms"] > 0
        assert out[f"closure_{direction}_{name}"]["p50_ms"] > 0
    assert out["upstream_model_unbounded"]["nodes"] >= out["upstream_model_d5"]["nodes"]


@pytest.mark.slow
def test_the_graph_verify_measures_on_a_small_platform(tmp_path):
    path = tmp_path / "platform.jsonl"
    write(2000, path)
    with open_store(f"sqlite:///{tmp_path}/bench.db") as store:
        with open(path, "rb") as f:
            assert ingest(store, read_documents(f, "platform.jsonl"), "bench").ok
        model = run.pick_subjects(store)["model"]
        out = run.graph_verify(store, model)
    assert out["whole"]["ok"] and out["release"]["ok"] and out["release"]["scope"] == f"upstream of {model}"
    assert 0 < out["release"]["entries_replayed"] < out["whole"]["entries"]
    assert 0 < out["release"]["rows"] < out["whole"]["rows"]


def test_the_ingest_floor_counts_every_event(tmp_path):
    path = tmp_path / "platform.jsonl"
    events = write(300, path)
    assert run.ingest_floor(path)["events"] == events == sum(1 for _ in open(path))


def test_the_summary_renders_every_committed_result():
    text = summary.tables()
    for result in run.RESULTS.glob("*.json"):
        size, backend = result.stem.split("-")
        assert f"| {size} | {backend} |" in text


@pytest.mark.slow
def test_the_http_measure_posts_to_a_server_process(tmp_path):
    path = tmp_path / "platform.jsonl"
    write(300, path)
    result = run.http_ingest(path, count=40)
    assert result["single_events_per_s"] > 0 and result["batch_events_per_s"] > 0
