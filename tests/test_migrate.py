"""Moving a store to another backend by replaying its ledger."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import corpus_files, ingest_events, ingest_files, run_event, snapshot

from lineage.cli import cli
from lineage.errors import LedgerError
from lineage.graph import Graph
from lineage.projection import projector_for
from lineage.store import open_store
from lineage.store.batch import Batch


@pytest.fixture
def source(tmp_path):
    s = open_store(f"sqlite:///{tmp_path}/source.db")
    ingest_files(s, corpus_files("valid") + corpus_files("lenient"))
    yield s
    s.close()


@pytest.mark.slow
def test_a_migrated_store_has_the_same_head_and_answers(source, store):
    head = store.copy_ledger_from(source, batch=25)
    assert head == source.head() == store.head()
    assert snapshot(store) == snapshot(source)
    assert store.verify().ok
    for node in ("dataset:gs://mock-bucket/result.csv", "dataset:file//tmp/cll_test/cll_source1"):
        for direction in ("upstream", "downstream"):
            assert Graph(store).traverse(node, direction) == Graph(source).traverse(node, direction)


@pytest.mark.slow
def test_an_interrupted_migration_resumes(source, store):
    with store.begin_write() as tx:  # what an interrupted run leaves: a prefix of the ledger
        batch = Batch(tx)
        for entry in source.entries(limit=40):
            batch.add(entry, projector_for(entry.kind)(json.loads(entry.payload), batch))
        tx.write(batch)
    assert store.head().seq == 40
    assert store.copy_ledger_from(source) == source.head()
    assert snapshot(store) == snapshot(source)


def test_migrating_into_a_store_with_another_ledger_is_refused(source, store):
    ingest_events(store, [run_event("unrelated")])
    with pytest.raises(LedgerError, match="holds a different ledger"):
        store.copy_ledger_from(source)
    assert store.head().seq == 1


def test_a_broken_source_stops_the_migration_at_the_break(source, tmp_path):
    import sqlite3

    with sqlite3.connect(source.file) as db:
        db.execute("DELETE FROM ledger WHERE seq = 10")
    target = open_store(f"sqlite:///{tmp_path}/target.db")
    with pytest.raises(LedgerError, match="source ledger is broken at entry 10"):
        target.copy_ledger_from(source, batch=5)
    assert target.head().seq == 5  # the batches before the break landed whole
    target.close()


def test_the_migrate_command_prints_the_head(source, tmp_path):
    target = f"sqlite:///{tmp_path}/cli-target.db"
    result = CliRunner().invoke(cli, ["store", "migrate", "--from", source.url, "--to", target])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"copied to entry {source.head().seq}; head {source.head().hash}\n"
