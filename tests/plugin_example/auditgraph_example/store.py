"""A store backend for ``example:///FOLDER`` URLs: the SQLite backend, keeping its file in FOLDER/ledger.db.

A third party's backend would implement ``lineage.store.base.Store`` from scratch; reusing the SQLite
one keeps this example short while going through the same registry (entry point ``auditgraph.stores``).
"""

from __future__ import annotations

from pathlib import Path

from lineage.errors import StoreUrlError
from lineage.store.sqlite import SQLiteStore


class FolderStore(SQLiteStore):
    scheme = "example"


def build(url: str) -> FolderStore:
    folder = url.removeprefix("example://")
    if not folder.startswith("/"):
        raise StoreUrlError(f"{url!r}: expected example:///absolute/folder")
    return FolderStore(url, Path(folder) / "ledger.db")
