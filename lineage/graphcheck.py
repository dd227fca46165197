"""Is the graph what its ledger projects? ``audit verify --graph``, ``governance gate --verify-graph``, releases.

The graph is a projection of the ledger (``lineage.projection``): replaying the ledger into an
empty store gives it again. Someone who can write the database (SQL on the SQLite file, Cypher on
Neo4j) can change the graph and leave the ledger alone: delete a READ_BY edge so that a pii rule
sees no tagged input, forge a model version's ``auditgraph_model`` facet. Every query, gate and
report then reads the forgery while the chain still verifies. This module replays the ledger into
a scratch store (a temporary SQLite file, never the live store) and compares, row by row, what the
live store holds (``Store.projection``) with what the ledger projects. Every node, facet, edge and
column edge that is missing, extra or different is a ``Difference``.

Two scopes:

* The whole graph (``check_graph``): the scratch store copies the ledger entry for entry
  (``Store.copy_ledger_from``), then both stores stream each part sorted by key and the two
  streams are merged, so memory does not grow with the graph. Costs a full replay.
* What a release reads (``check_upstream``, ``region``): the upstream closure of a model version
  (the READ_BY, WROTE, BUILT and CONTINUED_BY walk the rules take), the jobs of its runs and the
  datasets of its versions, with their rows and facets and the edges and column edges among them.
  Only the ledger entries those rows can depend on are replayed (``_select``): every recorded
  OpenLineage event that names one of those nodes (``projection.openlineage_keys``; a dataset by
  name, whatever its version, so every write and read that version binding depends on) or an
  alias of one; every event of each run among them (a run's outcome decides which of its
  versions a read binds to, and marking an output a model projects all of its events again);
  and every symlinks declaration of a dataset those events name (a new alias projects again the
  events that touched it). They are replayed in the batches the whole replay uses. The region
  compared is the live one together with the replayed one, so an edge deleted from the live graph
  shows as missing, an edge added as extra; if the replayed region reaches a node whose events
  were not selected (only on a tampered store), the selection widens and the replay runs again.
  Finding the entries reads every OpenLineage payload once; the replay is the region's size. A
  store with a projector for another entry kind, or a region past ``MAX_REGION`` nodes, is
  checked whole instead. ``tests/test_graphcheck.py`` checks on random pipelines that the region
  of every node comes out of this replay exactly as out of the whole one.

A check that sees the live ledger grow while it runs, and finds differences, runs again (up to
``ATTEMPTS`` times): an event landing between the replay and the comparison is no tampering.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from lineage.errors import GraphError
from lineage.ids import parse_id
from lineage.ledger import LedgerEntry, Pending
from lineage.projection import FLOW_EDGES, OPENLINEAGE_KIND, Key, may_name, node_key, openlineage_keys
from lineage.query import JSON_COLUMNS, KEY_WIDTH, PROJECTION, Unreadable
from lineage.store import Store, sqlite

Progress = Callable[[int], None] | None
MAX_REGION = 100_000  # nodes upstream of a release (governance.subject.MAX_UPSTREAM walks as far)
ATTEMPTS = 3
SHOWN = 20  # differences a message or a printed report names; --json gives all
_REPLAY_BATCH = 1000
_PART_NAMES = {"nodes": "node", "facets": "facet", "edges": "edge", "column_edges": "column edge"}


@dataclass(frozen=True, slots=True)
class Difference:
    """One row the live graph and the ledger's projection disagree on: ``graph`` is the live row (None:
    missing there), ``ledger`` the projected one (None: the ledger projects no such row)."""

    part: str
    key: tuple
    graph: tuple | None
    ledger: tuple | None

    @property
    def problem(self) -> str:
        return "missing" if self.graph is None else "extra" if self.ledger is None else "different"

    def __str__(self) -> str:
        what = _describe(self.part, self.key)
        if self.graph is None:
            return f"{what} is missing from the graph (the ledger projects it)"
        if self.ledger is None:
            return f"{what} is in the graph, but the ledger projects no such {_PART_NAMES[self.part]}"
        columns = PROJECTION[self.part]
        changed = [
            f"{columns[i]} {_shown(g)} in the graph, {_shown(p)} by the ledger"
            for i, (g, p) in enumerate(zip(self.graph, self.ledger))
            if i >= KEY_WIDTH[self.part] and _strict(g) != _strict(p)
        ]
        return f"{what} differs: {'; '.join(changed)}"

    def as_json(self) -> dict[str, Any]:
        columns = PROJECTION[self.part]
        return {
            "part": self.part,
            "key": list(self.key),
            "problem": self.problem,
            "graph": dict(zip(columns, map(_plain, self.graph))) if self.graph is not None else None,
            "ledger": dict(zip(columns, map(_plain, self.ledger))) if self.ledger is not None else None,
            "text": str(self),
        }


@dataclass
class GraphCheck:
    """What a check compared, and every difference it found (none: the graph is exactly the projection)."""

    scope: str  # "whole graph", or "upstream of <node>"
    entries: int  # ledger entries replayed into the scratch store
    ledger_entries: int  # entries the live ledger held
    compared: dict[str, int] = field(default_factory=dict)  # live rows compared, by part
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for d in self.differences:
            by_problem = out.setdefault(d.part, {})
            by_problem[d.problem] = by_problem.get(d.problem, 0) + 1
        return out

    def summary(self) -> str:
        if self.ok:
            rows = ", ".join(f"{part.replace('_', ' ')} {n}" for part, n in self.compared.items())
            return f"the graph ({self.scope}: {rows}) is exactly what the ledger projects"
        counts = "; ".join(
            f"{part.replace('_', ' ')}: " + ", ".join(f"{n} {problem}" for problem, n in sorted(problems.items()))
            for part, problems in self.counts().items()
        )
        return f"the graph ({self.scope}) differs from what the ledger projects in {len(self.differences)} row(s) ({counts})"

    def lines(self, limit: int = SHOWN) -> list[str]:
        shown = [str(d) for d in self.differences[:limit]]
        if len(self.differences) > limit:
            shown.append(f"... and {len(self.differences) - limit} more (--json lists every one)")
        return shown

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "scope": self.scope,
            "entries_replayed": self.entries,
            "ledger_entries": self.ledger_entries,
            "compared": self.compared,
            "counts": self.counts(),
            "differences": [d.as_json() for d in self.differences],
        }

    def require(self, refused: str) -> GraphCheck:
        """This check, if the graph passed; else ``GraphError`` saying what was refused and what differs."""
        if self.ok:
            return self
        named = "; ".join(self.lines(3))
        raise GraphError(
            f"{refused}: {self.summary()}: {named}. 'auditgraph audit verify --graph' lists every difference; "
            "'auditgraph store rebuild' restores the graph from the ledger"
        )


# --- the whole graph -----------------------------------------------------------


def check_graph(store: Store, progress: Progress = None) -> GraphCheck:
    """Replay the whole ledger into a scratch store and compare every part of the graph with it."""
    with _scratch() as new:
        scratch = new()
        for _ in range(ATTEMPTS):
            head = scratch.copy_ledger_from(store, progress, batch=_REPLAY_BATCH)
            check = GraphCheck("whole graph", head.seq, head.seq)
            for part in PROJECTION:
                check.differences += compare(part, store.projection(part), scratch.projection(part), check.compared)
            if check.ok or store.head().seq == head.seq:
                break
        return check


# --- what a release reads --------------------------------------------------------


def check_upstream(store: Store, node: str, progress: Progress = None) -> GraphCheck:
    """Compare what a release of ``node`` reads (``region``: its upstream closure, the jobs of its runs,
    the datasets of its versions; their rows and facets, the edges and column edges among them) with a
    replay of the ledger entries they depend on."""
    from lineage.plugins import registry

    if set(registry().projectors) != {OPENLINEAGE_KIND}:  # what another kind's entries touch is not known here
        return check_graph(store, progress)
    for _ in range(ATTEMPTS):
        head = store.head().seq
        live = region(store, node)
        if live is None:
            return check_graph(store, progress)
        check = _check_region(store, node, live, head, progress)
        if check.ok or store.head().seq == head:
            break
    return check


def region(store: Store, node: str) -> set[str] | None:
    """``node``, everything upstream of it over the flow edges (what the gate walks), the jobs of the
    runs among them and the datasets and models of the versions among them; None if the walk passed
    ``MAX_REGION`` nodes."""
    distance, _, reason = store.walk([node], "upstream", FLOW_EDGES, None, None, MAX_REGION)
    if reason is not None:
        return None
    runs = [n for n in distance if n.startswith("run:")]
    jobs = {e.dst for e in store.neighbors(runs, "downstream", ("RUN_OF",), None)} if runs else set()
    return set(distance) | jobs | {e for n in distance if (e := _entity(n))}


def _entity(node: str) -> str | None:
    if "@" not in node or not node.startswith(("dataset:", "model:")):
        return None
    try:
        return str(parse_id(node).entity())
    except ValueError:  # no event could have made this id
        return None


def _check_region(store: Store, node: str, live: set[str], head: int, progress: Progress) -> GraphCheck:
    keys = {node_key(n) for n in live}
    with _scratch() as new:
        while True:
            entries, keys = _select(store, keys, progress)
            scratch = new()
            _replay(scratch, entries)
            projected = region(scratch, node) or set()
            more = {node_key(n) for n in projected} - keys
            if not more:
                break
            keys |= more  # the ledger's region reaches nodes the live one hid: replay what they depend on too
        ids = sorted(live | projected)
        check = GraphCheck(f"upstream of {node}", len(entries), head)
        inside = set(ids)
        for part in PROJECTION:
            graph = _within(part, store.projection(part, ids), inside)
            ledger = _within(part, scratch.projection(part, ids), inside)
            check.differences += compare(part, graph, ledger, check.compared)
        return check


def _within(part: str, rows: Iterable[tuple], inside: set[str]) -> Iterator[tuple]:
    """Edges and column edges with both ends in the region (what a release reads); the other parts' rows."""
    if part in ("edges", "column_edges"):  # src and dst are columns 0 and 2 of both
        return (r for r in rows if r[0] in inside and r[2] in inside)
    return iter(rows)


