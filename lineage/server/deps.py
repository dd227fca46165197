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

from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, Request

from lineage.server.auth import Principal
from lineage.store import Store, redact

if TYPE_CHECKING:
    from lineage.server.app import Stores


class StoreHandle:
    """The server's store, opened per thread on first use; behaves as a ``Store``."""

    __slots__ = ("_stores",)

    def __init__(self, stores: Stores):
        self._stores = stores

    def get(self) -> Store:
        return self._stores.get()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stores.get(), name)

    def __repr__(self) -> str:
        return f"<StoreHandle {redact(self._stores.url or '')}>"


def current_store(request: Request) -> Store:
    # Declared a Store, which the handle behaves as (every attribute is the thread's own store's),
    # so that routes pass it wherever a Store goes; it is not a subclass, whose hooks it would not use.
    return cast(Store, StoreHandle(request.app.state.stores))


CurrentStore = Annotated[Store, Depends(current_store)]


def caller(request: Request, scope: str) -> Principal | None:
    """The verified caller of ``request`` if it may use ``scope`` (None: a public read)."""
    return request.app.state.authorize(request, scope)


def require(scope: str) -> Any:
    """A dependency: the caller, who must hold ``scope`` (401 without a valid key, 403 without the scope)."""

    def dependency(request: Request) -> Principal | None:
        return caller(request, scope)

    dependency.__name__ = f"require_{scope}"
    return Depends(dependency)
