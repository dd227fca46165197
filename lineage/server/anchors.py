"""The ledger's anchors over HTTP: the latest signed checkpoint, and proofs against the Merkle tree.

``GET /api/v1/checkpoint`` is the C2SP signed note as ``text/plain``, so any
tlog tooling reads it; proofs are JSON with hex hashes (RFC 9162 order). Every
route needs the ``read`` scope (or public reads). A proof proves nothing by
itself: verify it against a checkpoint whose signature you checked.
"""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from lineage import anchors, merkle
from lineage.errors import NotFound
from lineage.server.deps import CurrentStore, require

router = APIRouter(tags=["ledger"], dependencies=[require("read")])


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(store: CurrentStore) -> PlainTextResponse:
    """The newest signed checkpoint recorded in the ledger (`auditgraph audit checkpoint`, or
    `serve --checkpoint-every`), as a C2SP signed note."""
    found = anchors.latest(store)
    if found is None:
        raise NotFound("no checkpoint is recorded yet: run 'auditgraph audit checkpoint' or serve --checkpoint-every")
    return PlainTextResponse(found.value.note, media_type="text/plain; charset=utf-8")


@router.get("/proof/inclusion")
def inclusion(
    store: CurrentStore,
    seq: int = Query(..., ge=1, description="The ledger entry."),
    size: int = Query(..., ge=1, description="The tree size of the checkpoint to prove against."),
) -> dict:
    """The inclusion proof of entry `seq` in the tree of `size` entries (leaf index seq - 1)."""
    entry = next(store.entries(after_seq=seq - 1, limit=1), None)
    if entry is None or entry.seq != seq:
        raise NotFound(f"ledger entry {seq} does not exist")
    proof = store.inclusion_proof(seq, size)
    return {
        "seq": seq,
        "size": size,
        "leaf_index": seq - 1,
        "entry_hash": entry.hash,
        "leaf_hash": merkle.entry_leaf(entry.hash).hex(),
        "proof": [h.hex() for h in proof],
    }


@router.get("/proof/consistency")
def consistency(
    store: CurrentStore,
    old: int = Query(..., ge=0, description="The smaller tree size (a checkpoint you kept)."),
    new: int = Query(..., ge=0, description="The larger tree size."),
) -> dict:
    """The consistency proof from the tree of `old` entries to the tree of `new`, with both roots."""
    proof = store.consistency_proof(old, new)
    return {
        "old": old,
        "new": new,
        "old_root": store.tree_root(old).hex(),
        "new_root": store.tree_root(new).hex(),
        "proof": [h.hex() for h in proof],
    }