def _select(store: Store, keys: set[Key], progress: Progress) -> tuple[list[LedgerEntry], set[Key]]:
    """The OpenLineage entries the rows of ``keys`` can depend on, in ledger order; and ``keys`` widened
    to the aliases of their datasets.

    1. Every entry that names one of ``keys`` or an alias of one (widening ``keys`` to the aliases
       takes another pass over the ledger when there are any).
    2. Every entry of each run among them: a run's outcome decides which of its versions a read binds
       to, and a run's events are projected again, all of them, when one marks an output as a model.
    3. Every entry declaring a symlink of a dataset those entries name: a new alias projects again the
       events of the runs that touched it (``Batch.alias``), naming what they name as it stands then.
    """
    while True:
        chosen: dict[int, LedgerEntry] = {}
        named: set[Key] = set()
        declaring: dict[int, set[tuple[Key, Key]]] = {}
        names = {key[-1] for key in keys}  # a dataset's or job's name, a run's id, a revision: rarer than namespaces
        for count, entry in enumerate(store.entries(kind=OPENLINEAGE_KIND), 1):
            if progress and count % 1000 == 0:
                progress(1000)
            if not may_name(entry.payload, names):  # most events, without parsing them
                continue
            touched, aliases = openlineage_keys(_loads(entry.payload))
            if aliases:
                declaring[entry.seq] = aliases
            if not keys.isdisjoint(touched):
                chosen[entry.seq] = entry
                named |= touched
        pairs = set().union(*declaring.values())
        wider = _with_aliases(keys, pairs)
        if wider == keys:
            break
        keys = wider
    for run in sorted({e.subject for e in chosen.values() if e.subject and e.subject.startswith("run:")}):
        for entry in store.entries(kind=OPENLINEAGE_KIND, subject=run):
            if entry.seq not in chosen:
                chosen[entry.seq] = entry
                named |= openlineage_keys(_loads(entry.payload))[0]
    joined = _with_aliases(named, pairs)
    for seq, aliases in declaring.items():
        if seq not in chosen and any(a in joined or d in joined for a, d in aliases):
            chosen[seq] = next(store.entries(after_seq=seq - 1, limit=1))
    return [chosen[seq] for seq in sorted(chosen)], keys


