"""From ledger entries to graph facts.

The graph is a projection of the ledger: for each entry kind a projector turns
the entry's payload into ``Facts`` (nodes, facets, edges, column edges), and a
backend applies them in the same transaction that records the entry. Replaying
the ledger in sequence order on an empty graph gives the same graph
(``Store.rebuild``).

Merge rules, the same on every backend, so that the events of one run merge
in any arrival order:

* a node's ``first_seen`` is the earliest event time that named it and
  ``last_seen`` the latest;
* a facet is kept per (node, facet name); the one with the greatest ``order``
  wins (event time first, then a tie-break that is the same on every replay);
* an edge is kept once; its ``time`` is the earliest event time that stated it,
  which is when it became true (``--as-of`` filters on it);
* an output of a run is a model if any event of the run marks it as one (or the
  model already exists): the batch moves what earlier events of the run wrote
  as a dataset version over to the model (``Batch.settle``), so a run's outputs
  are the same whatever order its events arrive in;
* a read of no named version is not bound here: the event records that the run
  read the dataset at its time (the run's ``_read:<dataset>`` facet, earliest
  time wins), and ``store/binding.py`` binds it, and every append, to a version
  by event time and run outcome once the batch is merged (and again when a late
  write or a FAIL moves it), so bindings never depend on arrival order.

Keys are injective: a facet is keyed by (node, name) and an OpenLineage facet
name that could be mistaken for one of ours (``_state``, ``input:...``,
``output:...``, ``auditgraph.approval``) is stored with a leading ``~``
(``facet_name``), so no event can overwrite another family's facet.

Edges point the way data flows::

    DatasetVersion --READ_BY--> Run --WROTE--> DatasetVersion | ModelVersion
    CodeVersion --BUILT--> Run      Run --RUN_OF--> Job      Run --CHILD_OF--> Run
    Run --DESCENDANT_OF--> Run (the parent facet's root, when it is not the parent itself)
    Dataset --ALIAS_OF--> Dataset (a ``symlinks`` identifier --> the dataset that declares it)
    DatasetVersion --VERSION_OF--> Dataset       ModelVersion --VERSION_OF--> Model

Identities (symlinks): a dataset that declares the ``symlinks`` facet is the
canonical identity, and each identifier it lists is an alias of it (an
``ALIAS_OF`` edge). An event that names an alias is projected onto the
canonical dataset (its versions, reads and writes), and the alias node keeps
what the event said of it. If several datasets declare the same identifier,
they are one dataset: the smallest id (string order) is canonical and the other declarers become its
aliases (``Batch._unite``); chains are followed. When a
declaration arrives after events that named the alias, the batch projects
those events again (``Batch.alias``), so the graph is the same in any arrival
order and after a rebuild.

Job types: the ``jobType`` job facet is copied to the job's ``_jobType`` facet
(jobType, integration, processingType), and a job whose run reads an input
with ``dataQualityAssertions`` gets a ``_check`` facet, so queries can tell
tests and quality checks apart (``Graph.impact``).

Projectors for other packages' entry kinds are registered by plugins
(``lineage.plugins``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, overload

from lineage import column_lineage as columns
from lineage.canonical import digest, plain_digest
from lineage.ids import NodeKind, code_id, dataset_id, job_id, model_id, parse_id, run_id
from lineage.openlineage import TERMINAL, ParsedEvent, parse_event

UNVERSIONED = "unversioned"
OPENLINEAGE_KIND = "openlineage.event"
FLOW_EDGES = ("READ_BY", "WROTE", "BUILT", "CONTINUED_BY")
# A run's facet "_read:<dataset>" holds its earliest read of the dataset without a version, and
# "_read:<dataset>@<version>" each version it read by name; store/binding.py binds reads from these.
READ_FACET = "_read:"
# Facet names auditgraph itself writes begin with these; an event's facet that does is escaped with "~".
RESERVED_FACET_PREFIXES = ("~", "_", "input:", "output:", "auditgraph.")
# A run's merged "_state" facet is {"eventType", "eventTime"} of its latest event; these outcomes failed.
FAILED = ("FAIL", "ABORT")
# A written version's OpenLineage lifecycleStateChange facet with one of these replaced the dataset.
LIFECYCLE = "lifecycleStateChange"
REPLACING = frozenset({"OVERWRITE", "CREATE", "TRUNCATE", "DROP"})


def is_failed(state: dict | None) -> bool:
    """Whether a run's ``_state`` facet says it ended FAIL or ABORT (what it wrote was only attempted)."""
    return isinstance(state, dict) and state.get("eventType") in FAILED


