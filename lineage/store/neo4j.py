"""The production backend: a Neo4j 5 server over the official driver.

Layout in the database:

* ``(:LedgerEntry {seq, ..., idem})``: the ledger; ``seq`` and ``idem`` (kind +
  payload digest) are unique, so a fork or a double append fails a constraint.
* ``(:LedgerHead {id: 'head', seq, hash})``: one node. Every write transaction
  first takes its write lock (``SET``), then reads it, so appends from any
  number of processes are serialised and the chain can never fork.
* ``(:Node:<Kind> {id, kind, namespace, name, version, entity, first_seen, last_seen})``
  with typed relationships between them (``READ_BY``, ``WROTE`` ...), each with
  the ``time`` it became true; ``(:Facet {node, name, value, ord})``, unique per
  (node, name), and ``(:ColumnEdge {src, src_field, dst, dst_field, ...})``, unique
  per its four ends. Keys are never joined into one string, so none can collide.

Constraints and indexes are created idempotently at open. Every value is a
query parameter; labels and relationship types are interpolated only from the
fixed sets below, never from input. A walk is one query: Neo4j's pruning
breadth-first variable-length expand (``VarLengthExpand(Pruning,BFS)``, chosen
by the planner for ``RETURN DISTINCT`` end nodes; it keeps a visited set and
never enumerates paths) finds the reachable set, and the same query returns
the edges into it; the BFS over them runs in memory, as on SQLite. Credentials come from the URL
(``neo4j://user:password@host:7687``) or from AUDITGRAPH_NEO4J_USER and
AUDITGRAPH_NEO4J_PASSWORD, and are never logged or put in an error.

One driver per process and server: a driver is thread-safe and keeps a pool of
connections, so every ``Neo4jStore`` of one (bolt URL, user, password,
database) in a process shares one (``_Shared``), and a store is cheap to open
(the server opens one per worker thread and per webhook delivery): the first
store connects and creates the schema, the others count themselves in. Each
read or write uses a session of its own. The driver closes when the last store
using it closes, or at process exit.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from lineage.canonical import stored_json
from lineage.errors import Invalid, StoreError, StoreUrlError
from lineage.extras import require
from lineage.ids import NodeKind
from lineage.ledger import GENESIS, Head, LedgerEntry
from lineage.projection import OPENLINEAGE_KIND, UNVERSIONED, ColumnFact
from lineage.query import JSON_COLUMNS, ColumnEdge, Direction, Edge, NodeRow, bfs_over, stored_value
from lineage.store.base import Store, WriteTx
from lineage.store.batch import Batch
from lineage.store.urls import redact, split_credentials

EDGE_TYPES = frozenset(
    {"READ_BY", "WROTE", "BUILT", "RUN_OF", "CHILD_OF", "VERSION_OF", "DESCENDANT_OF", "ALIAS_OF", "CONTINUED_BY"}
)
LABELS = frozenset(k.value for k in NodeKind)
_DELETABLE = frozenset({"LedgerEntry", "Node", "Facet", "ColumnEdge", "MerkleTile"})
# (src, type, dst, time) of an edge r between the near node n and the far node m
_EDGE_COLUMNS = {"upstream": "m.id, type(r), n.id, r.time", "downstream": "n.id, type(r), m.id, r.time"}
_PAGE = 1000
_SCHEMA = (
    "CREATE CONSTRAINT ledger_seq IF NOT EXISTS FOR (e:LedgerEntry) REQUIRE e.seq IS UNIQUE",
    "CREATE CONSTRAINT ledger_idem IF NOT EXISTS FOR (e:LedgerEntry) REQUIRE e.idem IS UNIQUE",
    "CREATE INDEX ledger_subject IF NOT EXISTS FOR (e:LedgerEntry) ON (e.subject)",
    "CREATE CONSTRAINT ledger_head IF NOT EXISTS FOR (h:LedgerHead) REQUIRE h.id IS UNIQUE",
    "CREATE CONSTRAINT node_id IF NOT EXISTS FOR (n:Node) REQUIRE n.id IS UNIQUE",
    "CREATE INDEX node_entity IF NOT EXISTS FOR (n:Node) ON (n.entity)",
    # A facet is (node, name), a column edge its four parts: separate properties, so no joined key can collide.
    "DROP CONSTRAINT facet_key IF EXISTS",
    "DROP CONSTRAINT column_key IF EXISTS",
    "CREATE CONSTRAINT facet_node_name IF NOT EXISTS FOR (f:Facet) REQUIRE (f.node, f.name) IS UNIQUE",
    "CREATE INDEX facet_node IF NOT EXISTS FOR (f:Facet) ON (f.node)",
    "CREATE CONSTRAINT column_ends IF NOT EXISTS FOR (c:ColumnEdge) REQUIRE (c.src, c.src_field, c.dst, c.dst_field) IS UNIQUE",
    "CREATE INDEX column_src IF NOT EXISTS FOR (c:ColumnEdge) ON (c.src)",
    "CREATE INDEX column_dst IF NOT EXISTS FOR (c:ColumnEdge) ON (c.dst)",
    "CREATE CONSTRAINT merkle_tile IF NOT EXISTS FOR (t:MerkleTile) REQUIRE (t.level, t.idx) IS UNIQUE",
)
_ENTRY_FIELDS = (
    "seq",
    "recorded_at",
    "kind",
    "actor",
    "subject",
    "event_time",
    "payload",
    "payload_digest",
    "prev_hash",
    "hash",
)


def build(url: str) -> Neo4jStore:
    return Neo4jStore(url)


def _connection(url: str) -> tuple[str, tuple[str, str], str | None]:
    bare, user, password = split_credentials(url)  # first: it cannot fail, and nothing after sees the password
    user = user or os.environ.get("AUDITGRAPH_NEO4J_USER", "neo4j")
    password = password or os.environ.get("AUDITGRAPH_NEO4J_PASSWORD")
    if not password:
        raise StoreUrlError(f"{redact(url)}: no Neo4j password; put it in the URL or set AUDITGRAPH_NEO4J_PASSWORD")
    try:
        parts = urlsplit(bare)
        host, port = parts.hostname or "localhost", parts.port
    except ValueError as e:
        raise StoreUrlError(f"{redact(url)}: not a Neo4j URL ({e})") from None
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{port}" if port else ""
    named = parse_qs(parts.query).get("database")
    database = named[0] if named else None
    return urlunsplit((parts.scheme, netloc, "", "", "")), (user, password), database


class _Shared:
    """The driver every store of one (process, bolt URL, user, password, database) uses, and how many do."""

    def __init__(self, key: tuple, driver):
        self.key, self.driver, self.stores = key, driver, 0


_drivers: dict[tuple, _Shared] = {}
_drivers_lock = threading.Lock()


def _acquire(address: str, auth: tuple[str, str], database: str | None) -> _Shared:
    """The shared driver for these settings, made (connected, schema created) by the first store to ask.

    The password is part of the key: a store opened with another password must not ride on a driver
    that authenticated with the right one. The pid is too: a driver does not survive a fork.
    """
    import neo4j  # the driver is imported only when this backend is chosen

    key = (os.getpid(), address, *auth, database)
    with _drivers_lock:
        shared = _drivers.get(key)
        if shared is None:
            # the server's query notifications (a label not created yet on a fresh database...) are not
            # the user's business: without this, every query on a fresh store printed a warning to stderr
            driver = neo4j.GraphDatabase.driver(address, auth=auth, notifications_min_severity="OFF")
            try:
                driver.verify_connectivity()
                _migrate(driver, database)
            except BaseException:
                driver.close()
                raise
            shared = _drivers[key] = _Shared(key, driver)
        shared.stores += 1
        return shared


def _release(shared: _Shared) -> None:
    with _drivers_lock:
        shared.stores -= 1
        if shared.stores == 0:
            _drivers.pop(shared.key, None)
            shared.driver.close()


@atexit.register
def _close_drivers() -> None:
    with _drivers_lock:
        for shared in list(_drivers.values()):
            shared.driver.close()
        _drivers.clear()


def _migrate(driver, database: str | None) -> None:
    with driver.session(database=database) as s:
        for statement in _SCHEMA:
            s.run(statement).consume()
        s.run("MERGE (h:LedgerHead {id: 'head'}) ON CREATE SET h.seq = 0, h.hash = $genesis", genesis=GENESIS).consume()


class Neo4jStore(Store):
    scheme = "neo4j"

    def __init__(self, url: str):
        super().__init__(url)
        require("neo4j")
        from neo4j.exceptions import DriverError, Neo4jError

        self._errors = (Neo4jError, DriverError, OSError)
        address, auth, self.database = _connection(url)
        try:
            self._shared: _Shared | None = _acquire(address, auth, self.database)
        except self._errors as e:
            raise StoreError(f"cannot open Neo4j store at {redact(url)}: {_reason(e)}") from None
        self.driver = self._shared.driver

    def _session(self):
        return self.driver.session(database=self.database)

    def _read(self, query: str, **params: Any) -> list:
        try:
            with self._session() as s:
                return list(s.run(query, **params))
        except self._errors as e:
            raise StoreError(f"Neo4j store {redact(self.url)}: {_reason(e)}") from None

    @contextlib.contextmanager
    def begin_write(self) -> Iterator[WriteTx]:
        session = self._session()
        try:
            tx = session.begin_transaction()
            try:
                yield _Neo4jTx(tx)
            except BaseException:
                tx.rollback()
                raise
            tx.commit()
        except self._errors as e:
            raise StoreError(f"Neo4j store {redact(self.url)}: {_reason(e)}") from None
        finally:
            session.close()

    def close(self) -> None:
        """Stop using the shared driver (closed with the last store using it); closing twice is harmless."""
        shared, self._shared = self._shared, None
        if shared is not None:
            _release(shared)

    def drop_everything(self, confirm: bool = False) -> None:
        """Delete every auditgraph node, the ledger included. For tests and `store migrate --fresh`."""
        if not confirm:
            raise Invalid("drop_everything needs confirm=True")
        self._delete_all("LedgerEntry")
        self._delete_all("MerkleTile")
        self.clear_projection()
        self._read(
            "MATCH (h:LedgerHead {id: 'head'}) SET h.seq = 0, h.hash = $genesis, h.tree_size = 0", genesis=GENESIS
        )

    def _delete_all(self, label: str) -> None:
        _check_name(label, _DELETABLE)
        while self._read(f"MATCH (n:{label}) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS c")[0]["c"]:
            pass

    # --- reads -------------------------------------------------------------

    def head(self) -> Head:
        row = self._read("MATCH (h:LedgerHead {id: 'head'}) RETURN h.seq AS seq, h.hash AS hash")[0]
        return Head(row["seq"], row["hash"])

    def tree_size(self) -> int:
        return self._read(_TREE_SIZE)[0]["size"]

    def read_tiles(self, keys):
        return _tiles(self._read(_READ_TILES, keys=[list(k) for k in keys]))

    def iter_entries(self, kind, subject, since, until, after_seq, limit) -> Iterator[LedgerEntry]:
        where = ["e.seq > $after"]
        for clause, value in (
            ("e.kind = $kind", kind),
            ("e.subject = $subject", subject),
            ("e.recorded_at >= $since", since),
            ("e.recorded_at <= $until", until),
        ):
            if value is not None:
                where.append(clause)
        query = f"MATCH (e:LedgerEntry) WHERE {' AND '.join(where)} RETURN e ORDER BY e.seq LIMIT $page"
        produced = 0
        while limit is None or produced < limit:
            page = _PAGE if limit is None else min(_PAGE, limit - produced)
            rows = self._read(query, after=after_seq, kind=kind, subject=subject, since=since, until=until, page=page)
            for row in rows:
                e = row["e"]
                yield LedgerEntry(**{f: e.get(f) for f in _ENTRY_FIELDS})
            produced += len(rows)
            if len(rows) < page:
                return
            after_seq = rows[-1]["e"]["seq"]

    def nodes(self, ids: Sequence[str]) -> dict[str, NodeRow]:
        if not ids:
            return {}
        rows = self._read("UNWIND $ids AS id MATCH (n:Node {id: id}) RETURN n", ids=list(ids))
        return {r["n"]["id"]: _row(r["n"]) for r in rows}

    def facets(self, node_id: str) -> dict[str, Any]:
        rows = self._read(
            "MATCH (f:Facet {node: $id}) RETURN f.name AS name, f.value AS value ORDER BY name", id=node_id
        )
        return {r["name"]: json.loads(r["value"]) for r in rows}

    def neighbors(self, ids, direction: Direction, types, as_of=None) -> list[Edge]:
        if not ids:
            return []
        pattern = "(n:Node {id: id})<-[r]-(m:Node)" if direction == "upstream" else "(n:Node {id: id})-[r]->(m:Node)"
        ends = _EDGE_COLUMNS[direction]
        # one record holding every edge: the driver pays a network read per record
        rows = self._read(
            f"UNWIND $ids AS id MATCH {pattern} WHERE type(r) IN $types AND ($as_of IS NULL OR r.time <= $as_of) "
            f"RETURN collect([{ends}]) AS edges",
            ids=list(ids),
            types=list(types),
            as_of=as_of,
        )
        return list(map(Edge._make, rows[0]["edges"]))

    def walk(self, starts, direction: Direction, types, as_of, depth, max_nodes):
        """One round trip instead of one per BFS level (a 100-version chain took 100)."""
        if depth == 0 or not set(types) <= EDGE_TYPES:
            return super().walk(starts, direction, types, as_of, depth, max_nodes)
        rels = "|".join(types)  # checked against EDGE_TYPES above: never input
        hops = "*1.." if depth is None else f"*1..{int(depth)}"
        path, edge = (
            (f"<-[p:{rels}{hops}]-", "<-[r]-") if direction == "upstream" else (f"-[p:{rels}{hops}]->", "-[r]->")
        )
        ends = _EDGE_COLUMNS[direction]
        # A plain predicate (or none) keeps the planner on the pruning BFS; "$as_of IS NULL OR ..." would not.
        when = "WHERE all(x IN p WHERE x.time <= $as_of) " if as_of is not None else ""
        row = self._read(
            f"MATCH (s:Node) WHERE s.id IN $starts "
            f"OPTIONAL MATCH (s){path}(m:Node) {when}"
            f"WITH collect(DISTINCT s) + collect(DISTINCT m) AS found "
            f"CALL (found) {{ UNWIND (CASE WHEN size(found) > $cap THEN [] ELSE found END) AS n "
            f"  WITH DISTINCT n MATCH (n){edge}(m:Node) WHERE type(r) IN $types AND ($as_of IS NULL OR r.time <= $as_of) "
            f"  RETURN collect([{ends}]) AS edges }} "
            f"RETURN size(found) AS reached, edges",
            starts=list(starts),
            as_of=as_of,
            cap=max_nodes,
            types=list(types),
        )[0]
        if row["reached"] > max_nodes:  # the cap decides which nodes are kept: walk level by level
            return super().walk(starts, direction, types, as_of, depth, max_nodes)
        return bfs_over(map(Edge._make, row["edges"]), starts, direction, depth, max_nodes)

    def column_edges(self, keys, direction: Direction) -> list[ColumnEdge]:
        ds, field = ("dst", "dst_field") if direction == "upstream" else ("src", "src_field")
        # upstream of a field: also what flowed into the whole dataset (WHOLE_DATASET, '')
        whole = f" OR ($upstream AND c.{field} = '')"
        rows = self._read(
            f"UNWIND $keys AS k MATCH (c:ColumnEdge) WHERE c.{ds} = k[0] AND (k[1] IS NULL OR c.{field} = k[1]{whole}) "
            "RETURN c ORDER BY c.src, c.src_field, c.dst, c.dst_field",
            keys=[[d, f] for d, f in keys],
            upstream=direction == "upstream",
        )
        return [
            ColumnEdge(
                src=c["src"],
                src_field=c["src_field"],
                dst=c["dst"],
                dst_field=c["dst_field"],
                run=c["run"],
                time=c["time"],
                transformations=json.loads(c["transformations"]),
            )
            for c in (r["c"] for r in rows)
        ]

    def column_fields(self, entity: str) -> set[str]:
        rows = self._read(
            "MATCH (c:ColumnEdge) WHERE c.src = $e RETURN c.src_field AS f UNION "
            "MATCH (c:ColumnEdge) WHERE c.dst = $e AND c.dst_field <> '' RETURN c.dst_field AS f",
            e=entity,
        )
        return {r["f"] for r in rows}

    def search_nodes(self, text: str, kinds: Sequence[str], limit: int) -> list[NodeRow]:
        rows = self._read(
            "MATCH (n:Node) WHERE toLower(n.id) CONTAINS $text "
            "AND (size($kinds) = 0 OR any(k IN $kinds WHERE n.id STARTS WITH k + ':')) "
            "RETURN n ORDER BY size(n.id), n.id LIMIT $limit",
            text=text.lower(),
            kinds=list(kinds),
            limit=limit,
        )
        return [_row(r["n"]) for r in rows]

    def facet_values(self, ids: Sequence[str], name: str) -> dict[str, Any]:
        if not ids:
            return {}
        rows = self._read(
            "UNWIND $ids AS i MATCH (f:Facet {node: i, name: $name}) RETURN f.node AS node, f.value AS value",
            ids=list(ids),
            name=name,
        )
        return {r["node"]: json.loads(r["value"]) for r in rows}

    def projection(self, part: str, ids: Sequence[str] | None = None) -> Iterator[tuple]:
        """Streamed: one session stays open while the caller reads (a full graph is never held in memory)."""
        query = _PROJECTION_READS[part][0 if ids is None else 1]
        try:
            with self._session() as s:
                for record in s.run(query, ids=sorted(set(ids or ()))):
                    yield tuple(stored_value(v) if i in JSON_COLUMNS[part] else v for i, v in enumerate(record))
        except self._errors as e:
            raise StoreError(f"Neo4j store {redact(self.url)}: {_reason(e)}") from None

    def backend_stats(self) -> dict[str, Any]:
        nodes = {
            r["kind"]: r["c"] for r in self._read("MATCH (n:Node) RETURN n.kind AS kind, count(*) AS c ORDER BY kind")
        }
        edges = {
            r["t"]: r["c"]
            for r in self._read("MATCH (:Node)-[r]->(:Node) RETURN type(r) AS t, count(*) AS c ORDER BY t")
        }
        kinds = {
            r["k"]: r["c"] for r in self._read("MATCH (e:LedgerEntry) RETURN e.kind AS k, count(*) AS c ORDER BY k")
        }
        columns = self._read("MATCH (c:ColumnEdge) RETURN count(*) AS c")[0]["c"]
        return {"backend": "neo4j", "nodes": nodes, "edges": edges, "column_edges": columns, "entries_by_kind": kinds}

    def clear_projection(self) -> None:
        for label in ("Node", "Facet", "ColumnEdge"):
            self._delete_all(label)


_EDGE_ROW = "RETURN a.id AS src, type(r) AS type, b.id AS dst, r.time AS time"
_COLUMN_ROW = (
    "RETURN c.src AS src, c.src_field AS src_field, c.dst AS dst, c.dst_field AS dst_field, c.run AS run, "
    "c.time AS time, c.transformations AS transformations ORDER BY src, src_field, dst, dst_field"
)
_NODE_ROW = (
    "RETURN n.id AS id, n.kind AS kind, n.namespace AS namespace, n.name AS name, n.version AS version, "
    "n.entity AS entity, n.first_seen AS first_seen, n.last_seen AS last_seen ORDER BY id"
)
_FACET_ROW = "RETURN f.node AS node, f.name AS name, f.value AS value, f.ord AS ord ORDER BY node, name"
# Each part of the projection (query.PROJECTION): the whole of it, and the rows about $ids.
# Neo4j orders strings by code point, as SQLite's BINARY collation and Python do.
_PROJECTION_READS = {
    "nodes": (f"MATCH (n:Node) {_NODE_ROW}", f"UNWIND $ids AS i MATCH (n:Node {{id: i}}) {_NODE_ROW}"),
    "facets": (f"MATCH (f:Facet) {_FACET_ROW}", f"UNWIND $ids AS i MATCH (f:Facet {{node: i}}) {_FACET_ROW}"),
    "edges": (
        f"MATCH (a:Node)-[r]->(b:Node) {_EDGE_ROW} ORDER BY src, type, dst",
        f"CALL () {{ UNWIND $ids AS i MATCH (a:Node {{id: i}})-[r]->(b:Node) {_EDGE_ROW} UNION ALL "
        f"UNWIND $ids AS i MATCH (a:Node)-[r]->(b:Node {{id: i}}) WHERE NOT a.id IN $ids {_EDGE_ROW} }} "
        "RETURN src, type, dst, time ORDER BY src, type, dst",
    ),
    "column_edges": (
        f"MATCH (c:ColumnEdge) {_COLUMN_ROW}",
        f"MATCH (c:ColumnEdge) WHERE c.src IN $ids OR c.dst IN $ids {_COLUMN_ROW}",
    ),
}


def _check_name(name: str, allowed: frozenset[str]) -> None:
    """Refuse a label or relationship type outside ``allowed`` before it is written into query text.

    Cypher has no parameters for labels and types, so this check is what keeps them out of reach of
    input. Every caller passes a name from the fixed sets above, never input, so a miss is a bug in
    auditgraph, not bad input: RuntimeError, answered as an internal error.
    """
    if name not in allowed:
        raise RuntimeError(
            f"refusing to write {name!r:.100} into a Cypher query: not one of {', '.join(sorted(allowed))}"
        )


def _row(n) -> NodeRow:
    return NodeRow(
        id=n["id"],
        kind=n["kind"],
        namespace=n.get("namespace", ""),
        name=n.get("name", ""),
        version=n.get("version"),
        entity=n.get("entity"),
        first_seen=n.get("first_seen"),
        last_seen=n.get("last_seen"),
    )


def _reason(e: Exception) -> str:
    """A driver error's message without anything that might carry a credential."""
    message = getattr(e, "message", None) or str(e) or type(e).__name__
    return message.splitlines()[0][:300]