def _with_aliases(keys: set[Key], pairs: set[tuple[Key, Key]]) -> set[Key]:
    """``keys`` and every dataset joined to one of them by symlinks declarations, directly or in a chain."""
    joined: dict[Key, set[Key]] = {}
    for alias, declarer in pairs:
        joined.setdefault(alias, set()).add(declarer)
        joined.setdefault(declarer, set()).add(alias)
    out, todo = set(keys), [k for k in keys if k in joined]
    while todo:
        for other in joined[todo.pop()]:
            if other not in out:
                out.add(other)
                todo.append(other)
    return out


def _replay(scratch: Store, entries: Sequence[LedgerEntry]) -> None:
    """Record these entries in the scratch store, in ledger order, each projected as on ingest, in the
    batches a whole replay (``copy_ledger_from``) puts them in: a run's merged view is settled per batch."""
    batches: dict[int, list[LedgerEntry]] = {}
    for e in entries:
        batches.setdefault((e.seq - 1) // _REPLAY_BATCH, []).append(e)
    for _, batch in sorted(batches.items()):
        scratch.append_many(
            [Pending(OPENLINEAGE_KIND, json.loads(e.payload), e.actor, e.subject, e.event_time) for e in batch],
            atomic=True,
        )


def _loads(payload: str) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:  # what orjson does not read (an int past 64 bits) the standard parser does
        return json.loads(payload)


# --- comparing ----------------------------------------------------------------------


def compare(part: str, graph: Iterable[tuple], ledger: Iterable[tuple], compared: dict[str, int]) -> list[Difference]:
    """Merge two streams of one part's rows, each sorted by key, into the rows they disagree on; count
    the live rows in ``compared``.

    A live row whose key is not text (only a hand-edited store holds one) is extra; a row stored twice
    is extra once more. Values are compared strictly: ``1``, ``1.0`` and ``true`` differ, the order of
    an object's keys does not.
    """
    found: list[Difference] = []
    malformed: list[Difference] = []
    mine, theirs = _keyed(part, graph, malformed), _keyed(part, ledger, [])
    a, b = next(mine, None), next(theirs, None)
    count = 0
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            found.append(Difference(part, a[0], a[1], None))  # type: ignore[index]
            a, count = next(mine, None), count + 1
        elif a is None or b[0] < a[0]:
            found.append(Difference(part, b[0], None, b[1]))
            b = next(theirs, None)
        else:
            if _strict_row(part, a[1]) != _strict_row(part, b[1]):
                found.append(Difference(part, a[0], a[1], b[1]))
            a, b, count = next(mine, None), next(theirs, None), count + 1
    compared[part] = compared.get(part, 0) + count + len(malformed)
    return found + malformed


def _keyed(part: str, rows: Iterable[tuple], malformed: list[Difference]) -> Iterator[tuple[tuple, tuple]]:
    """(key, row) of each row, checking the order; a row whose key is not text goes to ``malformed``."""
    width, last = KEY_WIDTH[part], None
    for row in rows:
        key = tuple(row[:width])
        if not all(isinstance(k, str) for k in key):
            malformed.append(Difference(part, tuple(map(repr, key)), tuple(row), None))
            continue
        if last is not None and key < last:
            raise RuntimeError(
                f"{part} rows out of key order ({key!r} after {last!r}): a backend broke Store.projection"
            )
        last = key
        yield key, tuple(row)


def _strict_row(part: str, row: tuple) -> tuple:
    return tuple(_strict(v) for v in row) if JSON_COLUMNS[part] else tuple((type(v), v) for v in row)


def _strict(value: Any) -> Any:
    """A form of a value that equals another's only if they are the same JSON (1, 1.0 and true differ)."""
    if isinstance(value, Unreadable):
        return ("unreadable", value.text)
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, sort_keys=True, default=repr).encode()


