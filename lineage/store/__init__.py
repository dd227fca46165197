"""Open a store by URL.

The scheme picks the backend. Backends are found through the ``auditgraph.stores``
entry point group (name = URL scheme, value = ``module:builder``, a function
from the URL to a ``Store``): the built-in SQLite and Neo4j backends are
registered there in pyproject.toml exactly as a third party's would be::

    [project.entry-points."auditgraph.stores"]
    sqlite = "lineage.store.sqlite:build"

The entry points are read once per process; a backend's module (and its
driver) is imported only when a URL of its scheme is opened. Where the store
is (precedence, first match wins):

1. the ``url`` argument (the CLI's ``--store`` option);
2. the ``AUDITGRAPH_STORE`` environment variable;
3. ``sqlite:///`` + ``$XDG_DATA_HOME/auditgraph/store.db``
   (``~/.local/share/auditgraph/store.db`` when XDG_DATA_HOME is unset).
"""

from __future__ import annotations

import os
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from lineage.errors import LineageError, StoreError, StoreUrlError
from lineage.store.base import Store, WriteTx
from lineage.store.urls import MASK, Credentials, redact, split_credentials

__all__ = ["Store", "WriteTx", "open_store", "default_url", "backends", "redact", "split_credentials", "Credentials"]

ENTRY_POINT_GROUP = "auditgraph.stores"
ENV_VAR = "AUDITGRAPH_STORE"


def default_url() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return "sqlite:///" + str(Path(base) / "auditgraph" / "store.db")


def resolve_url(url: str | None = None) -> str:
    # 1. argument
    if url:
        return url
    # 2. environment
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    # 3. default location
    return default_url()


@cache
def backends() -> dict[str, EntryPoint]:
    """Every registered store backend by URL scheme, in registration order: the ``auditgraph.stores`` entry points.

    Read once per process. One scheme registered with two different builders (two installed
    distributions) is an error naming both, rather than a silent pick of either.
    """
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        have = found.setdefault(ep.name, ep)
        if have.value != ep.value:
            raise StoreError(
                f"store scheme {ep.name!r} is registered twice ({ENTRY_POINT_GROUP} entry points): "
                f"{have.value} and {ep.value}"
            )
    return found


def open_store(url: str | None = None) -> Store:
    """Open (creating if needed) the store at ``url``; see the module docstring for the default.

    No message raised from here holds the URL's password: messages show ``redact(url)``,
    and a backend's error that quotes the password anyway has it masked.
    """
    url = resolve_url(url)
    password = split_credentials(url).password
    scheme, sep, _ = url.partition("://")
    registered = backends()
    if not sep or scheme not in registered:
        raise StoreUrlError(
            f"unknown store URL {redact(url)!r}; expected one of: " + ", ".join(f"{s}://..." for s in registered)
        )
    try:
        build = registered[scheme].load()
    except Exception as e:  # a third party's backend that does not import must not look like a bad URL
        raise StoreError(
            f"the {scheme}:// store backend ({registered[scheme].value}) cannot be loaded: {type(e).__name__}: {e}"
        ) from e
    try:
        return build(url)
    except LineageError as e:
        if password and password in str(e):
            e.args = (str(e).replace(password, MASK),)  # the same error (its kind says how it is answered), masked
        raise
