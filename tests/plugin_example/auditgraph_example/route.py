"""An HTTP route: how many ledger entries of each kind the store holds (needs the read scope)."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter

from lineage.hookspecs import hookimpl
from lineage.server.deps import CurrentStore, require

router = APIRouter(prefix="/example", tags=["example"])


@router.get("/kinds")
def kinds(store: CurrentStore, who=require("read")) -> dict:
    return dict(Counter(entry.kind for entry in store.entries()))


@hookimpl
def register_routes():
    return [router]
