"""The embedded backend: one SQLite file in WAL mode.

Durability: ``synchronous=FULL`` in WAL mode, so a transaction that has
committed survives a crash or power loss; appends acknowledge only after commit.
Writers serialise on ``BEGIN IMMEDIATE`` (other processes wait up to
``busy_timeout``); readers never block writers and see only committed
transactions, so never a half-applied event. Every statement is parameterised.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lineage.canonical import stored_json
from lineage.errors import StoreError, StoreUrlError
from lineage.ledger import GENESIS, Head, LedgerEntry
from lineage.projection import OPENLINEAGE_KIND, UNVERSIONED, ColumnFact
from lineage.query import (
    JSON_COLUMNS,
    KEY_WIDTH,
    PROJECTION,
    ColumnEdge,
    Direction,
    Edge,
    NodeRow,
    bfs_over,
    stored_value,
)
from lineage.store.base import Store, WriteTx
from lineage.store.batch import Batch

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY, recorded_at TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,
    subject TEXT, event_time TEXT, payload TEXT NOT NULL, payload_digest TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_idempotency ON ledger (kind, payload_digest);
CREATE INDEX IF NOT EXISTS ledger_subject ON ledger (subject, seq);
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    version TEXT, entity TEXT, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS nodes_entity ON nodes (entity, first_seen);
CREATE INDEX IF NOT EXISTS nodes_kind ON nodes (kind);
CREATE TABLE IF NOT EXISTS facets (
    node TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, ord TEXT NOT NULL,
    PRIMARY KEY (node, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS edges (
    src TEXT NOT NULL, type TEXT NOT NULL, dst TEXT NOT NULL, time TEXT NOT NULL,
    PRIMARY KEY (src, type, dst)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_dst ON edges (dst, type, src);
CREATE TABLE IF NOT EXISTS column_edges (
    src TEXT NOT NULL, src_field TEXT NOT NULL, dst TEXT NOT NULL, dst_field TEXT NOT NULL,
    run TEXT NOT NULL, time TEXT NOT NULL, transformations TEXT NOT NULL,
    PRIMARY KEY (src, src_field, dst, dst_field)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS column_edges_dst ON column_edges (dst, dst_field);
CREATE TABLE IF NOT EXISTS tiles (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hashes BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID;
"""
_PROJECTION_TABLES = ("nodes", "facets", "edges", "column_edges")
_ENTRY_COLUMNS = "seq, recorded_at, kind, actor, subject, event_time, payload, payload_digest, prev_hash, hash"
_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit
FIND_SQL = "SELECT payload_digest, seq, hash FROM ledger WHERE kind = ? AND payload_digest IN ({marks})"
_CACHE_KIB = 65536  # page cache per connection (SQLite defaults to 2 MiB, which large stores outgrow)
_SHALLOW = 8  # walks this deep or less go level by level; deeper ones take the whole closure at once


def build(url: str) -> SQLiteStore:
    rest = url.removeprefix("sqlite://")
    path = rest[1:] if rest.startswith("/") else ""
    if not path:
        raise StoreUrlError(f"{url!r}: expected sqlite:///relative/path.db or sqlite:////absolute/path.db")
    return SQLiteStore(url, Path(path))