def replaces(lifecycle: dict | None) -> bool:
    """Whether a version's ``lifecycleStateChange`` facet says its write replaced the dataset (no append)."""
    return str((lifecycle or {}).get(LIFECYCLE, "")).upper() in REPLACING


def facet_name(name: str) -> str:
    """The stored name of an event's facet: itself, or "~" + itself if it could pass for one of ours."""
    return "~" + name if name.startswith(RESERVED_FACET_PREFIXES) else name


@dataclass
class NodeFact:
    id: str
    kind: NodeKind
    namespace: str
    name: str
    version: str | None
    entity: str | None
    time: str
    last: str = ""

    def __post_init__(self) -> None:
        self.last = self.last or self.time


@dataclass(slots=True)
class FacetFact:
    node: str
    name: str
    value: Any
    order: str


@dataclass(slots=True)
class EdgeFact:
    src: str
    type: str
    dst: str
    time: str


@dataclass(slots=True)
class ColumnFact:
    src: str
    src_field: str
    dst: str
    dst_field: str
    run: str
    time: str
    transformations: list


@dataclass(slots=True)
class Facts:
    nodes: dict[str, NodeFact] = field(default_factory=dict)
    facets: list[FacetFact] = field(default_factory=list)
    edges: list[EdgeFact] = field(default_factory=list)
    columns: list[ColumnFact] = field(default_factory=list)
    # (run, dataset entity, model entity) of each output a run event wrote as a model
    models: list[tuple[str, str, str]] = field(default_factory=list)
    # (alias, canonical) dataset entities of each symlinks identifier an event declared
    aliases: list[tuple[str, str]] = field(default_factory=list)
    # (run, entity) of each input an event named: store/binding.py binds it to a version by event time
    reads: list[tuple[str, str]] = field(default_factory=list)

    def node(self, fact: NodeFact) -> str:
        self.nodes.setdefault(fact.id, fact)
        return fact.id

    def edge(self, src: str, type_: str, dst: str, time: str) -> None:
        self.edges.append(EdgeFact(src, type_, dst, time))


class ProjectionContext(Protocol):
    """What a projector may ask of the graph as it stands inside the write transaction."""

    def latest_version(self, entity: str, as_of: str) -> str | None: ...

    def exists(self, node_id: str) -> bool: ...

    def canonical(self, entity: str) -> str | None:
        """The canonical dataset of an alias (symlinks), or None if ``entity`` is no alias."""


Projector = Callable[..., Facts]  # (payload, ctx, hint=None) -> Facts; registered with register_projectors


def projector_for(kind: str) -> Projector | None:
    """The projector plugins register for ledger entries of ``kind`` (``lineage.hookspecs``), if any."""
    from lineage.plugins import registry

    return registry().projectors.get(kind)


Lookups = Callable[[Any], tuple[set[str], set[str]]]  # payload -> (entities, node ids)


def prefetching(find: Lookups) -> Callable[[Projector], Projector]:
    """Declare what a projector asks the store about: ``find(payload)`` gives the dataset and model
    entities whose versions it reads and the node ids whose existence it tests. Read defensively:
    a payload the projector will refuse must not make ``find`` fail."""

    def mark(fn: Projector) -> Projector:
        fn.lookups = find  # type: ignore[attr-defined]
        return fn

    return mark


