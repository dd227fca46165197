"""The release gate: evaluate a policy against a model version, record it, decide.

Fail closed: a ``block`` rule that fails *or cannot be evaluated* blocks; a
``warn`` rule that fails is reported as ``warn`` and does not block. A rule with
nothing to judge is ``not_applicable``: it does not block, and it never counts
as evidence for a framework item. A policy
with no rule that applies to the model is an error, not a pass. Every gate
run is a ``governance.gate`` ledger entry holding every rule's result, passed
ones included; a release is a ``governance.release`` entry citing the gate
run that allowed it. A release (and a rollback, a release of an older version)
first checks that what the gate reads of the graph is what the ledger projects,
and is refused if not (``lineage.graphcheck``).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import BaseModel

from governance import kinds
from governance.binding import check_release_policy, policy_digests
from governance.checks import Decision, registry
from governance.errors import PolicyError, ReleaseError
from governance.rules import Policy, Rule
from governance.subject import Subject
from lineage.canonical import digest
from lineage.clock import utc_text
from lineage.errors import LineageError
from lineage.graph import Graph
from lineage.graphcheck import check_upstream
from lineage.ids import parse_id
from lineage.store import Store

log = logging.getLogger(__name__)
GATE, RELEASE = kinds.GATE.name, kinds.RELEASE.name


class RuleResult(BaseModel):
    rule: str
    title: str
    rationale: str
    severity: str
    check: str
    status: kinds.RuleStatus
    blocking: bool
    observed: Any = None
    threshold: Any = None
    reason: str = ""
    evidence: list[str] = []
    evidences: dict[str, list[str]] = {}
    source: str = ""


class GateResult(BaseModel):
    model: str
    outcome: Literal["pass", "blocked"]
    evaluated_at: str
    policy: list[str]
    policy_digest: str
    policy_digests: dict[str, str] = {}  # each source with the digest of its rules (what a binding names)
    results: list[RuleResult]
    seq: int | None = None

    @property
    def blocking(self) -> list[RuleResult]:
        return [r for r in self.results if r.blocking]


def evaluate(store: Store, model: str, policy: Policy) -> GateResult:
    subject = Subject(store, model)
    rules = policy.applicable(subject.id)
    if not rules:
        raise PolicyError(
            f"no rule in {', '.join(policy.sources)} applies to {subject.id}; "
            "a gate with nothing to check does not pass"
        )
    results = [_run(rule, subject) for rule in rules]
    results.sort(key=lambda r: (not r.blocking, r.status == "pass", r.rule))
    policy_digest = digest([r.model_dump(exclude={"source"}) for r in policy.rules])
    return GateResult(
        model=subject.id,
        outcome="blocked" if any(r.blocking for r in results) else "pass",
        evaluated_at=utc_text(),
        policy=policy.sources,
        policy_digest=policy_digest,
        policy_digests=policy_digests(policy),
        results=results,
    )


def _run(rule: Rule, subject: Subject) -> RuleResult:
    check = registry()[rule.check]()
    try:
        decision = check.evaluate(subject, check.Params.model_validate(rule.params))
    except LineageError as e:
        decision = Decision(status="not_evaluated", reason=f"the check could not run: {e}")
    except Exception as e:  # noqa: BLE001  a check that breaks on what it read has not evaluated: fail closed
        log.warning("check %s of rule %s failed on %s: %s: %s", rule.check, rule.id, subject.id, type(e).__name__, e)
        decision = Decision(status="not_evaluated", reason=f"the check failed on what it read: {type(e).__name__}: {e}")
    status = "warn" if decision.status == "fail" and rule.severity == "warn" else decision.status
    blocking = rule.severity == "block" and decision.status in ("fail", "not_evaluated")
    return RuleResult(
        rule=rule.id,
        title=rule.title,
        rationale=rule.rationale,
        severity=rule.severity,
        check=rule.check,
        status=status,
        blocking=blocking,
        observed=decision.observed,
        threshold=decision.threshold,
        reason=decision.reason,
        evidence=decision.evidence,
        evidences=rule.evidences,
        source=rule.source,
    )


def record(store: Store, result: GateResult, actor: str) -> GateResult:
    payload = json.loads(result.model_dump_json(exclude={"seq"}))
    ack = store.append(kinds.GATE.pending(payload, actor))
    return result.model_copy(update={"seq": ack.seq})


def latest_gate(store: Store, model: str) -> GateResult | None:
    found = history(store, model)
    return found[-1].result if found else None


class GateRun(BaseModel):
    """One recorded gate run: its result, who ran it and when it was recorded."""

    seq: int
    actor: str
    recorded_at: str
    release: bool = False
    result: GateResult


def history(store: Store, model: str) -> list[GateRun]:
    """Every gate run recorded for a model version, oldest first, marking those that led to a release."""
    released = {r["gate"] for r in release_history(store, str(parse_id(model).entity())) if r.get("gate")}
    runs = []
    for r in kinds.GATE.valid(store, model):
        result = GateResult(**r.value.model_dump(), seq=r.seq)
        runs.append(
            GateRun(seq=r.seq, actor=r.actor, recorded_at=r.recorded_at, release=r.seq in released, result=result)
        )
    return runs


# --- releases ----------------------------------------------------------------


def release(store: Store, model: str, policy: Policy, actor: str) -> tuple[GateResult, int | None]:
    """Run the gate; record a release only if it passes. Returns the gate result and the release's seq.

    The policy must include every policy bound to the model (``governance require``);
    otherwise nothing is evaluated or recorded and ``GovernanceError`` says what is missing.
    What the gate reads of the graph (the model's upstream closure and its jobs) must be what the
    ledger projects (``lineage.graphcheck.check_upstream``); otherwise ``GraphError`` names what
    differs, and nothing is evaluated or recorded.
    """
    model_id = Graph(store).resolve(model).id
    bound = check_release_policy(store, model_id, policy)
    check_upstream(store, model_id).require(f"{model_id} was not released")
    result = record(store, evaluate(store, model_id, policy), actor)
    if result.outcome != "pass":
        return result, None
    entity = str(parse_id(result.model).entity())
    payload = {
        "entity": entity,
        "model": result.model,
        "decision": "release",
        "gate": result.seq,
        "policy": result.policy,
        "bound_by": sorted({b.seq for b in bound}),
        "previous": current_release(store, entity),
        "at": utc_text(),
    }
    return result, store.append(kinds.RELEASE.pending(payload, actor)).seq


def rollback(
    store: Store, entity: str, to_version: str, reason: str, policy: Policy, actor: str
) -> tuple[GateResult, int | None]:
    """Make an earlier released version current again, if it passes the gate now.

    A rollback is a release of an older version: its policy must include every bound policy, the
    gate runs again (approvals revoked since, or evidence that no longer counts, block it), and the
    rollback is recorded only if the gate passes. Reversible: release or roll back again later.
    """
    row = Graph(store).resolve(entity)
    entity_id = str(parse_id(row.id).entity())
    target = Graph(store).resolve(to_version).id
    released = {r["model"] for r in release_history(store, entity_id) if r["decision"] == "release"}
    if target not in released:
        raise ReleaseError(f"{target} was never released; roll back only to a version that passed the gate")
    current = current_release(store, entity_id)
    if current == target:
        raise ReleaseError(f"{target} is already the current release")
    bound = check_release_policy(store, target, policy)
    check_upstream(store, target).require(f"not rolled back to {target}")
    result = record(store, evaluate(store, target, policy), actor)
    if result.outcome != "pass":
        return result, None
    payload = {
        "entity": entity_id,
        "model": target,
        "decision": "rollback",
        "gate": result.seq,
        "policy": result.policy,
        "bound_by": sorted({b.seq for b in bound}),
        "previous": current,
        "reason": reason,
        "at": utc_text(),
    }
    return result, store.append(kinds.RELEASE.pending(payload, actor)).seq


def current_release(store: Store, entity: str) -> str | None:
    found = release_history(store, entity)
    return found[-1]["model"] if found else None


def release_history(store: Store, entity: str) -> list[dict]:
    """Every release and rollback of a model, oldest first (the release read model)."""
    return [{"seq": r.seq, "actor": r.actor, **r.value.model_dump()} for r in kinds.RELEASE.valid(store, entity)]