class SQLiteStore(Store):
    scheme = "sqlite"

    def __init__(self, url: str, path: Path):
        super().__init__(url)
        self.file = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = _Guarded(sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60), path)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=60000")
            self.db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
            self._migrate()
        except (sqlite3.Error, OSError) as e:  # the PRAGMAs and the migration fail as StoreError already
            raise StoreError(f"cannot open SQLite store at {path}: {e}") from e

    def _migrate(self) -> None:
        with self._tx():
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self.db.execute(statement)
            found = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if found is None:
                self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            elif found[0] != SCHEMA_VERSION:
                raise StoreError(f"{self.file}: store schema {found[0]}, this auditgraph reads {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_Guarded]:
        # One connection must not carry two threads' transactions at once; other
        # processes and connections are serialised by BEGIN IMMEDIATE.
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")

    @contextlib.contextmanager
    def begin_write(self) -> Iterator[WriteTx]:
        with self._tx() as db:  # a failing statement is a StoreError already (_Guarded)
            yield _SQLiteTx(db)

    def close(self) -> None:
        self.db.close()

    # --- reads -------------------------------------------------------------

    def head(self) -> Head:
        return _head(self.db)

    def tree_size(self) -> int:
        return _tree_size(self.db)

    def read_tiles(self, keys):
        return _read_tiles(self.db, keys)

    def iter_entries(self, kind, subject, since, until, after_seq, limit) -> Iterator[LedgerEntry]:
        sql = f"SELECT {_ENTRY_COLUMNS} FROM ledger WHERE seq > ?"
        args: list[Any] = [after_seq]
        for clause, value in (
            ("kind = ?", kind),
            ("subject = ?", subject),
            ("recorded_at >= ?", since),
            ("recorded_at <= ?", until),
        ):
            if value is not None:
                sql += f" AND {clause}"
                args.append(value)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        keys = _ENTRY_COLUMNS.split(", ")
        for row in self.db.execute(sql, args):
            yield LedgerEntry(**dict(zip(keys, row)))

    def nodes(self, ids: Sequence[str]) -> dict[str, NodeRow]:
        out = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for r in self.db.execute(
                f"SELECT id, kind, namespace, name, version, entity, first_seen, last_seen "
                f"FROM nodes WHERE id IN ({marks})",
                chunk,
            ):
                out[r[0]] = NodeRow(
                    id=r[0],
                    kind=r[1],
                    namespace=r[2],
                    name=r[3],
                    version=r[4],
                    entity=r[5],
                    first_seen=r[6],
                    last_seen=r[7],
                )
        return out

    def facets(self, node_id: str) -> dict[str, Any]:
        rows = self.db.execute("SELECT name, value FROM facets WHERE node = ? ORDER BY name", (node_id,))
        return {name: json.loads(value) for name, value in rows}

    def neighbors(self, ids, direction: Direction, types, as_of=None) -> list[Edge]:
        near = "dst" if direction == "upstream" else "src"
        out: list[Edge] = []
        tmarks = ",".join("?" * len(types))
        for chunk in _chunks(ids):
            sql = (
                f"SELECT src, type, dst, time FROM edges WHERE {near} IN ({','.join('?' * len(chunk))}) "
                f"AND type IN ({tmarks})"
            )
            args = [*chunk, *types]
            if as_of is not None:
                sql += " AND time <= ?"
                args.append(as_of)
            out += map(Edge._make, self.db.execute(sql, args))
        return out

    def walk(self, starts, direction: Direction, types, as_of, depth, max_nodes):
        """Deep walks: every edge into (or out of) the reachable set in one recursive query, then
        the same BFS in memory.

        SQLite evaluates a recursive CTE with a FIFO queue (breadth first) and
        UNION drops rows it has produced already (the visited set); LIMIT is the
        node cap. Distances, the depth limit and truncation are then computed by
        ``bfs`` over the edges among the reached nodes, so answers are the same
        as the level-by-level walk, with one query instead of one per level.
        """
        if depth is not None and depth <= _SHALLOW:
            return super().walk(starts, direction, types, as_of, depth, max_nodes)
        near, far = ("dst", "src") if direction == "upstream" else ("src", "dst")
        tmarks = ",".join("?" * len(types))
        time_clause = " AND e.time <= ?" if as_of is not None else ""
        sql = (
            f"WITH RECURSIVE walk(id) AS (SELECT value FROM json_each(?) UNION "
            f"SELECT e.{far} FROM edges e JOIN walk w ON e.{near} = w.id WHERE e.type IN ({tmarks}){time_clause}), "
            f"reached(id) AS (SELECT id FROM walk LIMIT ?) "
            f"SELECT e.src, e.type, e.dst, e.time FROM reached r JOIN edges e ON e.{near} = r.id "
            f"WHERE e.type IN ({tmarks}){time_clause}"
        )
        when = [as_of] if as_of is not None else []
        args = [json.dumps(starts), *types, *when, max_nodes + 1, *types, *when]
        return bfs_over(map(Edge._make, self.db.execute(sql, args)), starts, direction, depth, max_nodes)

    def column_edges(self, keys, direction: Direction) -> list[ColumnEdge]:
        ds, field = ("dst", "dst_field") if direction == "upstream" else ("src", "src_field")
        out = []
        for dataset, name in keys:
            sql = f"SELECT src, src_field, dst, dst_field, run, time, transformations FROM column_edges WHERE {ds} = ?"
            args = [dataset]
            if name is not None:
                # upstream of a field: also what flowed into the whole dataset (WHOLE_DATASET, '')
                sql += f" AND ({field} = ? OR {field} = '')" if direction == "upstream" else f" AND {field} = ?"
                args.append(name)
            for r in self.db.execute(sql + " ORDER BY src, src_field, dst, dst_field", args):
                out.append(
                    ColumnEdge(
                        src=r[0],
                        src_field=r[1],
                        dst=r[2],
                        dst_field=r[3],
                        run=r[4],
                        time=r[5],
                        transformations=json.loads(r[6]),
                    )
                )
        return out

    def column_fields(self, entity: str) -> set[str]:
        rows = self.db.execute(
            "SELECT src_field FROM column_edges WHERE src = ? UNION "
            "SELECT dst_field FROM column_edges WHERE dst = ? AND dst_field != ''",
            (entity, entity),
        )
        return {r[0] for r in rows}

    def search_nodes(self, text: str, kinds: Sequence[str], limit: int) -> list[NodeRow]:
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql = "SELECT id FROM nodes WHERE lower(id) LIKE ? ESCAPE '\\'"
        args: list[Any] = [f"%{escaped}%"]
        if kinds:
            sql += " AND (" + " OR ".join("id LIKE ?" for _ in kinds) + ")"
            args += [f"{k}:%" for k in kinds]
        sql += " ORDER BY length(id), id LIMIT ?"
        ids = [r[0] for r in self.db.execute(sql, [*args, limit])]
        rows = self.nodes(ids)
        return [rows[i] for i in ids]

    def facet_values(self, ids: Sequence[str], name: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for chunk in _chunks(ids):
            rows = self.db.execute(
                f"SELECT node, value FROM facets WHERE name = ? AND node IN ({','.join('?' * len(chunk))})",
                [name, *chunk],
            )
            out.update((node, json.loads(value)) for node, value in rows)
        return out

    def projection(self, part: str, ids: Sequence[str] | None = None) -> Iterator[tuple]:
        table, ends = _PROJECTION_READS[part]
        sql = f"SELECT {', '.join(PROJECTION[part])} FROM {table}"  # names from constants, never input
        args: list[Any] = []
        if ids is not None:
            sql += " WHERE " + " OR ".join(f"{end} IN (SELECT value FROM json_each(?))" for end in ends)
            args = [json.dumps(list(ids))] * len(ends)
        sql += f" ORDER BY {', '.join(PROJECTION[part][: KEY_WIDTH[part]])}"  # BINARY: code point order
        for row in self.db.execute(sql, args):
            yield tuple(stored_value(v) if i in JSON_COLUMNS[part] else v for i, v in enumerate(row))

    def backend_stats(self) -> dict[str, Any]:
        nodes = dict(self.db.execute("SELECT kind, count(*) FROM nodes GROUP BY kind ORDER BY kind").fetchall())
        edges = dict(self.db.execute("SELECT type, count(*) FROM edges GROUP BY type ORDER BY type").fetchall())
        kinds = dict(self.db.execute("SELECT kind, count(*) FROM ledger GROUP BY kind ORDER BY kind").fetchall())
        [(columns,)] = self.db.execute("SELECT count(*) FROM column_edges").fetchall()  # count(*): one row, one value
        size = sum(os.path.getsize(p) for p in (self.file, Path(f"{self.file}-wal")) if p.exists())
        return {
            "backend": "sqlite",
            "path": str(self.file),
            "bytes": size,
            "nodes": nodes,
            "edges": edges,
            "column_edges": columns,
            "entries_by_kind": kinds,
        }

    def clear_projection(self) -> None:
        with self._tx() as db:
            for table in _PROJECTION_TABLES:
                db.execute(f"DELETE FROM {table}")  # table names are constants, not input


# Each part of the projection (query.PROJECTION): its table, and the columns naming its nodes.
_PROJECTION_READS = {
    "nodes": ("nodes", ("id",)),
    "facets": ("facets", ("node",)),
    "edges": ("edges", ("src", "dst")),
    "column_edges": ("column_edges", ("src", "dst")),
}


def _head(db: _Guarded) -> Head:
    row = db.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    return Head(row[0], row[1]) if row else Head(0, GENESIS)


def _tree_size(db: _Guarded) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = 'tree_size'").fetchone()
    return int(row[0]) if row else 0


def _read_tiles(db: _Guarded, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    found = {}
    for level, index in keys:
        row = db.execute("SELECT hashes FROM tiles WHERE level = ? AND idx = ?", (level, index)).fetchone()
        if row:
            found[(level, index)] = bytes(row[0])
    return found


class _Guarded:
    """The store's connection, through which every statement runs: an ``sqlite3.Error`` raised by a
    statement, or while its rows are read, becomes a ``StoreError`` naming the store file (what
    ``Neo4jStore._read`` does for the driver's errors), once for every read and write.

    A SQLite URL holds no credentials (``build`` refuses a host part), so the file is the store's name.
    """

    __slots__ = ("_db", "_name")

    def __init__(self, db: sqlite3.Connection, file: Path):
        self._db, self._name = db, f"SQLite store {file}"

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise StoreError(f"{self._name}: {e}") from e

    def execute(self, sql: str, args: Sequence[Any] = ()) -> _Rows:
        with self._translated():
            return _Rows(self._db.execute(sql, args), self)

    def executemany(self, sql: str, rows: Any) -> None:
        with self._translated():
            self._db.executemany(sql, rows)

    def close(self) -> None:
        self._db.close()


class _Rows:
    """A cursor's rows, read under the connection's translation (SQLite reports some errors while stepping)."""

    __slots__ = ("_cursor", "_db")

    def __init__(self, cursor: sqlite3.Cursor, db: _Guarded):
        self._cursor, self._db = cursor, db

    def __iter__(self) -> Iterator[tuple]:
        with self._db._translated():
            yield from self._cursor

    def fetchone(self) -> tuple | None:
        with self._db._translated():
            return self._cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        with self._db._translated():
            return self._cursor.fetchall()


def _chunks(items: Sequence[str]) -> Iterator[list[str]]:
    items = list(items)
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class _SQLiteTx(WriteTx):
    def __init__(self, db: _Guarded):
        self.db = db

    def head(self) -> Head:
        return _head(self.db)

    def tree_size(self) -> int:
        return _tree_size(self.db)

    def read_tiles(self, keys):
        return _read_tiles(self.db, keys)

    def write_tiles(self, tiles, size: int) -> None:
        self.db.executemany(
            "INSERT INTO tiles VALUES (?,?,?) ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes",
            [(level, index, data) for (level, index), data in sorted(tiles.items())],
        )
        self.db.execute(
            "INSERT INTO meta VALUES ('tree_size', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(size),),
        )

    def entry_hashes(self, after_seq: int, limit: int) -> list[str]:
        rows = self.db.execute("SELECT hash FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit))
        return [r[0] for r in rows]

    def find_many(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Head]:
        found = {}
        by_kind: dict[str, list[str]] = {}
        for kind, payload_digest in keys:
            by_kind.setdefault(kind, []).append(payload_digest)
        for kind, digests in by_kind.items():
            for chunk in _chunks(sorted(set(digests))):
                # kind first, so the lookup searches ledger_idempotency instead of scanning the ledger
                rows = self.db.execute(FIND_SQL.format(marks=",".join("?" * len(chunk))), [kind, *chunk])
                found.update({(kind, d): Head(seq, h) for d, seq, h in rows})
        return found

    def write(self, batch: Batch) -> None:
        db = self.db
        batch.bind()
        self._drop(batch)
        db.executemany(
            f"INSERT INTO ledger ({_ENTRY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    e.seq,
                    e.recorded_at,
                    e.kind,
                    e.actor,
                    e.subject,
                    e.event_time,
                    e.payload,
                    e.payload_digest,
                    e.prev_hash,
                    e.hash,
                )
                for e in batch.entries
            ],
        )
        db.executemany(
            "INSERT INTO nodes VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET "
            "first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)",
            [
                (n.id, n.kind.value, n.namespace, n.name, n.version, n.entity, n.time, n.last)
                for n in batch.nodes.values()
            ],
        )
        db.executemany(
            "INSERT INTO facets VALUES (?,?,?,?) ON CONFLICT (node, name) DO UPDATE SET "
            "value = excluded.value, ord = excluded.ord WHERE excluded.ord > facets.ord",
            [(f.node, f.name, stored_json(f.value), f.order) for f in batch.facets.values()],
        )
        db.executemany(
            "INSERT INTO edges VALUES (?,?,?,?) ON CONFLICT (src, type, dst) DO UPDATE SET "
            "time = min(time, excluded.time)",
            [(e.src, e.type, e.dst, e.time) for e in batch.edges.values()],
        )
        db.executemany(  # column_rows already merged each edge with its stored row
            "INSERT INTO column_edges VALUES (?,?,?,?,?,?,?) ON CONFLICT (src, src_field, dst, dst_field) "
            "DO UPDATE SET time = excluded.time, run = excluded.run, transformations = excluded.transformations",
            [
                (c.src, c.src_field, c.dst, c.dst_field, c.run, c.time, stored_json(c.transformations))
                for c in batch.column_rows()
            ],
        )

    def _drop(self, batch: Batch) -> None:
        """What a run's merged view took back (Batch.settle), deleted before the batch is written."""
        self.db.executemany("DELETE FROM edges WHERE src = ? AND type = ? AND dst = ?", sorted(batch.dropped_edges))
        self.db.executemany("DELETE FROM facets WHERE node = ? AND name = ?", sorted(batch.dropped_facets))
        for statement in (
            "DELETE FROM edges WHERE src = ?",
            "DELETE FROM edges WHERE dst = ?",
            "DELETE FROM facets WHERE node = ?",
            "DELETE FROM nodes WHERE id = ?",
        ):
            self.db.executemany(statement, [(n,) for n in sorted(batch.dropped_nodes)])

    def edges_touching(self, node_ids):
        out = []
        for chunk in _chunks(node_ids):
            marks = ",".join("?" * len(chunk))
            out += self.db.execute(
                f"SELECT src, type, dst FROM edges WHERE src IN ({marks}) UNION "
                f"SELECT src, type, dst FROM edges WHERE dst IN ({marks})",
                chunk + chunk,
            ).fetchall()
        return out

    def typed_edges(self, node_ids, type_, direction):
        near = "dst" if direction == "upstream" else "src"  # a column name, never input
        out = []
        for chunk in _chunks(node_ids):
            out += self.db.execute(
                f"SELECT src, dst, time FROM edges WHERE {near} IN ({','.join('?' * len(chunk))}) AND type = ?",
                [*chunk, type_],
            ).fetchall()
        return out

    def facets_like(self, node_ids, prefix):
        out = []
        for chunk in _chunks(node_ids):
            rows = self.db.execute(
                f"SELECT node, name, value, ord FROM facets WHERE node IN ({','.join('?' * len(chunk))}) "
                "AND substr(name, 1, ?) = ?",
                [*chunk, len(prefix), prefix],
            )
            out += [(node, name, json.loads(value), order) for node, name, value, order in rows]
        return out

    def facet_orders(self, node_id):
        return [r[0] for r in self.db.execute("SELECT ord FROM facets WHERE node = ?", (node_id,))]

    def alias_edges(self, entities):
        out = []
        for chunk in _chunks(entities):
            out += self.db.execute(
                f"SELECT src, dst FROM edges WHERE type = 'ALIAS_OF' AND src IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
        return out

    def run_events(self, subject):
        return self.db.execute(
            "SELECT payload_digest, payload FROM ledger WHERE subject = ? AND kind = ? ORDER BY seq",
            (subject, OPENLINEAGE_KIND),
        ).fetchall()

    def stored_columns(self, keys):
        found = {}
        for key in keys:
            row = self.db.execute(
                "SELECT run, time, transformations FROM column_edges WHERE src = ? AND "
                "src_field = ? AND dst = ? AND dst_field = ?",
                key,
            ).fetchone()
            if row:
                found[key] = ColumnFact(*key, row[0], row[1], json.loads(row[2]))
        return found

    def latest_version_row(self, entity: str, as_of: str) -> tuple[str, str, str] | None:
        row = self.db.execute(
            "SELECT first_seen, id, version FROM nodes WHERE entity = ? AND first_seen <= ? AND version != ? "
            "ORDER BY first_seen DESC, id DESC LIMIT 1",
            (entity, as_of, UNVERSIONED),
        ).fetchone()
        return tuple(row) if row else None

    def exists(self, node_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM nodes WHERE id = ?", (node_id,)).fetchone() is not None

    def first_seen(self, node_id: str) -> str | None:
        row = self.db.execute("SELECT first_seen FROM nodes WHERE id = ?", (node_id,)).fetchone()
        return row[0] if row else None

    def versions_of(self, entities):
        out = []
        for chunk in _chunks(entities):
            out += self.db.execute(
                f"SELECT entity, id, version, first_seen FROM nodes WHERE entity IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
        return out

    def existing(self, node_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(node_ids):
            found.update(
                r[0] for r in self.db.execute(f"SELECT id FROM nodes WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            )
        return found
