"""Governance routes under /api/v1/governance (entry point ``auditgraph.routes``).

Each write needs the scope its entry kind declares (``governance.kinds``):
tags and evaluations ``govern``, approvals, gate runs and releases
``approve``; reads need ``read`` (or nothing, with public reads). An ``ingest``
key (what every OpenLineage producer holds) writes no governance fact.
Approvals arrive signed by the approver's own key: the server verifies the
DSSE envelope against the registered key before recording it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, StringConstraints

from governance import approvals as appr, gate as gates, kinds, records
from governance.evidence import evidence_digest, evidence_view
from governance.errors import PolicyError
from governance.rules import builtin_packs, load_policy
from lineage.graph import Graph
from lineage.ids import parse_id

router = APIRouter(prefix="/governance", tags=["governance"])
PackName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def need(scope: str):
    def dependency(request: Request):
        return request.app.state.require(scope)(request)

    return Depends(dependency)


def store(request: Request):
    return request.app.state.stores.get()


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
    policy: list[PackName] = Field(min_length=1, max_length=50,
                                   description="Built-in pack names (rule files are loaded by the CLI)")


ApprovalBody = kinds.ApprovalPayload  # the model version and its signed DSSE envelope, exactly as recorded


def _actor(who) -> str:
    return who.actor if who else "anonymous"


@router.post("/tags", status_code=201)
def tag(body: TagBody, request: Request, who=need(kinds.TAG.scope)) -> dict:
    return {"seqs": records.tag(store(request), body.node, body.tags, _actor(who), body.remove)}


@router.post("/evaluations", status_code=201)
def evaluate(body: EvaluationBody, request: Request, who=need(kinds.EVALUATION.scope)) -> dict:
    return {"seq": records.record_evaluation(store(request), body.model, body.metrics, _actor(who), body.dataset)}


@router.get("/evidence")
def evidence(model: str, request: Request, who=need("read")) -> dict:
    view = evidence_view(store(request), model)
    return {"digest": evidence_digest(view), "evidence": view}


@router.post("/approvals", status_code=201)
def approve(body: ApprovalBody, request: Request, who=need(kinds.APPROVAL.scope)) -> dict:
    ack = appr.record_signed(store(request), body.model_dump(), _actor(who))
    return {"seq": ack.seq, "duplicate": ack.duplicate}


@router.get("/approvals")
def approvals(model: str, request: Request, who=need("read")) -> list[dict]:
    s = store(request)
    return [a.__dict__ for a in appr.approvals_of(s, Graph(s).resolve(model).id)]


@router.post("/gate")
def gate(body: GateBody, request: Request, who=need("approve")) -> dict:
    unknown = [p for p in body.policy if p not in builtin_packs()]
    if unknown:  # a path would let a client make the server read its files
        raise PolicyError(f"over HTTP, policy names built-in packs only ({', '.join(sorted(builtin_packs()))}); "
                          f"not {', '.join(unknown)}")
    policy = load_policy(body.policy)
    s = store(request)
    return gates.record(s, gates.evaluate(s, body.model, policy), _actor(who)).model_dump()


@router.get("/releases")
def releases(model: str, request: Request, who=need("read")) -> list[dict]:
    s = store(request)
    return gates.release_history(s, str(parse_id(Graph(s).resolve(model).id).entity()))
