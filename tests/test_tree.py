"""The stored Merkle tree on every backend: kept with each write, caught up for older stores, copied by
migration, and the source of proofs that verify against the tree recomputed from the ledger."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import corpus_files, ingest_files

from lineage import anchors, merkle
from lineage.errors import LedgerError
from lineage.ledger import Pending
from lineage.store import open_store


def recomputed(store, size=None) -> bytes:
    tree = merkle.Compact()
    for entry in store.entries(limit=size):
        tree.add(merkle.entry_leaf(entry.hash))
    return tree.root()


def forget_tree(store) -> None:
    """What a store written before the tree existed looks like: no tiles, size 0."""
    if store.scheme == "sqlite":
        with sqlite3.connect(store.file) as db:
            db.execute("DELETE FROM tiles")
            db.execute("DELETE FROM meta WHERE key = 'tree_size'")
    else:
        store._read("MATCH (t:MerkleTile) DETACH DELETE t")
        store._read("MATCH (h:LedgerHead {id: 'head'}) REMOVE h.tree_size")


def test_every_write_keeps_the_stored_tree_equal_to_the_ledger(store):
    ingest_files(store, corpus_files("valid")[:150])
    for i in range(300):  # one entry per transaction: the right-edge tile grows across 256
        store.append(Pending("test.note", {"i": i}, "test"))
    head = store.head().seq
    assert store.tree_size() == head > 256
    assert store.tree_root(head) == recomputed(store)
    for size in (1, 255, 256, 257, head):
        assert store.tree_root(size) == recomputed(store, size)
        for seq in {1, size // 2 or 1, size}:
            proof = store.inclusion_proof(seq, size)
            leaf = merkle.entry_leaf(next(store.entries(after_seq=seq - 1, limit=1)).hash)
            merkle.verify_inclusion(seq - 1, size, leaf, proof, store.tree_root(size))
        merkle.verify_consistency(
            size, head, store.tree_root(size), store.tree_root(head), store.consistency_proof(size, head)
        )
    assert anchors.verify(store).ok


def test_a_store_from_before_the_tree_catches_up_at_its_next_write(store):
    ingest_files(store, corpus_files("valid")[:80])
    root = store.tree_root(store.head().seq)
    forget_tree(store)
    assert store.tree_size() == 0
    result = anchors.verify(store)  # verifies; says the tree lags
    assert result.ok and any("lags the ledger" in line for line in result.checked)
    with pytest.raises(LedgerError, match="holds 0 entries"):
        store.inclusion_proof(1, 5)
    store.append(Pending("test.note", {"after": "upgrade"}, "test"))
    head = store.head().seq
    assert store.tree_size() == head
    assert store.tree_root(head - 1) == root and store.tree_root(head) == recomputed(store)
    assert anchors.verify(store).ok


def test_migration_copies_the_tree(store, tmp_path):
    ingest_files(store, corpus_files("valid")[:120])
    with open_store(f"sqlite:///{tmp_path}/copy.db") as copy:
        copy.copy_ledger_from(store, batch=37)
        head = store.head().seq
        assert copy.tree_size() == head and copy.tree_root(head) == store.tree_root(head)


def test_a_write_onto_a_ledger_shorter_than_its_tree_is_refused(sqlite_store):
    for i in range(5):
        sqlite_store.append(Pending("test.note", {"i": i}, "test"))
    with sqlite3.connect(sqlite_store.file) as db:
        db.execute("DELETE FROM ledger WHERE seq = 5")
    with pytest.raises(LedgerError, match="entries were removed"):
        sqlite_store.append(Pending("test.note", {"i": "next"}, "test"))
    assert sqlite_store.head().seq == 4
