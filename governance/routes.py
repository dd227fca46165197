"""Governance routes under /api/v1/governance (the ``register_routes`` hook of ``governance.plugin``).

Each write needs the scope its entry kind declares (``governance.kinds``):
tags and evaluations ``govern``, approvals, gate runs and releases
``approve``; reads need ``read`` (or nothing, with public reads). An ``ingest``
key (what every OpenLineage producer holds) writes no governance fact.
Approvals arrive signed by the approver's own key: the server verifies the
DSSE envelope against the registered key before recording it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, StringConstraints

from governance import approvals as appr
from governance import gate as gates
from governance import kinds, records
from governance.errors import PolicyError
from governance.evidence import evidence_digest, evidence_view
from governance.rules import builtin_packs, load_policy
from lineage.graph import Graph
from lineage.ids import parse_id
from lineage.server.deps import CurrentStore, require

router = APIRouter(prefix="/governance", tags=["governance"])
PackName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Body(BaseModel):
    """Every request body: strict types (no list or number where a string belongs), no unknown fields.

    A body that does not validate is answered 422 before anything reaches the store.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TagBody(Body):
    node: kinds.NodeRef
    tags: list[kinds.TagName] = Field(min_length=1, max_length=100)
    remove: bool = False


class EvaluationBody(Body):
    model: kinds.NodeRef
    metrics: dict[kinds.Text, FiniteFloat] = Field(min_length=1, max_length=1000)
    dataset: kinds.NodeRef | None = None


class GateBody(Body):
    model: kinds.NodeRef
    policy: list[PackName] = Field(
        min_length=1, max_length=50, description="Built-in pack names (rule files are loaded by the CLI)"
    )


ApprovalBody = kinds.ApprovalPayload  # the model version and its signed DSSE envelope, exactly as recorded


def _actor(who) -> str:
    return who.actor if who else "anonymous"


@router.post("/tags", status_code=201)
def tag(body: TagBody, store: CurrentStore, who=require(kinds.TAG.scope)) -> dict:
    return {"seqs": records.tag(store, body.node, body.tags, _actor(who), body.remove)}


@router.post("/evaluations", status_code=201)
def evaluate(body: EvaluationBody, store: CurrentStore, who=require(kinds.EVALUATION.scope)) -> dict:
    return {"seq": records.record_evaluation(store, body.model, body.metrics, _actor(who), body.dataset)}


@router.get("/evidence")
def evidence(model: str, store: CurrentStore, who=require("read")) -> dict:
    view = evidence_view(store, model)
    return {"digest": evidence_digest(view), "evidence": view}


@router.post("/approvals", status_code=201)
def approve(body: ApprovalBody, store: CurrentStore, who=require(kinds.APPROVAL.scope)) -> dict:
    ack = appr.record_signed(store, body.model_dump(), _actor(who))
    return {"seq": ack.seq, "duplicate": ack.duplicate}


@router.get("/approvals")
def approvals(model: str, store: CurrentStore, who=require("read")) -> list[dict]:
    return [a.__dict__ for a in appr.approvals_of(store, Graph(store).resolve(model).id)]


@router.post("/gate")
def gate(body: GateBody, store: CurrentStore, who=require("approve")) -> dict:
    unknown = [p for p in body.policy if p not in builtin_packs()]
    if unknown:  # a path would let a client make the server read its files
        raise PolicyError(
            f"over HTTP, policy names built-in packs only ({', '.join(sorted(builtin_packs()))}); "
            f"not {', '.join(unknown)}"
        )
    policy = load_policy(body.policy)
    return gates.record(store, gates.evaluate(store, body.model, policy), _actor(who)).model_dump()


@router.get("/releases")
def releases(model: str, store: CurrentStore, who=require("read")) -> list[dict]:
    return gates.release_history(store, str(parse_id(Graph(store).resolve(model).id).entity()))
