"""Open a store by URL.

The scheme picks the backend; a backend's driver is imported only when its
builder runs. Where the store is (precedence, first match wins):

1. the ``url`` argument (the CLI's ``--store`` option);
2. the ``AUDITGRAPH_STORE`` environment variable;
3. ``sqlite:///`` + ``$XDG_DATA_HOME/auditgraph/store.db``
   (``~/.local/share/auditgraph/store.db`` when XDG_DATA_HOME is unset).
"""

from __future__ import annotations

import os
from importlib import import_module
from pathlib import Path

from lineage.errors import LineageError, StoreError
from lineage.store.base import Store, WriteTx
from lineage.store.urls import MASK, Credentials, redact, split_credentials

__all__ = ["Store", "WriteTx", "open_store", "default_url", "SCHEMES", "redact", "split_credentials", "Credentials"]

# scheme -> "module:builder"
SCHEMES = {
    "sqlite": "lineage.store.sqlite:build",
    "neo4j": "lineage.store.neo4j:build",
    "neo4j+s": "lineage.store.neo4j:build",
    "neo4j+ssc": "lineage.store.neo4j:build",
    "bolt": "lineage.store.neo4j:build",
    "bolt+s": "lineage.store.neo4j:build",
    "bolt+ssc": "lineage.store.neo4j:build",
}
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


def open_store(url: str | None = None) -> Store:
    """Open (creating if needed) the store at ``url``; see the module docstring for the default.

    No message raised from here holds the URL's password: messages show ``redact(url)``,
    and a backend's error that quotes the password anyway has it masked.
    """
    url = resolve_url(url)
    password = split_credentials(url).password
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise StoreError(
            f"unknown store URL {redact(url)!r}; expected one of: "
            + ", ".join(f"{s}://..." for s in SCHEMES)
        )
    module, _, builder = SCHEMES[scheme].partition(":")
    try:
        return getattr(import_module(module), builder)(url)
    except LineageError as e:
        if password and password in str(e):
            raise StoreError(str(e).replace(password, MASK)) from None
        raise
