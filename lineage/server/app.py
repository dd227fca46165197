"""The HTTP API's app factory: ``create_app(config)`` wires the store, the keys and the routes.

* Routes come from the plugin hook ``register_routes`` (``lineage.hookspecs``): ingestion
  (``lineage.server.ingest``: ``POST /api/v1/lineage`` and ``/lineage/batch``) and the lineage
  queries (``lineage.server.query``: the same JSON as the CLI's ``--json``) as built-ins,
  governance's and third parties' through their entry points. Every route takes the store and the
  caller from ``lineage.server.deps`` (``CurrentStore``, ``require(scope)``), never from ``app.state``.
* ``GET /api/v1/health`` (status and version without a key; the store and ledger head only with a
  valid key), ``GET /openapi.json``, ``GET /docs``.

Writes always need a key with the right scope; reads need a ``read`` key unless the server runs
with public reads. Every body passes ``BodyGuard`` (``lineage.server.limits``) first: over the size
limit (after gzip decompression too) 413, not UTF-8 400, not received in time 408. Our errors
answer with their class's ``http_status`` (``lineage.errors``), in one handler (``lineage.server.errors``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from lineage.hooks import Dispatcher
from lineage.server import errors
from lineage.server.auth import AuthError, KeyVerifier, Principal, ScopeError
from lineage.server.limits import BodyGuard
from lineage.store import Store, open_store, redact

log = logging.getLogger(__name__)


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
    log_key_file: str | None = field(default=None, repr=False)  # the log's private key, for --checkpoint-every
    checkpoint_every: int = 0  # sign a checkpoint once the ledger grew by this many entries (0: never)


class Stores:
    """One store per worker thread: a SQLite connection must stay on its thread."""

    def __init__(self, url: str | None):
        self.url, self._local, self._lock = url, threading.local(), threading.Lock()
        self._all: list[Store] = []  # every thread's store, closed together

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
    dispatcher = Dispatcher(
        stores.open_new,
        attempts=config.hook_attempts,
        backoff=config.hook_backoff,
        allow_private=config.allow_private_targets,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if config.webhooks:
            dispatcher.start()
        yield
        if config.webhooks:
            dispatcher.stop(wait=False)
        stores.close()

    app = FastAPI(
        title="auditgraph",
        version="0.1.0",
        lifespan=lifespan,
        description="Lineage and governance store for machine learning: OpenLineage in, lineage and audit answers out.",
    )
    app.state.config, app.state.stores, app.state.dispatcher = config, stores, dispatcher
    checkpointer = _checkpointer(config, stores)
    if checkpointer is not None:

        @app.middleware("http")
        async def checkpoint_after_writes(request: Request, call_next):
            """A write acknowledged here is covered by a signed checkpoint once enough accumulated; the
            checkpoint is taken before the response goes out, so a client that saw its 2xx can fetch it."""
            response = await call_next(request)
            if request.method in ("POST", "PUT", "PATCH", "DELETE") and response.status_code < 300:
                await run_in_threadpool(lambda: checkpointer.after_write(stores.get()))
            return response

    app.add_middleware(BodyGuard, limit=config.max_body_bytes, body_timeout=config.body_timeout)

    errors.install(app)

    def authorize(request: Request, scope: str) -> Principal | None:
        """The caller if it holds ``scope`` (None: a read under public reads); what ``deps.require`` asks."""
        if scope == "read" and config.public_reads:
            return None
        who = verifier.verify(stores.get(), request.headers.get("authorization"))
        if not who.allows(scope):
            raise ScopeError(f"the API key lacks the '{scope}' scope")
        return who

    app.state.authorize = authorize

    @app.get("/api/v1/health", tags=["meta"])
    def health(request: Request) -> dict:
        """Status and version for anyone; the store and its ledger head only for a valid key (or public reads)."""
        head = stores.get().head()
        answer: dict[str, object] = {"status": "ok", "version": app.version}
        if config.public_reads or _has_valid_key(request):
            answer |= {"store": url, "ledger": {"entries": head.seq, "head": head.hash}}
        return answer

    def _has_valid_key(request: Request) -> bool:
        try:
            return verifier.verify(stores.get(), request.headers.get("authorization")).allows("read")
        except AuthError:
            return False

    for router in plugin_routers():
        app.include_router(router, prefix="/api/v1")
    return app


def _checkpointer(config: ServerConfig, stores: Stores):
    """The checkpointer --checkpoint-every asks for, with its key loaded now (a bad key fails at start)."""
    if not config.checkpoint_every:
        return None
    from lineage.anchors import Checkpointer
    from lineage.checkpoint import CheckpointError, LogKey

    if not config.log_key_file:
        raise CheckpointError("--checkpoint-every needs --log-key-file (the log's private key)")
    probe = stores.open_new()
    try:
        return Checkpointer(LogKey.load(config.log_key_file), config.checkpoint_every, "system:serve", probe)
    finally:
        probe.close()


def plugin_routers() -> list[APIRouter]:
    """The routers every plugin registers (``register_routes``), the built-in query routes first."""
    from lineage.plugins import manager

    routers = []
    for returned in reversed(manager().hook.register_routes()):  # pluggy answers last-registered first
        routers.extend(returned)
    return routers