def lookups(entries: Iterable[tuple[str, Any]]) -> tuple[set[str], set[str]]:
    """What projecting these (kind, payload) entries will ask the store about, by each kind's
    projector (``prefetching``). Every write path (append, rebuild, migrate) prefetches it for a
    whole batch in two bulk queries (``Batch.prefetch``) before projecting the batch."""
    entities: set[str] = set()
    ids: set[str] = set()
    for kind, payload in entries:
        find = getattr(projector_for(kind), "lookups", None)
        if find is not None:
            more_entities, more_ids = find(payload)
            entities |= more_entities
            ids |= more_ids
    return entities, ids


# --- OpenLineage ------------------------------------------------------------


def openlineage_lookups(raw: Any) -> tuple[set[str], set[str]]:
    """The dataset and model entities an OpenLineage event names (its inputs and outputs, or a
    DatasetEvent's dataset), each as both, since whether it is a model is asked of the store."""
    entities: set[str] = set()
    ids: set[str] = set()
    if not isinstance(raw, dict):
        return entities, ids
    named = [*_list(raw.get("inputs")), *_list(raw.get("outputs"))]
    if "run" not in raw and isinstance(raw.get("dataset"), dict):
        named.append(raw["dataset"])
    for ds in named:
        if isinstance(ds, dict) and isinstance(ds.get("namespace"), str) and isinstance(ds.get("name"), str):
            d, m = dataset_id(ds["namespace"], ds["name"]), model_id(ds["namespace"], ds["name"])
            entities.update((d, m))
            ids.add(m)
    return entities, ids


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


Key = tuple[str, ...]  # what openlineage_keys names a node by: ("dataset", ns, name), ("run", id), ...


def openlineage_keys(raw: Any) -> tuple[set[Key], set[tuple[Key, Key]]]:
    """Every node an OpenLineage event can add a fact about, as a key (``node_key``), and the symlinks
    it declares, as (identifier, declaring dataset) keys: a superset, read defensively.

    A fact about a node comes only from events that name it (its run, its job, a parent or root run
    and job, a dataset in any role, a column lineage source, a symlinks identifier, the code location),
    or that name an alias of it: what ``lineage.graphcheck`` replays to verify part of the graph. Keys
    are the names as sent, not formatted ids: this runs on every recorded event.
    """
    keys: set[Key] = set()
    aliases: set[tuple[Key, Key]] = set()
    if not isinstance(raw, dict):
        return keys, aliases
    run, job = _object(raw.get("run")), _object(raw.get("job"))
    parent = _object(_object(run.get("facets")).get("parent"))
    for named in (run, _object(parent.get("run")), _object(_object(parent.get("root")).get("run"))):
        _add(keys, "run", named.get("runId"))
    for named in (job, _object(parent.get("job")), _object(_object(parent.get("root")).get("job"))):
        _add(keys, "job", named.get("namespace"), named.get("name"))
    loc = _object(_object(job.get("facets")).get("sourceCodeLocation"))
    for url in (loc.get("repoUrl"), loc.get("url")):
        for revision in (loc.get("version"), loc.get("tag")):
            _add(keys, "code", url, revision)
    for ds in map(_object, [*_list(raw.get("inputs")), *_list(raw.get("outputs")), _object(raw.get("dataset"))]):
        declarer = _add(keys, "dataset", ds.get("namespace"), ds.get("name"))
        facets = _object(ds.get("facets"))
        for ident in map(_object, _list(_object(facets.get("symlinks")).get("identifiers"))):
            alias = _add(keys, "dataset", ident.get("namespace"), ident.get("name"))
            if alias and declarer:
                aliases.add((alias, declarer))
        lineage = _object(facets.get("columnLineage"))
        sources = _list(lineage.get("dataset"))
        for spec in map(_object, _object(lineage.get("fields")).values()):
            sources = sources + _list(spec.get("inputFields"))
        for item in map(_object, sources):
            _add(keys, "dataset", item.get("namespace"), item.get("name"))
    return keys, aliases


