"""The release gate: evaluate a policy against a model version, record it, decide.

Fail closed: a ``block`` rule that fails *or cannot be evaluated* blocks; a
``warn`` rule that fails is reported as ``warn`` and does not block. A policy
with no rule that applies to the model is an error, not a pass. Every gate
run is a ``governance.gate`` ledger entry holding every rule's result, passed
ones included; a release is a ``governance.release`` entry citing the gate
run that allowed it.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

from pydantic import BaseModel

from governance.checks import Decision, registry
from governance.errors import GovernanceError
from governance.records import now
from governance.rules import Policy, Rule
from governance.subject import Subject
from lineage.canonical import digest
from lineage.errors import LineageError
from lineage.ids import parse_id
from lineage.ledger import Pending
from lineage.store import Store

GATE, RELEASE = "governance.gate", "governance.release"


class RuleResult(BaseModel):
    rule: str
    title: str
    rationale: str
    severity: str
    check: str
    status: Literal["pass", "fail", "warn", "not_evaluated"]
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
    results: list[RuleResult]
    seq: int | None = None

    @property
    def blocking(self) -> list[RuleResult]:
        return [r for r in self.results if r.blocking]


def evaluate(store: Store, model: str, policy: Policy) -> GateResult:
    subject = Subject(store, model)
    rules = policy.applicable(subject.id)
    if not rules:
        raise GovernanceError(f"no rule in {', '.join(policy.sources)} applies to {subject.id}; "
                              "a gate with nothing to check does not pass")
    results = [_run(rule, subject) for rule in rules]
    results.sort(key=lambda r: (not r.blocking, r.status == "pass", r.rule))
    policy_digest = digest([r.model_dump(exclude={"source"}) for r in policy.rules])
    return GateResult(model=subject.id, outcome="blocked" if any(r.blocking for r in results) else "pass",
                      evaluated_at=now(), policy=policy.sources, policy_digest=policy_digest, results=results)


def _run(rule: Rule, subject: Subject) -> RuleResult:
    check = registry()[rule.check]()
    try:
        decision = check.evaluate(subject, check.Params.model_validate(rule.params))
    except LineageError as e:
        decision = Decision(status="not_evaluated", reason=f"the check could not run: {e}")
    status = "warn" if decision.status == "fail" and rule.severity == "warn" else decision.status
    blocking = rule.severity == "block" and decision.status in ("fail", "not_evaluated")
    return RuleResult(rule=rule.id, title=rule.title, rationale=rule.rationale, severity=rule.severity,
                      check=rule.check, status=status, blocking=blocking, observed=decision.observed,
                      threshold=decision.threshold, reason=decision.reason, evidence=decision.evidence,
                      evidences=rule.evidences, source=rule.source)


def record(store: Store, result: GateResult, actor: str) -> GateResult:
    payload = json.loads(result.model_dump_json(exclude={"seq"}))
    ack = store.append(Pending(GATE, payload, actor, subject=result.model))
    return result.model_copy(update={"seq": ack.seq})


def latest_gate(store: Store, model: str) -> GateResult | None:
    found = list(store.entries(subject=model, kind=GATE, limit=None))
    if not found:
        return None
    return GateResult(**json.loads(found[-1].payload), seq=found[-1].seq)


def junit(result: GateResult) -> str:
    """JUnit XML: one test case per rule; blocking results are failures, warnings are skipped with a note."""
    failures = sum(r.blocking for r in result.results)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuite name={quoteattr("auditgraph gate " + result.model)} tests="{len(result.results)}" '
             f'failures="{failures}" errors="0" skipped="{sum(r.status == "warn" for r in result.results)}" '
             f'timestamp={quoteattr(result.evaluated_at)}>']
    for r in result.results:
        detail = json.dumps({"observed": r.observed, "threshold": r.threshold, "evidence": r.evidence},
                            sort_keys=True, default=str)
        lines.append(f'  <testcase classname={quoteattr("auditgraph." + r.check)} name={quoteattr(r.rule)}>')
        if r.blocking:
            lines.append(f'    <failure message={quoteattr(r.reason or r.status)} type="{r.status}">{escape(detail)}</failure>')
        elif r.status == "warn":
            lines.append(f'    <skipped message={quoteattr("warning: " + r.reason)}/>')
        lines.append(f"    <system-out>{escape(r.title + ': ' + r.reason)}</system-out>")
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"


# --- releases ----------------------------------------------------------------

def release(store: Store, model: str, policy: Policy, actor: str) -> tuple[GateResult, int | None]:
    """Run the gate; record a release only if it passes. Returns the gate result and the release's seq."""
    result = record(store, evaluate(store, model, policy), actor)
    if result.outcome != "pass":
        return result, None
    entity = str(parse_id(result.model).entity())
    payload = {"entity": entity, "model": result.model, "decision": "release", "gate": result.seq,
               "previous": current_release(store, entity), "at": now()}
    return result, store.append(Pending(RELEASE, payload, actor, subject=entity)).seq


def rollback(store: Store, entity: str, to_version: str, reason: str, actor: str) -> int:
    """Make an earlier released version current again. Reversible: release or roll back again later."""
    row = store.resolve(entity)
    entity_id = str(parse_id(row.id).entity())
    target = store.resolve(to_version).id
    released = {json.loads(e.payload)["model"] for e in store.entries(subject=entity_id, kind=RELEASE, limit=None)
                if json.loads(e.payload)["decision"] == "release"}
    if target not in released:
        raise GovernanceError(f"{target} was never released; roll back only to a version that passed the gate")
    current = current_release(store, entity_id)
    if current == target:
        raise GovernanceError(f"{target} is already the current release")
    payload = {"entity": entity_id, "model": target, "decision": "rollback", "previous": current,
               "reason": reason, "at": now()}
    return store.append(Pending(RELEASE, payload, actor, subject=entity_id)).seq


def current_release(store: Store, entity: str) -> str | None:
    found = list(store.entries(subject=entity, kind=RELEASE, limit=None))
    return json.loads(found[-1].payload)["model"] if found else None


def release_history(store: Store, entity: str) -> list[dict]:
    return [{"seq": e.seq, **json.loads(e.payload)} for e in store.entries(subject=entity, kind=RELEASE, limit=None)]
