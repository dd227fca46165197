"""OpenLineage ingestion routes: ``POST /api/v1/lineage`` and ``POST /api/v1/lineage/batch``.

* ``POST /api/v1/lineage``: one OpenLineage event, exactly as the openlineage-python HTTP
  transport sends it (JSON, optional ``Content-Encoding: gzip``, ``Authorization: Bearer <key>``);
  201 when recorded (or already recorded: the body says ``duplicate``).
* ``POST /api/v1/lineage/batch``: a JSON array (or JSON Lines) of events, recorded all together or
  not at all; 201, or 4xx naming the index and field.

Both need the ``ingest`` scope. Events are prepared exactly as ``auditgraph ingest`` prepares them
(``lineage.ingest.prepare``). Registered by ``lineage.builtins`` through ``register_routes``.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from lineage.errors import BodyError, EventError, TooLargeError
from lineage.ingest import Document, prepare, read_documents
from lineage.server.auth import Principal
from lineage.server.deps import CurrentStore, require
from lineage.server.limits import NOT_JSON
from lineage.store import Store

MAX_BATCH = 10_000
router = APIRouter(tags=["ingest"])
EVENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "An OpenLineage RunEvent, JobEvent or DatasetEvent",
                    "externalDocs": {"url": "https://openlineage.io/spec/2-0-2/OpenLineage.json"},
                }
            }
        },
    }
}
BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {"type": "object"},
                    "maxItems": MAX_BATCH,
                    "description": "OpenLineage events (JSON Lines is accepted too)",
                }
            }
        },
    }
}


@router.post("/lineage", status_code=201, openapi_extra=EVENT_BODY)
async def post_event(request: Request, store: CurrentStore, who: Principal = require("ingest")) -> dict:
    """Record one OpenLineage event."""
    body = await request.body()  # inflated and held to the limits by BodyGuard
    try:
        event = orjson.loads(body)  # fast; record_events asks for the exact reading if the event has floats
    except orjson.JSONDecodeError:
        event = _exact_json(body)
    # the store is used on the worker thread, where it opens that thread's own connection
    return await run_in_threadpool(
        lambda: record_events(store, [event], who, single=True, exact=lambda: [_exact_json(body)])
    )


@router.post("/lineage/batch", status_code=201, openapi_extra=BATCH_BODY)
async def post_batch(request: Request, store: CurrentStore, who: Principal = require("ingest")) -> dict:
    """Record a batch of OpenLineage events, all or nothing."""
    body = await request.body()  # inflated and held to the limits by BodyGuard
    events, exact = parse_batch(body)
    return await run_in_threadpool(lambda: record_events(store, events, who, single=False, exact=exact))


def _nth(read_all: Callable[[], list[Any]], i: int) -> Callable[[], Any]:
    """How to read the ``i``-th event again (``read_all`` reads them all, once: it is cached)."""
    return lambda: read_all()[i]


def _exact_json(body: bytes) -> Any:
    try:  # decoded here, strictly: json.loads would guess UTF-16 or UTF-32 from bytes
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BodyError(f"{NOT_JSON}: {e}") from None
    except RecursionError:
        raise BodyError("the body is nested too deeply to read") from None


def parse_batch(body: bytes) -> tuple[list[Any], Callable[[], list[Any]]]:
    """The events of a batch body (a JSON array, or JSON Lines), and how to read them exactly.

    A JSON array is read by the fast decoder; the second value reads the body
    again with the standard one, for batches holding floats (see ``Document.exact``).
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, list) and value:
        if len(value) > MAX_BATCH:
            raise TooLargeError(f"a batch holds at most {MAX_BATCH} events")
        return value, lambda: _exact_json(body)
    docs: list[Document] = []
    for doc in read_documents(io.BytesIO(body), "body"):
        if doc.error:
            raise BodyError(f"{doc.where}: {doc.error}")
        if len(docs) >= MAX_BATCH:
            raise TooLargeError(f"a batch holds at most {MAX_BATCH} events")
        docs.append(doc)
    if not docs:
        raise BodyError("the batch is empty")
    return [d.value for d in docs], lambda: [d.exact() for d in docs]


def record_events(
    store: Store, events: list[Any], who: Principal, single: bool, exact: Callable[[], list[Any]] | None = None
) -> dict:
    """Validate every event, then record them all in one transaction (all or nothing).

    Each event is prepared as the CLI prepares it (``lineage.ingest.prepare``); ``exact`` reads
    the events again with the standard decoder, once, for those that are not plain (they hold floats).
    """
    exact_all = functools.cache(exact) if exact is not None else None
    prepared = []
    for i, raw in enumerate(events):
        try:
            prepared.append(prepare(raw, who.actor, _nth(exact_all, i) if exact_all else None))
        except EventError as e:
            raise EventError(str(e) if single else f"events[{i}]: {e}") from None
    acks = store.append_many([p for _, p in prepared], atomic=True)
    results = [
        {
            "status": "duplicate" if a.duplicate else "accepted",
            "seq": a.seq,
            "hash": a.hash,
            "subject": a.subject,
            "warnings": e.warnings,
        }
        for a, (e, _) in zip(acks, prepared)
    ]
    if single:
        return results[0]
    return {
        "accepted": sum(r["status"] == "accepted" for r in results),
        "duplicates": sum(r["status"] == "duplicate" for r in results),
        "results": results,
    }