def may_name(text: str, names: set[str]) -> bool:
    """Whether a recorded event (its canonical JSON text) can name a node whose key (``openlineage_keys``)
    holds one of ``names``, read without parsing it: some string in it is one of them. An event that
    declares symlinks may, whatever it names (its aliases matter). False is certain; True is a maybe."""
    if '"symlinks"' in text:
        return True
    if "\\" not in text:  # no escapes: the strings are every other piece between quotes
        return not names.isdisjoint(text.split('"')[1::2])
    return not names.isdisjoint(json.loads(f'"{s}"') for s in _JSON_STRING.findall(text))


_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _add(keys: set[Key], kind: str, *parts: Any) -> Key | None:
    """Add the key of a node named by these parts, if they are names (text); return it."""
    for p in parts:
        if type(p) is not str:  # exactly str: a JSON parser makes no subclass
            return None
    key = (kind, *parts)
    keys.add(key)
    return key


def node_key(node_id: str) -> Key:
    """The key ``openlineage_keys`` gives a node: a dataset's or model's, any version, is its name (a name
    is a dataset or a model by what events say of it); a run's its id, a job's its name, code's its
    location and revision. An id no event could have made keys nothing."""
    try:
        parsed = parse_id(node_id)
    except ValueError:
        return ("unparsable", node_id)
    if parsed.prefix in ("dataset", "model"):
        return ("dataset", parsed.namespace, parsed.name)
    if parsed.prefix == "run":
        return ("run", parsed.name)
    if parsed.prefix == "code":
        return ("code", parsed.namespace, parsed.version or "")
    return ("job", parsed.namespace, parsed.name)