def _plain(value: Any) -> Any:
    return {"unreadable": value.text} if isinstance(value, Unreadable) else value


def _shown(value: Any) -> str:
    text = json.dumps(_plain(value), sort_keys=True, ensure_ascii=False, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(part: str, key: tuple) -> str:
    if part == "nodes":
        return f"node {key[0]}"
    if part == "facets":
        return f"facet {key[1]!r} of {key[0]}"
    if part == "edges":
        return f"edge {key[0]} --{key[1]}--> {key[2]}"
    return f"column edge {key[0]} {key[1]!r} -> {key[2]} {key[3] or '(the whole dataset)'!r}"


# --- the scratch store ---------------------------------------------------------------


@contextlib.contextmanager
def _scratch() -> Iterator[Callable[[], Store]]:
    """A maker of fresh scratch stores (SQLite files in one temporary directory, deleted with it)."""
    made: list[Store] = []
    with tempfile.TemporaryDirectory(prefix="auditgraph-graphcheck-") as tmp:

        def new() -> Store:
            store = sqlite.build(f"sqlite:///{Path(tmp) / f'scratch-{len(made)}.db'}")
            made.append(store)
            store.db.execute("PRAGMA synchronous=OFF")  # thrown away after: no fsync needed
            return store

        try:
            yield new
        finally:
            for store in made:
                store.close()


def snapshot(store: Store) -> dict[str, dict[tuple, tuple]]:
    """The whole projected graph in memory, by part and key: for tests and small stores (two snapshots
    of one ledger's graph are equal on every backend)."""
    return {part: {tuple(r[: KEY_WIDTH[part]]): r for r in store.projection(part)} for part in PROJECTION}
