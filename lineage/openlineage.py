"""Validation of incoming OpenLineage events.

Lenient where real producers are, strict where meaning would be lost:

* rejected (``EventError`` naming the field): not a JSON object; no ``run``,
  ``job`` or ``dataset``; a RunEvent without ``run.runId``; a job or dataset
  without a non-empty ``namespace`` and ``name``; a missing or unparseable
  ``eventTime``, or one outside years 1-9999 once read in UTC; an
  ``eventType`` outside the spec's enum; inputs or outputs that are not a list
  of datasets; a job or dataset whose id would be longer than
  ``ids.MAX_ID_BYTES`` (it could not be named in a query), and so is an
  ``auditgraph_model`` version whose model version id would be; a facet
  container or a facet that is not a JSON object.
* accepted with a warning: no ``producer`` or ``schemaURL``; an ``eventTime``
  without a time zone (read as UTC) or not in RFC 3339 form (``20240131T120000Z``,
  no seconds: read by ISO 8601); a ``nominalTime`` start or end that is a date
  without a time (the spec's own serde example: read as midnight UTC), has no
  time zone, or is not RFC 3339; a parent facet's malformed ``root`` (the parent
  is used, the root is not); a run id that is not a UUID; a standard facet whose
  content breaks its spec (the facet is kept whole, but not used to build graph
  edges), including one that names an id a query could not name: a parent run
  id with white space, a parent run or job, dataset version or code revision
  whose id would be longer than ``ids.MAX_ID_BYTES``. Every warning names the
  field it is about.

The event itself is never modified: the ledger records it exactly as received.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lineage.canonical import is_plain
from lineage.clock import utc_text
from lineage.errors import EventError, IdTooLongError, TimeRangeError
from lineage.ids import check_length, code_id, dataset_id, job_id, model_id, run_id

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
MAX_DEPTH = 64  # facets nested deeper than this are refused (and could not be hashed safely)
TERMINAL = ("COMPLETE", "ABORT", "FAIL")
MAX_NAME_LENGTH = 4096


@dataclass(slots=True)
class ParsedEvent:
    """A validated event and what was read from it."""

    raw: dict[str, Any]
    kind: str  # "RunEvent" | "JobEvent" | "DatasetEvent"
    event_time: datetime
    event_type: str | None
    subject: str
    warnings: list[str] = field(default_factory=list)
    bad_facets: set[str] = field(default_factory=set)  # "outputs[0].outputStatistics"
    time_key: str = ""  # format_time(event_time), computed once
    plain: bool = False  # holds no floats or other non-plain values: canonical.plain_canonical_bytes applies

    def __post_init__(self) -> None:
        self.time_key = self.time_key or format_time(self.event_time)


def format_time(moment: datetime) -> str:
    """Fixed-width UTC text (years 0001-9999), so that string order is time order; naive means UTC."""
    if moment.tzinfo is not None:
        moment = _to_utc(moment, moment.isoformat())
    return utc_text(moment)


def parse_time(text: Any, where: str = "eventTime") -> tuple[datetime, bool]:
    """Parse an ISO 8601 date-time; return it in UTC and whether a zone was given.

    Raise ``EventError`` naming ``where`` if it is not one, and ``TimeRangeError``
    if applying its offset leaves the years datetime can hold (9999-12-31T23:59-23:59).
    """
    if not isinstance(text, str) or "T" not in text:
        raise EventError(f"{where}: expected an ISO 8601 date-time such as 2024-01-31T12:00:00Z, got {text!r:.100}")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise EventError(f"{where}: {text!r:.100} is not an ISO 8601 date-time ({e})") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC), False
    return _to_utc(moment, text, where), True


def _to_utc(moment: datetime, text: str, where: str = "time") -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise TimeRangeError(f"{where}: {text!r:.100} is outside years 1-9999 once read in UTC") from None


def parse_event(obj: Any) -> ParsedEvent:
    """Validate one event; raise ``EventError`` with the field path if it must be rejected."""
    if not isinstance(obj, dict):
        raise EventError(f"an event must be a JSON object, got {type(obj).__name__}")
    plain = _check_depth(obj)
    warnings: list[str] = []
    moment, zoned = parse_time(obj.get("eventTime"))
    if not zoned:
        warnings.append("eventTime has no time zone; read as UTC")
    elif not _RFC3339.fullmatch(obj["eventTime"]):
        warnings.append(
            f"eventTime: {obj['eventTime']!r:.100} is not an RFC 3339 date-time; read as {format_time(moment)}"
        )
    event_type = obj.get("eventType")
    if event_type is not None and event_type not in EVENT_TYPES:
        raise EventError(f"eventType: {event_type!r} is not one of {', '.join(EVENT_TYPES)}")
    for key in ("producer", "schemaURL"):
        if not isinstance(obj.get(key), str):
            warnings.append(f"{key} is missing")
    for side in ("inputs", "outputs"):
        _check_datasets(obj.get(side), side)
    if "run" in obj:
        kind, subject = "RunEvent", _check_run(obj, warnings)
    elif "dataset" in obj:
        kind, subject = "DatasetEvent", _check_dataset_event(obj)
    elif "job" in obj:
        kind, subject = "JobEvent", _check_job(obj.get("job"), "job")
    else:
        raise EventError("not an OpenLineage event: it has none of 'run', 'job', 'dataset'")
    event = ParsedEvent(obj, kind, moment, event_type, subject, warnings, plain=plain)
    _check_facets(event)
    _check_versions(event)
    return event


def _check_depth(obj: Any) -> bool:
    """Refuse values nested deeper than MAX_DEPTH (a hostile event may nest 100,000 deep); return
    whether the event is plain (``canonical.is_plain``), found by the same walk."""
    try:
        return is_plain(obj, MAX_DEPTH)
    except RecursionError:
        raise EventError(f"the event is nested deeper than {MAX_DEPTH} levels") from None


def _check_run(obj: dict, warnings: list[str]) -> str:
    run = obj["run"]
    if not isinstance(run, dict):
        raise EventError("run: expected an object")
    rid = run.get("runId")
    if not isinstance(rid, str) or not rid.strip():
        raise EventError("run.runId is missing: a run event without a run id cannot be merged or traced")
    if len(rid) > MAX_NAME_LENGTH or rid.split() != [rid]:  # split() != [rid]: it holds white space
        raise EventError(f"run.runId: {rid[:80]!r} has white space or is too long")
    _nameable(f"run:{rid}", "run.runId")
    try:
        uuid.UUID(rid)
    except ValueError:
        warnings.append(f"run.runId {rid!r} is not a UUID")
    _check_job(obj.get("job"), "job")
    return f"run:{rid}"


def _check_job(job: Any, where: str) -> str:
    namespace, name = _check_named(job, where)
    return _nameable(job_id(namespace, name), where)


def _check_dataset_event(obj: dict) -> str:
    namespace, name = _check_named(obj["dataset"], "dataset")
    return _nameable(dataset_id(namespace, name), "dataset")


def _check_datasets(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise EventError(f"{where}: expected a list of datasets")
    for i, item in enumerate(value):
        _nameable(dataset_id(*_check_named(item, f"{where}[{i}]")), f"{where}[{i}]")


def _nameable(node_id: str, where: str) -> str:
    """Refuse a job or dataset whose id a query could not name (longer than ids.MAX_ID_BYTES)."""
    try:
        check_length(node_id)
    except IdTooLongError as e:
        raise EventError(f"{where}: namespace and name together are too long ({e})") from None
    return node_id


def _check_named(value: Any, where: str) -> tuple[str, str]:
    if not isinstance(value, dict):
        raise EventError(f"{where}: expected an object with 'namespace' and 'name'")
    parts = []
    for key in ("namespace", "name"):
        text = value.get(key)
        if not isinstance(text, str) or not text:
            raise EventError(f"{where}.{key}: expected a non-empty string, got {text!r}")
        if len(text) > MAX_NAME_LENGTH:
            raise EventError(f"{where}.{key}: longer than {MAX_NAME_LENGTH} characters")
        parts.append(text)
    return parts[0], parts[1]


# --- facets -----------------------------------------------------------------


def _check_facets(event: ParsedEvent) -> None:
    raw = event.raw
    containers: list[tuple[str, Any]] = []
    for top in ("run", "job", "dataset"):
        if isinstance(raw.get(top), dict) and "facets" in raw[top]:
            containers.append((f"{top}.facets", raw[top]["facets"]))
    for side in ("inputs", "outputs"):
        for i, ds in enumerate(raw.get(side) or []):  # a list of objects: checked by _check_datasets
            for key in ("facets", "inputFacets", "outputFacets"):
                if key in ds:
                    containers.append((f"{side}[{i}].{key}", ds[key]))
    for where, facets in containers:
        if facets is None:
            continue
        if not isinstance(facets, dict):
            raise EventError(f"{where}: expected an object of facets")
        for name, facet in facets.items():
            if not isinstance(facet, dict):
                raise EventError(f"{where}.{name}: a facet must be an object")
            problem = FACET_CHECKS.get(name, _ok)(facet)
            if problem:
                event.bad_facets.add(f"{where}.{name}")
                event.warnings.append(f"{where}.{name}: {problem}; facet kept but not used")
            elif name in LENIENT_READS:
                LENIENT_READS[name](facet, f"{where}.{name}", event)


def _ok(_facet: dict) -> str | None:
    return None


def _parent(facet: dict) -> str | None:
    run, job = facet.get("run"), facet.get("job")
    if not isinstance(run, dict) or not isinstance(run.get("runId"), str) or not run["runId"]:
        return "run.runId is missing"
    if not isinstance(job, dict) or not all(isinstance(job.get(k), str) and job[k] for k in ("namespace", "name")):
        return "job.namespace and job.name are required"
    if run["runId"].split() != [run["runId"]]:  # as for the event's own run.runId
        return f"run.runId {run['runId'][:80]!r} has white space"
    return _unnameable(run_id(run["runId"]), "run.runId") or _unnameable(job_id(job["namespace"], job["name"]), "job")


def _unnameable(node_id: str, where: str) -> str | None:
    """Why a facet names an id that a query could not name (longer than ids.MAX_ID_BYTES), or None."""
    try:
        check_length(node_id)
    except IdTooLongError:
        return f"{where}: the id would be longer than {MAX_NAME_LENGTH} bytes"
    return None


def _check_versions(event: ParsedEvent) -> None:
    """Versions and revisions, whose ids join the dataset's or the code's name: one that could not
    be named in a query flags its facet (a standard one: not used) or rejects the event
    (``auditgraph_model``, whose version the projection reads whatever the flags say)."""
    raw = event.raw
    named = [(f"{side}[{i}]", ds) for side in ("inputs", "outputs") for i, ds in enumerate(raw.get(side) or [])]
    named += [("dataset", raw["dataset"])] if isinstance(raw.get("dataset"), dict) else []
    for where, ds in named:
        facets = ds.get("facets") if isinstance(ds.get("facets"), dict) else {}
        version = facets.get("version")
        if f"{where}.facets.version" not in event.bad_facets and isinstance(version, dict):
            _flag(
                event,
                f"{where}.facets.version",
                _unnameable(dataset_id(ds["namespace"], ds["name"], version["datasetVersion"]), "datasetVersion"),
            )
        model = facets.get("auditgraph_model")
        if isinstance(model, dict) and isinstance(model.get("version"), str) and model["version"]:
            problem = _unnameable(model_id(ds["namespace"], ds["name"], model["version"]), "version")
            if problem:
                raise EventError(f"{where}.facets.auditgraph_model.{problem}")
    job = raw.get("job")
    job_facets = job.get("facets") if isinstance(job, dict) else None
    loc = job_facets.get("sourceCodeLocation") if isinstance(job_facets, dict) else None
    if "job.facets.sourceCodeLocation" not in event.bad_facets and isinstance(loc, dict):
        revision = loc.get("version") or loc.get("tag")
        url = loc["repoUrl"] if isinstance(loc.get("repoUrl"), str) and loc["repoUrl"] else loc["url"]
        if isinstance(revision, str) and revision:
            _flag(event, "job.facets.sourceCodeLocation", _unnameable(code_id(url, revision), "version"))


def _flag(event: ParsedEvent, where: str, problem: str | None) -> None:
    if problem:
        event.bad_facets.add(where)
        event.warnings.append(f"{where}: {problem}; facet kept but not used")


def _parent_root(facet: dict, where: str, event: ParsedEvent) -> None:
    """OpenLineage 1.x ``root``: optional; a malformed one is dropped with a warning, the parent still used."""
    root = facet.get("root")
    if root is None:
        return
    problem = _parent(root) if isinstance(root, dict) else "expected an object"
    if problem:
        event.bad_facets.add(f"{where}.root")
        event.warnings.append(f"{where}.root: {problem}; the root is not used")


def _nominal_time(facet: dict) -> str | None:
    for key in ("nominalStartTime", "nominalEndTime"):
        if key == "nominalStartTime" or facet.get(key) is not None:
            try:
                _lenient_time(facet.get(key), key)
            except EventError as e:
                return str(e)
    return None


def _nominal_time_warnings(facet: dict, where: str, event: ParsedEvent) -> None:
    for key in ("nominalStartTime", "nominalEndTime"):
        if facet.get(key) is not None:
            event.warnings += _lenient_time(facet[key], f"{where}.{key}")[1]


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?")


def _lenient_time(text: Any, where: str) -> tuple[datetime, list[str]]:
    """A date-time read as producers send it, with a warning naming ``where`` for each liberty taken."""
    if isinstance(text, str) and _DATE.fullmatch(text):
        try:
            moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
        except ValueError as e:
            raise EventError(f"{where}: {text!r} is not a date ({e})") from None
        return moment, [f"{where}: {text!r} is a date without a time; read as {format_time(moment)}"]
    moment, zoned = parse_time(text, where)
    if not zoned:
        return moment, [f"{where}: {text!r:.100} has no time zone; read as UTC"]
    if not _RFC3339.fullmatch(text):
        return moment, [f"{where}: {text!r:.100} is not an RFC 3339 date-time; read as {format_time(moment)}"]
    return moment, []


def _ownership(facet: dict) -> str | None:
    owners = facet.get("owners")
    if not isinstance(owners, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in owners):
        return "every owner needs a name"
    return None


def _output_statistics(facet: dict) -> str | None:
    for key in ("rowCount", "size", "fileCount"):
        if key in facet and (not isinstance(facet[key], int) or isinstance(facet[key], bool)):
            return f"{key} must be an integer, got {facet[key]!r}"
    return None


def _data_quality(facet: dict) -> str | None:
    if not isinstance(facet.get("columnMetrics"), dict):
        return "columnMetrics is required"
    return None


def _column_lineage(facet: dict) -> str | None:
    """ColumnLineageDatasetFacet 1-2-0: ``fields`` (per output field) and ``dataset`` (the whole output)."""
    fields = facet.get("fields")
    if not isinstance(fields, dict):
        return "fields must be an object"
    for out, spec in fields.items():
        inputs = spec.get("inputFields") if isinstance(spec, dict) else None
        if not out or len(out) > MAX_NAME_LENGTH:
            return f"fields: an output field name is empty or longer than {MAX_NAME_LENGTH} characters"
        if not isinstance(inputs, list):
            return f"fields.{out}.inputFields must be a list"
        for legacy in ("transformationType", "transformationDescription"):
            if spec.get(legacy) is not None and not isinstance(spec[legacy], str):
                return f"fields.{out}.{legacy} must be a string"
        problem = _input_fields(inputs, f"fields.{out}.inputFields")
        if problem:
            return problem
    dataset = facet.get("dataset")
    if dataset is not None and not isinstance(dataset, list):
        return "dataset must be a list"
    return _input_fields(dataset or [], "dataset")


def _input_fields(items: list, where: str) -> str | None:
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and 0 < len(item[k]) <= MAX_NAME_LENGTH for k in ("namespace", "name", "field")
        ):
            return f"{where}[{i}] needs namespace, name and field, non-empty strings of at most {MAX_NAME_LENGTH} characters"
        try:
            check_length(dataset_id(item["namespace"], item["name"]))
        except IdTooLongError:
            return f"{where}[{i}]: namespace and name together are too long"
        stated = item.get("transformations")
        if stated is not None and not (isinstance(stated, list) and all(map(_transformation, stated))):
            return (
                f"{where}[{i}].transformations must be a list of objects with a string type "
                "(subtype and description strings, masking a boolean)"
            )
    return None


def _transformation(t: Any) -> bool:
    return (
        isinstance(t, dict)
        and isinstance(t.get("type"), str)
        and bool(t["type"])
        and all(t.get(k) is None or isinstance(t[k], str) for k in ("subtype", "description"))
        and (t.get("masking") is None or isinstance(t["masking"], bool))
    )


def _symlinks(facet: dict) -> str | None:
    identifiers = facet.get("identifiers")
    if not isinstance(identifiers, list):
        return "identifiers must be a list"
    for i, ident in enumerate(identifiers):
        if not isinstance(ident, dict) or not all(
            isinstance(ident.get(k), str) and 0 < len(ident[k]) <= MAX_NAME_LENGTH for k in ("namespace", "name")
        ):
            return (
                f"identifiers[{i}] needs namespace and name, non-empty strings of at most {MAX_NAME_LENGTH} characters"
            )
        try:
            check_length(dataset_id(ident["namespace"], ident["name"]))
        except IdTooLongError:
            return f"identifiers[{i}]: namespace and name together are too long"
    return None


def _job_type(facet: dict) -> str | None:
    for key in ("jobType", "integration", "processingType"):
        if facet.get(key) is not None and not isinstance(facet[key], str):
            return f"{key} must be a string"
    return None


def _string_field(key: str):
    def check(facet: dict) -> str | None:
        return None if isinstance(facet.get(key), str) and facet[key] else f"{key} must be a non-empty string"

    return check


FACET_CHECKS = {
    "parent": _parent,
    "nominalTime": _nominal_time,
    "symlinks": _symlinks,
    "jobType": _job_type,
    "ownership": _ownership,
    "outputStatistics": _output_statistics,
    "dataQualityMetrics": _data_quality,
    "columnLineage": _column_lineage,
    "version": _string_field("datasetVersion"),
    "datasetType": _string_field("datasetType"),
    "sourceCodeLocation": _string_field("url"),
}

# Facets read leniently: each liberty taken is a warning naming the field (the facet is used).
LENIENT_READS = {
    "parent": _parent_root,
    "nominalTime": _nominal_time_warnings,
}