_TREE_SIZE = "MATCH (h:LedgerHead {id: 'head'}) RETURN coalesce(h.tree_size, 0) AS size"
_READ_TILES = (
    "UNWIND $keys AS k MATCH (t:MerkleTile {level: k[0], idx: k[1]}) "
    "RETURN t.level AS level, t.idx AS idx, t.hashes AS hashes"
)


def _tiles(rows) -> dict[tuple[int, int], bytes]:
    return {(r["level"], r["idx"]): bytes(r["hashes"]) for r in rows}


class _Neo4jTx(WriteTx):
    def __init__(self, tx):
        self.tx = tx
        # Take the head's write lock first: concurrent writers queue here, so the chain cannot fork.
        tx.run("MATCH (h:LedgerHead {id: 'head'}) SET h.lock = coalesce(h.lock, 0) + 1").consume()

    def head(self) -> Head:
        row = self.tx.run("MATCH (h:LedgerHead {id: 'head'}) RETURN h.seq AS seq, h.hash AS hash").single()
        return Head(row["seq"], row["hash"])

    def tree_size(self) -> int:
        return self.tx.run(_TREE_SIZE).single()["size"]

    def read_tiles(self, keys):
        return _tiles(self.tx.run(_READ_TILES, keys=[list(k) for k in keys]))

    def write_tiles(self, tiles, size: int) -> None:
        self.tx.run(
            "UNWIND $rows AS r MERGE (t:MerkleTile {level: r.level, idx: r.idx}) SET t.hashes = r.hashes "
            "WITH count(*) AS n MATCH (h:LedgerHead {id: 'head'}) SET h.tree_size = $size",
            rows=[{"level": level, "idx": index, "hashes": data} for (level, index), data in sorted(tiles.items())],
            size=size,
        ).consume()

    def entry_hashes(self, after_seq: int, limit: int) -> list[str]:
        rows = self.tx.run(
            "MATCH (e:LedgerEntry) WHERE e.seq > $after RETURN e.hash AS hash ORDER BY e.seq LIMIT $limit",
            after=after_seq,
            limit=limit,
        )
        return [r["hash"] for r in rows]

    def find_many(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Head]:
        if not keys:
            return {}
        rows = self.tx.run(
            "UNWIND $idems AS i MATCH (e:LedgerEntry {idem: i}) RETURN e.kind AS kind, "
            "e.payload_digest AS digest, e.seq AS seq, e.hash AS hash",
            idems=[f"{k}:{d}" for k, d in keys],
        )
        return {(r["kind"], r["digest"]): Head(r["seq"], r["hash"]) for r in rows}

    def write(self, batch: Batch) -> None:
        batch.bind()
        if batch.entries:
            last = batch.entries[-1]
            self.tx.run(
                "UNWIND $rows AS r CREATE (e:LedgerEntry) SET e = r "
                "WITH count(*) AS n MATCH (h:LedgerHead {id: 'head'}) SET h.seq = $seq, h.hash = $hash",
                rows=[{**e.model_dump(), "idem": f"{e.kind}:{e.payload_digest}"} for e in batch.entries],
                seq=last.seq,
                hash=last.hash,
            ).consume()
        self.apply(batch)

    def apply(self, facts: Batch) -> None:
        self._drop(facts)
        by_label: dict[str, list[dict]] = {}
        for n in facts.nodes.values():
            props = {
                "id": n.id,
                "kind": n.kind.value,
                "namespace": n.namespace,
                "name": n.name,
                "time": n.time,
                "last": n.last,
                "version": n.version,
                "entity": n.entity,
            }
            by_label.setdefault(n.kind.value, []).append(props)
        for label, rows in by_label.items():
            _check_name(label, LABELS)
            self.tx.run(
                f"UNWIND $rows AS r MERGE (n:Node {{id: r.id}}) "
                f"ON CREATE SET n:{label}, n.kind = r.kind, n.namespace = r.namespace, n.name = r.name, "
                "n.version = r.version, n.entity = r.entity, n.first_seen = r.time, n.last_seen = r.last "
                "ON MATCH SET n.first_seen = CASE WHEN r.time < n.first_seen THEN r.time ELSE n.first_seen END, "
                "n.last_seen = CASE WHEN r.last > n.last_seen THEN r.last ELSE n.last_seen END",
                rows=rows,
            ).consume()
        if facts.facets:
            self.tx.run(
                "UNWIND $rows AS r MERGE (f:Facet {node: r.node, name: r.name}) "
                "ON CREATE SET f.value = r.value, f.ord = r.ord "
                "ON MATCH SET f.value = CASE WHEN r.ord > f.ord THEN r.value ELSE f.value END, "
                "f.ord = CASE WHEN r.ord > f.ord THEN r.ord ELSE f.ord END",
                rows=[
                    {"node": f.node, "name": f.name, "ord": f.order, "value": stored_json(f.value)}
                    for f in facts.facets.values()
                ],
            ).consume()
        by_type: dict[str, list[dict]] = {}
        for e in facts.edges.values():
            by_type.setdefault(e.type, []).append({"src": e.src, "dst": e.dst, "time": e.time})
        for rel, rows in by_type.items():
            _check_name(rel, EDGE_TYPES)
            self.tx.run(
                f"UNWIND $rows AS r MATCH (a:Node {{id: r.src}}), (b:Node {{id: r.dst}}) "
                f"MERGE (a)-[e:{rel}]->(b) ON CREATE SET e.time = r.time "
                "ON MATCH SET e.time = CASE WHEN r.time < e.time THEN r.time ELSE e.time END",
                rows=rows,
            ).consume()
        if facts.columns:
            self.tx.run(  # column_rows already merged each edge with its stored one
                "UNWIND $rows AS r MERGE (c:ColumnEdge {src: r.src, src_field: r.src_field, dst: r.dst, dst_field: r.dst_field}) "
                "SET c.run = r.run, c.time = r.time, c.transformations = r.transformations",
                rows=[
                    {
                        "src": c.src,
                        "src_field": c.src_field,
                        "dst": c.dst,
                        "dst_field": c.dst_field,
                        "run": c.run,
                        "time": c.time,
                        "transformations": stored_json(c.transformations),
                    }
                    for c in facts.column_rows()
                ],
            ).consume()

    def _drop(self, batch: Batch) -> None:
        """What a run's merged view took back (Batch.settle), deleted before the batch is written."""
        if batch.dropped_edges:
            for rel in {t for _, t, _ in batch.dropped_edges}:
                _check_name(rel, EDGE_TYPES)
                self.tx.run(
                    f"UNWIND $rows AS r MATCH (:Node {{id: r[0]}})-[e:{rel}]->(:Node {{id: r[1]}}) DELETE e",
                    rows=[[s, d] for s, t, d in sorted(batch.dropped_edges) if t == rel],
                ).consume()
        if batch.dropped_facets:
            self.tx.run(
                "UNWIND $rows AS r MATCH (f:Facet {node: r[0], name: r[1]}) DELETE f",
                rows=[list(k) for k in sorted(batch.dropped_facets)],
            ).consume()
        if batch.dropped_nodes:
            ids = sorted(batch.dropped_nodes)
            self.tx.run("UNWIND $ids AS i MATCH (f:Facet {node: i}) DELETE f", ids=ids).consume()
            self.tx.run("UNWIND $ids AS i MATCH (n:Node {id: i}) DETACH DELETE n", ids=ids).consume()

    def edges_touching(self, node_ids):
        if not node_ids:
            return []
        rows = self.tx.run(
            "UNWIND $ids AS i MATCH (n:Node {id: i})-[r]-(m:Node) "
            "RETURN DISTINCT startNode(r).id AS s, type(r) AS t, endNode(r).id AS d",
            ids=list(node_ids),
        )
        return [(r["s"], r["t"], r["d"]) for r in rows]

    def typed_edges(self, node_ids, type_, direction):
        if not node_ids:
            return []
        _check_name(type_, EDGE_TYPES)
        pattern = (
            "(n:Node {id: i})<-[r:%s]-(m:Node)" if direction == "upstream" else "(n:Node {id: i})-[r:%s]->(m:Node)"
        )
        ends = "m.id AS s, n.id AS d" if direction == "upstream" else "n.id AS s, m.id AS d"
        rows = self.tx.run(f"UNWIND $ids AS i MATCH {pattern % type_} RETURN {ends}, r.time AS t", ids=list(node_ids))
        return [(r["s"], r["d"], r["t"]) for r in rows]

    def facets_like(self, node_ids, prefix):
        if not node_ids:
            return []
        rows = self.tx.run(
            "UNWIND $ids AS i MATCH (f:Facet {node: i}) WHERE f.name STARTS WITH $p "
            "RETURN f.node AS n, f.name AS name, f.value AS v, f.ord AS o",
            ids=list(node_ids),
            p=prefix,
        )
        return [(r["n"], r["name"], json.loads(r["v"]), r["o"]) for r in rows]

    def facet_orders(self, node_id):
        return [r["o"] for r in self.tx.run("MATCH (f:Facet {node: $id}) RETURN f.ord AS o", id=node_id)]

    def alias_edges(self, entities):
        if not entities:
            return []
        rows = self.tx.run(
            "UNWIND $ids AS i MATCH (a:Node {id: i})-[:ALIAS_OF]->(c:Node) RETURN a.id AS a, c.id AS c",
            ids=list(entities),
        )
        return [(r["a"], r["c"]) for r in rows]

    def run_events(self, subject):
        rows = self.tx.run(
            "MATCH (e:LedgerEntry {subject: $s}) WHERE e.kind = $kind "
            "RETURN e.payload_digest AS d, e.payload AS p ORDER BY e.seq",
            s=subject,
            kind=OPENLINEAGE_KIND,
        )
        return [(r["d"], r["p"]) for r in rows]

    def stored_columns(self, keys):
        rows = self.tx.run(
            "UNWIND $keys AS k MATCH (c:ColumnEdge {src: k[0], src_field: k[1], dst: k[2], dst_field: k[3]}) "
            "RETURN c.src AS s, c.src_field AS sf, c.dst AS d, c.dst_field AS df, c.run AS run, "
            "c.time AS time, c.transformations AS t",
            keys=[list(k) for k in keys],
        )
        return {
            (r["s"], r["sf"], r["d"], r["df"]): ColumnFact(
                r["s"], r["sf"], r["d"], r["df"], r["run"], r["time"], json.loads(r["t"])
            )
            for r in rows
        }

    def latest_version_row(self, entity: str, as_of: str) -> tuple[str, str, str] | None:
        row = self.tx.run(
            "MATCH (v:Node {entity: $entity}) WHERE v.first_seen <= $as_of AND v.version <> $unversioned "
            "RETURN v.first_seen AS t, v.id AS id, v.version AS version ORDER BY v.first_seen DESC, v.id DESC LIMIT 1",
            entity=entity,
            as_of=as_of,
            unversioned=UNVERSIONED,
        ).single()
        return (row["t"], row["id"], row["version"]) if row else None

    def exists(self, node_id: str) -> bool:
        return self.tx.run("MATCH (n:Node {id: $id}) RETURN 1 AS one", id=node_id).single() is not None

    def first_seen(self, node_id: str) -> str | None:
        row = self.tx.run("MATCH (n:Node {id: $id}) RETURN n.first_seen AS t", id=node_id).single()
        return row["t"] if row else None

    def versions_of(self, entities):
        if not entities:
            return []
        rows = self.tx.run(
            "UNWIND $entities AS e MATCH (v:Node {entity: e}) "
            "RETURN v.entity AS e, v.id AS id, v.version AS version, v.first_seen AS t",
            entities=list(entities),
        )
        return [(r["e"], r["id"], r["version"], r["t"]) for r in rows]

    def existing(self, node_ids):
        if not node_ids:
            return set()
        rows = self.tx.run("UNWIND $ids AS i MATCH (n:Node {id: i}) RETURN n.id AS id", ids=list(node_ids))
        return {r["id"] for r in rows}
