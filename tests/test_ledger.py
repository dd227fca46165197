"""The ledger: durability of the chain, idempotency, and tampering caught by verify."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import ingest_events, run_event

from lineage.canonical import canonical_json, digest, sha256_hex
from lineage.ledger import GENESIS, Pending


@pytest.fixture
def filled(sqlite_store):
    ingest_events(sqlite_store, [run_event(f"job{i}", time=f"2024-01-01T00:00:0{i}Z") for i in range(5)])
    assert sqlite_store.verify().ok
    return sqlite_store


def raw(store) -> sqlite3.Connection:
    return sqlite3.connect(store.file, isolation_level=None)


def test_canonical_json_is_sorted_compact_utf8_and_refuses_nan():
    assert canonical_json({"b": 1, "a": ["é", 2.5]}) == '{"a":["é",2.5],"b":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_the_first_entry_links_to_genesis_and_each_next_to_the_last(filled):
    entries = list(filled.entries())
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert all(e.hash == digest(e.header()) for e in entries)


def test_the_same_payload_twice_is_acknowledged_once(sqlite_store):
    pending = Pending("note", {"text": "hello"}, "tester")
    first, second = sqlite_store.append(pending), sqlite_store.append(pending)
    assert (first.seq, first.duplicate) == (1, False)
    assert (second.seq, second.hash, second.duplicate) == (1, first.hash, True)
    assert sqlite_store.head().seq == 1


def test_a_payload_that_is_not_json_is_refused_and_nothing_recorded(sqlite_store):
    with pytest.raises(Exception, match="payload is not plain JSON"):
        sqlite_store.append(Pending("note", {"when": object()}, "tester"))
    assert sqlite_store.head().seq == 0


def test_a_modified_payload_is_named(filled):
    with raw(filled) as db:
        db.execute("UPDATE ledger SET payload = replace(payload, 'job2', 'jobX') WHERE seq = 3")
    result = filled.verify()
    assert not result.ok and result.first_break.seq == 3
    assert result.first_break.reason == "payload does not match its digest"
    assert result.entries == 2


def test_a_modified_payload_with_a_recomputed_digest_is_still_caught(filled):
    with raw(filled) as db:
        payload = db.execute("SELECT payload FROM ledger WHERE seq = 3").fetchone()[0].replace("job2", "jobX")
        db.execute(
            "UPDATE ledger SET payload = ?, payload_digest = ? WHERE seq = 3", (payload, sha256_hex(payload.encode()))
        )
    result = filled.verify()
    assert result.first_break.seq == 3 and result.first_break.reason == "entry hash does not match its contents"


def test_a_modified_actor_is_caught(filled):
    with raw(filled) as db:
        db.execute("UPDATE ledger SET actor = 'mallory' WHERE seq = 4")
    assert filled.verify().first_break.seq == 4


def test_a_deleted_entry_is_named(filled):
    with raw(filled) as db:
        db.execute("DELETE FROM ledger WHERE seq = 2")
    brk = filled.verify().first_break
    assert (brk.seq, brk.reason) == (2, "entry 2 is missing (next stored entry is 3)")


def test_reordered_entries_are_caught(filled):
    with raw(filled) as db:
        db.execute("UPDATE ledger SET seq = -1 WHERE seq = 2")
        db.execute("UPDATE ledger SET seq = 2 WHERE seq = 3")
        db.execute("UPDATE ledger SET seq = 3 WHERE seq = -1")
    brk = filled.verify().first_break
    assert brk.seq == 2 and brk.reason == "prev_hash does not link to the previous entry"


def test_an_inserted_entry_is_caught(filled):
    with raw(filled) as db:
        row = list(db.execute("SELECT * FROM ledger WHERE seq = 5").fetchone())
        db.execute("UPDATE ledger SET seq = 6 WHERE seq = 5")
        row[0] = 5
        row[6] = row[6].replace("job4", "forged")
        row[7] = sha256_hex(row[6].encode())
        db.execute("INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?,?,?)", row)
    assert filled.verify().first_break.seq == 5


def test_a_break_reports_both_digests(filled):
    with raw(filled) as db:
        db.execute("UPDATE ledger SET prev_hash = ? WHERE seq = 2", ("f" * 64,))
    brk = filled.verify().first_break
    assert brk.expected == list(filled.entries(limit=1))[0].hash and brk.actual == "f" * 64
    assert str(brk).startswith("entry 2: prev_hash does not link to the previous entry (expected ")


def test_a_failure_while_applying_an_event_leaves_no_trace(sqlite_store, monkeypatch):
    """The ledger row and the graph facts of one event commit together or not at all."""
    from lineage.errors import StoreError
    from lineage.store import sqlite as backend

    ingest_events(sqlite_store, [run_event("before", outputs=[("db", "a")])])
    head, nodes = sqlite_store.head(), sqlite_store.stats()["nodes"]

    real_write = backend._SQLiteTx.write

    def explode(self, batch):
        real_write(self, batch)  # the ledger rows and facts are in, then the disk fails before commit
        raise OSError("disk on fire")

    monkeypatch.setattr(backend._SQLiteTx, "write", explode)
    with pytest.raises(StoreError, match="write failed, nothing recorded: disk on fire"):
        ingest_events(sqlite_store, [run_event("after", outputs=[("db", "b")])])
    monkeypatch.undo()
    assert sqlite_store.head() == head
    assert sqlite_store.stats()["nodes"] == nodes
    assert sqlite_store.verify().ok


# --- the same tampering, directly in Neo4j ----------------------------------------

NEO4J_TAMPER = {
    "altered": (
        "MATCH (e:LedgerEntry {seq: 3}) SET e.payload = replace(e.payload, 'job2', 'jobX')",
        3,
        "payload does not match its digest",
    ),
    "deleted": ("MATCH (e:LedgerEntry {seq: 2}) DETACH DELETE e", 2, "entry 2 is missing (next stored entry is 3)"),
    "reordered": (
        "MATCH (a:LedgerEntry {seq: 2}), (b:LedgerEntry {seq: 3}) SET a.seq = -1 WITH a, b SET b.seq = 2 "
        "WITH a SET a.seq = 3",
        2,
        "prev_hash does not link to the previous entry",
    ),
    "inserted": (
        "MATCH (e:LedgerEntry {seq: 5}) SET e.seq = 6 WITH e CREATE (f:LedgerEntry) "
        "SET f = e {.recorded_at, .kind, .actor, .subject, .event_time, .payload_digest, .prev_hash, .hash}, "
        "f.seq = 5, f.idem = 'forged', f.payload = replace(e.payload, 'job4', 'forged')",
        5,
        None,
    ),
}


@pytest.mark.neo4j
@pytest.mark.parametrize("how", sorted(NEO4J_TAMPER))
def test_tampering_in_neo4j_is_caught_and_the_first_bad_entry_named(tmp_path, how):
    from conftest import make_store

    store = make_store("neo4j", tmp_path)
    ingest_events(store, [run_event(f"job{i}", time=f"2024-01-01T00:00:0{i}Z") for i in range(5)])
    assert store.verify().ok
    cypher, seq, reason = NEO4J_TAMPER[how]
    store._read(cypher)
    brk = store.verify().first_break
    assert brk is not None and brk.seq == seq
    if reason:
        assert brk.reason == reason
    store.close()


def test_the_duplicate_lookup_searches_the_index_instead_of_scanning_the_ledger(filled):
    """A scan per batch made ingestion quadratic in the ledger's size (found at 1M events)."""
    from lineage.store.sqlite import FIND_SQL

    with raw(filled) as db:
        plan = db.execute(
            "EXPLAIN QUERY PLAN " + FIND_SQL.format(marks="?,?"), ["openlineage.event", "a", "b"]
        ).fetchall()
    assert "USING INDEX ledger_idempotency" in " ".join(str(step) for step in plan)
    assert "SCAN ledger" not in " ".join(str(step) for step in plan)