def _object(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


@prefetching(openlineage_lookups)
def project_openlineage(payload: dict, ctx: ProjectionContext, hint: dict | None = None) -> Facts:
    """``hint`` may carry the already parsed event and the payload digest, to spare doing it twice."""
    parsed = hint.get("parsed") if hint else None
    event = parsed if parsed is not None and parsed.raw is payload else parse_event(payload)
    return EventProjection(event, ctx, (hint or {}).get("digest")).facts()


class EventProjection:
    """Builds the facts of one validated event."""

    def __init__(self, event: ParsedEvent, ctx: ProjectionContext, payload_digest: str | None = None):
        self.event, self.ctx, self.out = event, ctx, Facts()
        self.time = event.time_key
        self.order = f"{self.time}|{payload_digest or digest(event.raw)}"

    def facts(self) -> Facts:
        raw = self.event.raw
        if self.event.kind == "RunEvent":
            self._run(raw)
        elif self.event.kind == "JobEvent":
            self._job(raw["job"])
            for side in ("inputs", "outputs"):
                for i, ds in enumerate(raw.get(side) or []):
                    self._dataset_entity(ds, f"{side}[{i}]")
        else:
            self._dataset_event(raw["dataset"])
        return self.out

    def _facets(self, node: str, facets: Any, prefix: str = "") -> None:
        for name, value in (facets or {}).items():
            self.out.facets.append(FacetFact(node, prefix + name if prefix else facet_name(name), value, self.order))

    def _usable(self, where: str, facets: Any, name: str) -> dict | None:
        if not isinstance(facets, dict) or f"{where}.{name}" in self.event.bad_facets:
            return None
        return facets.get(name)

    def _job(self, job: dict) -> str:
        jid = self.out.node(_named(job_id(job["namespace"], job["name"]), NodeKind.JOB, job, self.time))
        self._facets(jid, job.get("facets"))
        self._job_type(jid, job.get("facets"))
        return jid

    def _job_type(self, jid: str, facets: Any) -> None:
        """The jobType facet, read into ``_jobType`` (upper-cased strings) for queries to filter on."""
        stated = self._usable("job.facets", facets, "jobType")
        if stated:
            kept = {
                k: stated[k].upper()
                for k in ("jobType", "integration", "processingType")
                if isinstance(stated.get(k), str) and stated[k]
            }
            self.out.facets.append(FacetFact(jid, "_jobType", kept, self.order))

    def _quality_check(self, jid: str, raw: dict) -> None:
        """A run that asserts on its inputs (dataQualityAssertions) marks its job as a check; never unmarked."""
        for i, ds in enumerate(raw.get("inputs") or []):
            if self._usable(f"inputs[{i}].inputFacets", ds.get("inputFacets"), "dataQualityAssertions"):
                self.out.facets.append(FacetFact(jid, "_check", {"dataQualityAssertions": True}, self.order))
                return

    def _run(self, raw: dict) -> None:
        run = raw["run"]
        rid = self.out.node(NodeFact(run_id(run["runId"]), NodeKind.RUN, "", run["runId"], None, None, self.time))
        jid = self._job(raw["job"])
        self.out.edge(rid, "RUN_OF", jid, self.time)
        self._facets(rid, run.get("facets"))
        rank = "1" if self.event.event_type in TERMINAL else "0"
        state = {"eventType": self.event.event_type, "eventTime": raw["eventTime"]}
        self.out.facets.append(FacetFact(rid, "_state", state, f"{self.time}|{rank}|{plain_digest(state)}"))
        self._parent(rid, run.get("facets"))
        self._quality_check(jid, raw)
        self._code(rid, raw["job"].get("facets"))
        for i, ds in enumerate(raw.get("inputs") or []):
            vid = self._version(ds, f"inputs[{i}]", rid, reading=True)
            if vid is not None:  # a read of a named version; the others are bound by store/binding.py
                self.out.edge(vid, "READ_BY", rid, self.time)
        for i, ds in enumerate(raw.get("outputs") or []):
            vid = self._version(ds, f"outputs[{i}]", rid, reading=False)
            self.out.edge(rid, "WROTE", vid, self.time)
            if vid.startswith("model:"):
                self.out.models.append(
                    (rid, dataset_id(ds["namespace"], ds["name"]), model_id(ds["namespace"], ds["name"]))
                )
            self._columns(ds, f"outputs[{i}]", rid, model=vid.startswith("model:"))

    def _parent(self, rid: str, facets: Any) -> None:
        parent = self._usable("run.facets", facets, "parent")
        if not parent:
            return
        pid = self.out.node(
            NodeFact(run_id(parent["run"]["runId"]), NodeKind.RUN, "", parent["run"]["runId"], None, None, self.time)
        )
        pjob = self.out.node(
            _named(job_id(parent["job"]["namespace"], parent["job"]["name"]), NodeKind.JOB, parent["job"], self.time)
        )
        self.out.edge(rid, "CHILD_OF", pid, self.time)
        self.out.edge(pid, "RUN_OF", pjob, self.time)
        root = parent.get("root") if "run.facets.parent.root" not in self.event.bad_facets else None
        if isinstance(root, dict) and root["run"]["runId"] != parent["run"]["runId"]:
            # OpenLineage 1.x: the top of the hierarchy (a DAG run), known even when the parent sends nothing
            top = self.out.node(
                NodeFact(run_id(root["run"]["runId"]), NodeKind.RUN, "", root["run"]["runId"], None, None, self.time)
            )
            self.out.edge(rid, "DESCENDANT_OF", top, self.time)
            self.out.edge(
                top,
                "RUN_OF",
                self.out.node(
                    _named(job_id(root["job"]["namespace"], root["job"]["name"]), NodeKind.JOB, root["job"], self.time)
                ),
                self.time,
            )

    def _code(self, rid: str, facets: Any) -> None:
        loc = self._usable("job.facets", facets, "sourceCodeLocation")
        if not loc:
            return
        revision = loc.get("version") or loc.get("tag")
        if not isinstance(revision, str) or not revision:
            return
        url = loc["repoUrl"] if isinstance(loc.get("repoUrl"), str) and loc["repoUrl"] else loc["url"]
        cid = code_id(url, revision)
        self.out.node(NodeFact(cid, NodeKind.CODE, url, url, revision, None, self.time))
        self.out.edge(cid, "BUILT", rid, self.time)

    def _is_model(self, ds: dict, where: str) -> bool:
        facets = ds.get("facets")
        marked = self._usable(f"{where}.facets", facets, "datasetType")
        if marked and str(marked.get("datasetType", "")).upper() == "MODEL":
            return True
        if isinstance(facets, dict) and isinstance(facets.get("auditgraph_model"), dict):
            return True
        return self.ctx.exists(model_id(ds["namespace"], ds["name"]))

    def _dataset_entity(self, ds: dict, where: str) -> tuple[str, bool]:
        named = self._renamed(ds)
        if named is not ds:  # ds names an alias: the alias is seen too, and keeps what the event says of it
            alias = self.out.node(_named(dataset_id(ds["namespace"], ds["name"]), NodeKind.DATASET, ds, self.time))
            self._facets(alias, ds.get("facets"))
        is_model = self._is_model(named, where)
        make, kind = (model_id, NodeKind.MODEL) if is_model else (dataset_id, NodeKind.DATASET)
        eid = self.out.node(_named(make(named["namespace"], named["name"]), kind, named, self.time))
        self._facets(eid, ds.get("facets"))
        if not is_model:
            self._symlinks(eid, ds, where)
        return eid, is_model

    def _renamed(self, ds: dict) -> dict:
        """``ds`` itself, or a copy named as its canonical dataset if it names an alias."""
        canonical = self.ctx.canonical(dataset_id(ds["namespace"], ds["name"]))
        if canonical is None:
            return ds
        parsed = parse_id(canonical)
        return {**ds, "namespace": parsed.namespace, "name": parsed.name}

    def _symlinks(self, eid: str, ds: dict, where: str) -> None:
        declared = self._usable(f"{where}.facets", ds.get("facets"), "symlinks")
        for ident in (declared or {}).get("identifiers", ()):
            aid = dataset_id(ident["namespace"], ident["name"])
            if aid != eid:
                self.out.node(_named(aid, NodeKind.DATASET, ident, self.time))
                self.out.edge(aid, "ALIAS_OF", eid, self.time)
                self.out.aliases.append((aid, eid))

    @overload
    def _version(self, ds: dict, where: str, rid: str, reading: Literal[True]) -> str | None: ...
    @overload
    def _version(self, ds: dict, where: str, rid: str, reading: Literal[False]) -> str: ...
    def _version(self, ds: dict, where: str, rid: str, reading: bool) -> str | None:
        """The version node read or written; a written dataset without a version gets the run's.
        A read without one names no version here (None): it is bound by event time later."""
        eid, is_model = self._dataset_entity(ds, where)
        ds = self._renamed(ds)
        declared = self._usable(f"{where}.facets", ds.get("facets"), "version")
        model_facet = (ds.get("facets") or {}).get("auditgraph_model") if is_model else None
        if declared:
            version = declared["datasetVersion"]
        elif isinstance(model_facet, dict) and isinstance(model_facet.get("version"), str) and model_facet["version"]:
            version = model_facet["version"]
        elif reading:
            self._floating_read(eid, ds, rid)
            return None
        else:
            version = rid.removeprefix("run:")
        make, kind = (model_id, NodeKind.MODEL_VERSION) if is_model else (dataset_id, NodeKind.DATASET_VERSION)
        vid = self.out.node(
            NodeFact(
                make(ds["namespace"], ds["name"], version), kind, ds["namespace"], ds["name"], version, eid, self.time
            )
        )
        self.out.edge(vid, "VERSION_OF", eid, self.time)
        self._facets(vid, ds.get("facets"))
        self._facets(vid, ds.get("inputFacets"), "input:")
        self._facets(vid, ds.get("outputFacets"), "output:")
        if reading:
            self._read(rid, eid, READ_FACET + vid)
        return vid

    def _floating_read(self, eid: str, ds: dict, rid: str) -> None:
        """A read of no named version. Which version it read depends on every write of the dataset
        by event time, known only once they have all arrived, so the event says only that ``rid``
        read ``eid`` at this time (and how: its input facets, kept on the run); ``store.binding``
        draws the READ_BY edge, and draws it again when a write lands before it."""
        self._read(rid, eid, READ_FACET + eid)
        for name, value in (ds.get("inputFacets") or {}).items():
            self.out.facets.append(FacetFact(rid, "input:" + plain_json([eid, name]), value, self.order))

    def _read(self, rid: str, eid: str, name: str) -> None:
        """Record the read in a facet that keeps the earliest time it was stated (any arrival order)."""
        self.out.reads.append((rid, eid))
        self.out.facets.append(FacetFact(rid, name, {"time": self.time}, earliest_first(self.time)))

    def _columns(self, ds: dict, where: str, rid: str, model: bool = False) -> None:
        lineage = self._usable(f"{where}.facets", ds.get("facets"), "columnLineage")
        if not lineage:
            return
        named = self._renamed(ds)  # an output named by an alias: its columns are the canonical dataset's
        dst = (model_id if model else dataset_id)(named["namespace"], named["name"])
        for out_field, spec in lineage["fields"].items():
            default = columns.legacy(spec.get("transformationType"), spec.get("transformationDescription"))
            for item in spec["inputFields"]:
                self._column(item, dst, out_field, rid, default or columns.default_for(whole_dataset=False))
        for item in lineage.get("dataset") or ():  # dependencies of the whole output: joins, filters, sorts
            self._column(item, dst, columns.WHOLE_DATASET, rid, columns.default_for(whole_dataset=True))

    def _column(self, item: dict, dst: str, dst_field: str, rid: str, default: dict) -> None:
        """One column edge; its source dataset becomes a node even if the event names it nowhere else."""
        named = self._renamed(item)  # a source named by an alias is the canonical dataset's column
        if self.ctx.exists(model_id(named["namespace"], named["name"])):
            src = model_id(named["namespace"], named["name"])  # a model's output feeding a column
        else:
            src = self.out.node(
                _named(dataset_id(named["namespace"], named["name"]), NodeKind.DATASET, named, self.time)
            )
        self.out.columns.append(
            ColumnFact(
                src,
                item["field"],
                dst,
                dst_field,
                rid,
                self.time,
                columns.transformations(item.get("transformations"), default),
            )
        )

    def _dataset_event(self, ds: dict) -> None:
        eid, is_model = self._dataset_entity(ds, "dataset")
        ds = self._renamed(ds)
        declared = self._usable("dataset.facets", ds.get("facets"), "version")
        if declared:
            make, kind = (model_id, NodeKind.MODEL_VERSION) if is_model else (dataset_id, NodeKind.DATASET_VERSION)
            version = declared["datasetVersion"]
            vid = self.out.node(
                NodeFact(
                    make(ds["namespace"], ds["name"], version),
                    kind,
                    ds["namespace"],
                    ds["name"],
                    version,
                    eid,
                    self.time,
                )
            )
            self.out.edge(vid, "VERSION_OF", eid, self.time)
            self._facets(vid, ds.get("facets"))


_REVERSED = str.maketrans("0123456789", "9876543210")


def earliest_first(time: str) -> str:
    """A facet order under which the earliest of these fixed-width times is the greatest."""
    return time.translate(_REVERSED) + "|" + time


def plain_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _named(node_id: str, kind: NodeKind, obj: dict, time: str) -> NodeFact:
    return NodeFact(node_id, kind, obj["namespace"], obj["name"], None, None, time)
