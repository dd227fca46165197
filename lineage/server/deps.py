"""The public dependencies of every route, ours and plugins': the current store and the caller.

A route never reaches into ``app.state``; it declares what it needs::

    from lineage.server.deps import CurrentStore, require

    @router.get("/mine")
    def mine(store: CurrentStore, who=require("read")) -> dict: ...

``require(scope)`` answers 401 without a valid key and 403 with a key that lacks
the scope; it gives the ``Principal`` (or None for a read under ``--public-reads``).
``CurrentStore`` is the server's store as seen from the thread that uses it: each
worker thread has its own connection (a SQLite connection must stay on its
thread), so the handle opens it where it is used, not where it was injected.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from lineage.server.auth import Principal
from lineage.store import Store, redact


class StoreHandle:
    """The server's store, opened per thread on first use; behaves as a ``Store``."""

    __slots__ = ("_stores",)

    def __init__(self, stores: Any):
        self._stores = stores

    def get(self) -> Store:
        return self._stores.get()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stores.get(), name)

    def __repr__(self) -> str:
        return f"<StoreHandle {redact(self._stores.url or '')}>"


def current_store(request: Request) -> StoreHandle:
    return StoreHandle(request.app.state.stores)


CurrentStore = Annotated[StoreHandle, Depends(current_store)]


def caller(request: Request, scope: str) -> Principal | None:
    """The verified caller of ``request`` if it may use ``scope`` (None: a public read)."""
    return request.app.state.authorize(request, scope)


def require(scope: str) -> Any:
    """A dependency: the caller, who must hold ``scope`` (401 without a valid key, 403 without the scope)."""

    def dependency(request: Request) -> Principal | None:
        return caller(request, scope)

    dependency.__name__ = f"require_{scope}"
    return Depends(dependency)
