"""The HTTP API.

* ``POST /api/v1/lineage``: one OpenLineage event, exactly as the
  openlineage-python HTTP transport sends it (JSON, optional
  ``Content-Encoding: gzip``, ``Authorization: Bearer <key>``); 201 when recorded
  (or already recorded: the body says ``duplicate``).
* ``POST /api/v1/lineage/batch``: a JSON array (or JSON Lines) of events,
  recorded all together or not at all; 201, or 4xx naming the index and field.
* ``GET /api/v1/...``: node, upstream, downstream, impact, path, search,
  columns, history; the same JSON as the CLI's ``--json``.
* ``GET /api/v1/health`` (status and version without a key; the store and
  ledger head only with a valid key), ``GET /openapi.json``, ``GET /docs``.

Writes always need a key with the right scope; reads need a ``read`` key
unless the server runs with public reads. Every body passes ``BodyGuard``
(``lineage.server.limits``) first: over the size limit (after gzip
decompression too) 413, not UTF-8 400, not received in time 408. Our errors
answer with their class's ``http_status`` (``lineage.errors``), in one
handler. Other packages add routes through the entry point group ``auditgraph.routes``: each
names a ``fastapi.APIRouter`` (or a function returning one) mounted under
``/api/v1``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lineage.errors import BodyError, EventError, LineageError, TooLargeError
from lineage.graph import Graph
from lineage.hooks import Dispatcher
from lineage.ingest import read_documents
from lineage.ledger import Pending
from lineage.openlineage import ParsedEvent, format_time, parse_event, parse_time
from lineage.projection import OPENLINEAGE_KIND
from lineage.query import DEFAULT_MAX_NODES
from lineage.server.auth import AuthError, KeyVerifier, Principal, ScopeError
from lineage.server.limits import NOT_JSON, BodyGuard
from lineage.store import Store, open_store, redact

log = logging.getLogger(__name__)
MAX_BATCH = 10_000


@dataclass
class ServerConfig:
    store_url: str | None = field(default=None, repr=False)  # may hold a password: never in a repr or a log
    max_body_bytes: int = 10 << 20
    body_timeout: float = 60.0
    public_reads: bool = False
    webhooks: bool = True
    hook_attempts: int = 5
    hook_backoff: float = 0.5
    allow_private_targets: bool = False  # webhooks may go to loopback/private addresses


class Stores:
    """One store per worker thread: a SQLite connection must stay on its thread."""

    def __init__(self, url: str | None):
        self.url, self._local, self._all, self._lock = url, threading.local(), [], threading.Lock()

    def get(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = open_store(self.url)
            with self._lock:
                self._all.append(store)
        return store

    def open_new(self) -> Store:
        return open_store(self.url)

    def close(self) -> None:
        with self._lock:
            for store in self._all:
                with contextlib.suppress(Exception):
                    store.close()
            self._all.clear()


def create_app(config: ServerConfig | None = None) -> FastAPI:
    config = config or ServerConfig()
    stores = Stores(config.store_url)
    probe = stores.open_new()  # fails now, not on the first request, if the URL is wrong
    url = redact(probe.url)
    probe.close()
    verifier = KeyVerifier()
    dispatcher = Dispatcher(stores.open_new, attempts=config.hook_attempts, backoff=config.hook_backoff,
                            allow_private=config.allow_private_targets)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if config.webhooks:
            dispatcher.start()
        yield
        if config.webhooks:
            dispatcher.stop(wait=False)
        stores.close()

    app = FastAPI(title="auditgraph", version="0.1.0", lifespan=lifespan,
                  description="Lineage and governance store for machine learning: OpenLineage in, lineage and "
                              "audit answers out.")
    app.state.config, app.state.stores, app.state.dispatcher = config, stores, dispatcher
    app.add_middleware(BodyGuard, limit=config.max_body_bytes, body_timeout=config.body_timeout)

    @app.exception_handler(LineageError)
    async def lineage_error(request: Request, exc: LineageError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)  # said once, by its class

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):  # FastAPI's own parse of a body
            return JSONResponse({"detail": f"{NOT_JSON}: {exc.errors()[0].get('ctx', {}).get('error', '')}"}, 400)
        return await request_validation_exception_handler(request, exc)

    def principal(scope: str) -> Callable[..., Principal | None]:
        def check(request: Request) -> Principal | None:
            if scope == "read" and config.public_reads:
                return None
            who = verifier.verify(stores.get(), request.headers.get("authorization"))
            if not who.allows(scope):
                raise ScopeError(f"the API key lacks the '{scope}' scope")
            return who

        return check

    app.state.require = principal

    @app.get("/api/v1/health", tags=["meta"])
    def health(request: Request) -> dict:
        """Status and version for anyone; the store and its ledger head only for a valid key (or public reads)."""
        head = stores.get().head()
        answer = {"status": "ok", "version": app.version}
        if config.public_reads or _has_valid_key(request):
            answer |= {"store": url, "ledger": {"entries": head.seq, "head": head.hash}}
        return answer

    def _has_valid_key(request: Request) -> bool:
        try:
            return verifier.verify(stores.get(), request.headers.get("authorization")).allows("read")
        except AuthError:
            return False

    event_body = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "description": "An OpenLineage RunEvent, JobEvent or DatasetEvent",
        "externalDocs": {"url": "https://openlineage.io/spec/2-0-2/OpenLineage.json"}}}}}}
    batch_body = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "array", "items": {"type": "object"}, "maxItems": MAX_BATCH,
        "description": "OpenLineage events (JSON Lines is accepted too)"}}}}}

    @app.post("/api/v1/lineage", status_code=201, tags=["ingest"], openapi_extra=event_body)
    async def post_event(request: Request, who: Principal = Depends(principal("ingest"))) -> dict:
        body = await request.body()  # inflated and held to the limits by BodyGuard
        try:
            event = orjson.loads(body)  # fast; record_events asks for the exact reading if the event has floats
        except orjson.JSONDecodeError:
            event = _exact_json(body)
        # stores.get() must run on the worker thread: each thread has its own connection
        return await run_in_threadpool(lambda: record_events(stores.get(), [event], who, single=True,
                                                             exact=lambda: [_exact_json(body)]))

    @app.post("/api/v1/lineage/batch", status_code=201, tags=["ingest"], openapi_extra=batch_body)
    async def post_batch(request: Request, who: Principal = Depends(principal("ingest"))) -> dict:
        body = await request.body()  # inflated and held to the limits by BodyGuard
        events, exact = parse_batch(body)
        return await run_in_threadpool(lambda: record_events(stores.get(), events, who, single=False, exact=exact))

    app.include_router(query_router(stores, principal), prefix="/api/v1")
    for router in plugin_routers():
        app.include_router(router, prefix="/api/v1")
    return app


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
    import io

    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, list) and value:
        if len(value) > MAX_BATCH:
            raise TooLargeError(f"a batch holds at most {MAX_BATCH} events")
        return value, lambda: _exact_json(body)
    docs = []
    for doc in read_documents(io.BytesIO(body), "body"):
        if doc.error:
            raise BodyError(f"{doc.where}: {doc.error}")
        if len(docs) >= MAX_BATCH:
            raise TooLargeError(f"a batch holds at most {MAX_BATCH} events")
        docs.append(doc)
    if not docs:
        raise BodyError("the batch is empty")
    return [d.value for d in docs], lambda: [d.exact() for d in docs]


def _parse_all(events: list[Any], single: bool) -> list[ParsedEvent]:
    parsed = []
    for i, raw in enumerate(events):
        try:
            parsed.append(parse_event(raw))
        except EventError as e:
            raise EventError(str(e) if single else f"events[{i}]: {e}") from None
    return parsed


def record_events(store: Store, events: list[Any], who: Principal, single: bool,
                  exact: Callable[[], list[Any]] | None = None) -> dict:
    """Validate every event, then record them all in one transaction (all or nothing).

    ``exact`` reads the events again with the standard decoder; it is called
    when an event is not plain (it holds floats), so that the ledger keeps
    exactly what the standard decoder reads (see ``lineage.ingest.Document.exact``).
    """
    parsed = _parse_all(events, single)
    if exact is not None and not all(e.plain for e in parsed):
        events = exact()
        parsed = _parse_all(events, single)
    pending = [(event, Pending(OPENLINEAGE_KIND, raw, who.actor, event.subject, event.time_key, hint=event,
                               plain=event.plain)) for event, raw in zip(parsed, events)]
    acks = store.append_many([p for _, p in pending], atomic=True)
    results = [{"status": "duplicate" if a.duplicate else "accepted", "seq": a.seq, "hash": a.hash,
                "subject": a.subject, "warnings": e.warnings} for a, (e, _) in zip(acks, pending)]
    if single:
        return results[0]
    return {"accepted": sum(r["status"] == "accepted" for r in results),
            "duplicates": sum(r["status"] == "duplicate" for r in results), "results": results}


def query_router(stores: Stores, principal) -> APIRouter:
    router = APIRouter(tags=["lineage"], dependencies=[Depends(principal("read"))])

    def as_of_time(value: str | None) -> str | None:
        return format_time(parse_time(value, "as_of")[0]) if value else None

    @router.get("/nodes")
    def node(id: str = Query(..., description="Node id, e.g. dataset:s3://bucket/table")) -> dict:
        return Graph(stores.get()).node(id)

    def walk(direction: str):
        def handler(id: str, depth: int | None = Query(None, ge=0), kind: list[str] = Query([]),
                    as_of: str | None = None, max_nodes: int = Query(DEFAULT_MAX_NODES, ge=1, le=1_000_000),
                    job_type: list[str] = Query([], max_length=100), include_failed: bool = False) -> dict:
            return Graph(stores.get()).traverse(id, direction, depth=depth, kinds=kind, as_of=as_of_time(as_of), job_types=job_type,
                                         max_nodes=max_nodes, include_failed=include_failed).model_dump()
        handler.__name__ = direction
        handler.__doc__ = f"Everything {direction} of a node (the CLI's `lineage {direction} --json`)."
        return handler

    router.get("/upstream")(walk("upstream"))
    router.get("/downstream")(walk("downstream"))

    @router.get("/impact")
    def impact(id: str, depth: int | None = Query(None, ge=0), as_of: str | None = None,
               max_nodes: int = Query(DEFAULT_MAX_NODES, ge=1, le=1_000_000),
               job_type: list[str] = Query([], max_length=100), include_failed: bool = False) -> dict:
        return Graph(stores.get()).impact(id, depth=depth, as_of=as_of_time(as_of), max_nodes=max_nodes, job_types=job_type,
                                   include_failed=include_failed)

    @router.get("/path")
    def path(source: str = Query(..., alias="from"), target: str = Query(..., alias="to"),
             as_of: str | None = None) -> dict:
        return Graph(stores.get()).path(source, target, as_of=as_of_time(as_of)).model_dump()

    @router.get("/search")
    def search(q: str, kind: list[str] = Query([]), limit: int = Query(50, ge=1, le=10_000)) -> list[dict]:
        return [r.model_dump() for r in Graph(stores.get()).search(q, kinds=kind, limit=limit)]

    @router.get("/columns")
    def columns(dataset: str, field: str | None = None, depth: int | None = Query(None, ge=0),
                direct_only: bool = False) -> dict:
        return Graph(stores.get()).columns(dataset, field, depth=depth, direct_only=direct_only).model_dump()

    @router.get("/history")
    def history(id: str) -> dict:
        return Graph(stores.get()).history(id)

    return router


def plugin_routers() -> list[APIRouter]:
    routers = []
    for ep in entry_points(group="auditgraph.routes"):
        try:
            obj = ep.load()
            routers.append(obj if isinstance(obj, APIRouter) else obj())
        except Exception as e:  # a broken plugin must not take the server down
            log.warning("could not load routes %r from %s: %s", ep.name, ep.value, e)
    return routers
