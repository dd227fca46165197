"""The evidence bundle: everything a release report says, as canonical JSON.

Invariants:

* the bundle is drawn from the store as of one ledger head (``ledger_head``);
  every ledger entry it relies on is listed in ``cited`` with its hash, so it
  can be checked against the store later (``reports.verify``);
* a row that states facts from an entry names it (``seq``) and is made from its
  payload by ``reports.statements``; an issued bundle also carries an ``anchor``
  (``reports.anchor``: a signed checkpoint, and each cited entry's header,
  payload and inclusion proof), so it can be checked without the store;
* ``digest`` is SHA-256 over the canonical bytes of the bundle without the
  ``digest`` field; renderings print it, and nothing in a rendering comes from
  anywhere but the bundle, so the same bundle renders to the same bytes.
"""

from __future__ import annotations

from typing import Any

from governance import binding, readmodels, records
from governance.findings import fairness_by_grouping, latest_explanation
from governance.frameworks import FRAMEWORKS, TITLES
from governance.gate import current_release, history
from governance.subject import Subject
from lineage.canonical import canonical_bytes, sha256_digest
from lineage.ids import NodeKind, parse_id
from lineage.store import Store
from reports import statements

SCHEMA = "auditgraph.report/2"
MAX_GRAPH_NODES = 400


def collect(store: Store, model: str) -> dict[str, Any]:
    subject = Subject(store, model)
    head = store.head()
    cited: dict[int, str] = {}
    bundle: dict[str, Any] = {  # a JSON document (SCHEMA), as collect returns it
        "schema": SCHEMA,
        "model": _identity(store, subject),
        "documentation": _documentation(store, subject, cited),
        "lineage": _lineage(store, subject),
        "evaluations": _evaluations(store, subject, cited),
        "explanation": _explanation(store, subject, cited),
        "fairness": _fairness(store, subject, cited),
        "gate": _gate(store, subject, cited),
        "gate_history": _gate_history(store, subject, cited),
        "bound_policies": [
            {"policy": b.name, "rules_digest": b.digest, "glob": b.glob, "seq": _cite(store, cited, b.seq)}
            for b in binding.required(store, subject.id)
        ],
        "binding_history": [{**h, "seq": _cite(store, cited, h["seq"])} for h in binding.history(store, subject.id)],
        "approvals": _approvals(subject, cited),
        "ledger_head": {"seq": head.seq, "hash": head.hash},
    }
    bundle["not_evaluated"] = not_evaluated(bundle)
    bundle["frameworks"] = coverage(bundle["gate"]["rules"] if bundle["gate"] else [])
    bundle["cited"] = [{"seq": s, "hash": h} for s, h in sorted(cited.items())]
    return seal(bundle)


def seal(bundle: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in bundle.items() if k != "digest"}
    return {**body, "digest": sha256_digest(canonical_bytes(body))}


def bundle_digest(bundle: dict[str, Any]) -> str:
    return sha256_digest(canonical_bytes({k: v for k, v in bundle.items() if k != "digest"}))


def _cite(store: Store, cited: dict[int, str], seq: int) -> int:
    entry = next(store.entries(after_seq=seq - 1, limit=1), None)
    if entry is not None and entry.seq == seq:
        cited[seq] = entry.hash
    return seq


def _identity(store: Store, subject: Subject) -> dict[str, Any]:
    """Who the model version is. Its artifact is the first one recorded; approval and release state
    come from the read models (``governance.readmodels``, the release history), never from facets."""
    facets = store.facets(subject.id)
    model = facets.get("auditgraph_model") or {}
    node = subject.row
    artifact = readmodels.artifact(store, subject.id)
    entity = str(parse_id(subject.id).entity())
    return {
        "id": subject.id,
        "entity": entity,
        "namespace": node.namespace,
        "name": node.name,
        "version": node.version,
        "artifact_digest": f"sha256:{artifact.digest}" if artifact.digest else None,
        "artifact_problem": artifact.problem or None,
        "artifact_uri": model.get("artifactUri"),
        "framework": model.get("framework"),
        "task": model.get("task"),
        "recorded": node.first_seen,
        "released": current_release(store, entity) == subject.id,
        **statements.signed(
            {"role": a.role, "decision": a.decision, "approver": a.approver, "signature": "valid" if a.valid else ""}
            for a in subject.approvals
        ),
    }


def _documentation(store: Store, subject: Subject, cited: dict[int, str]) -> dict[str, Any]:
    owners = records.owners_of(store, subject.id)
    use = records.intended_use_of(store, subject.id)
    for item in (owners, use):
        for seq in item.seqs if item else ():
            _cite(store, cited, seq)
    return {
        "owners": owners.value if owners else [],
        "intended_use": use.value["intended_use"] if use else None,
        "limitations": use.value.get("limitations", []) if use else [],
        "seqs": {"owners": owners.seqs[-1] if owners else None, "intended_use": use.seqs[-1] if use else None},
    }


def _lineage(store: Store, subject: Subject) -> dict[str, Any]:
    runs = []
    for run in sorted(subject.training_runs):
        row = store.nodes([run]).get(run)
        facets = store.facets(run)
        job = [e.dst for e in store.edges([run], "downstream", ["RUN_OF"])]
        parent = [e.dst for e in store.edges([run], "downstream", ["CHILD_OF"])]
        code = [e.src for e in store.edges([run], "upstream", ["BUILT"])]
        training = facets.get("auditgraph_training") or {}
        runs.append(
            {
                "id": run,
                "job": job[0] if job else None,
                "parent": parent[0] if parent else None,
                "state": (facets.get("_state") or {}).get("eventType"),
                "started": row.first_seen if row else None,
                "ended": row.last_seen if row else None,
                "code": code,
                "code_dirty": training.get("codeDirty"),
                "params": training.get("params", {}),
            }
        )
    inputs = []
    for version in subject.inputs:
        facets = store.facets(version)
        fields = [f.get("name") for f in (facets.get("schema") or {}).get("fields", []) if isinstance(f, dict)]
        inputs.append(
            {
                "id": version,
                "fields": fields,
                "tags": sorted(records.tags_of(store, version)),
                "version_declared": "version" in facets,
            }
        )
    walk = subject.upstream
    nodes = [n for n in walk.nodes if n.kind != NodeKind.JOB][:MAX_GRAPH_NODES]
    keep = {n.id for n in nodes}
    return {
        "training_runs": runs,
        "inputs": inputs,
        "upstream_count": len(walk.nodes),
        "truncated": walk.truncated or len(nodes) < len([n for n in walk.nodes if n.kind != NodeKind.JOB]),
        "graph": {
            "nodes": [{"id": n.id, "kind": n.kind, "distance": n.distance, "job": n.job} for n in nodes],
            "edges": [
                {"src": e.src, "type": e.type, "dst": e.dst} for e in walk.edges if e.src in keep and e.dst in keep
            ],
        },
    }


def _evaluations(store: Store, subject: Subject, cited: dict[int, str]) -> list[dict[str, Any]]:
    return [statements.evaluation(_cite(store, cited, seq), p) for seq, p in records.evaluations_of(store, subject.id)]


def _explanation(store: Store, subject: Subject, cited: dict[int, str]) -> dict[str, Any] | None:
    found = latest_explanation(store, subject.id)
    if not found:
        return None
    seq, e = found
    return statements.explanation(_cite(store, cited, seq), e)


def _fairness(store: Store, subject: Subject, cited: dict[int, str]) -> list[dict[str, Any]]:
    latest = fairness_by_grouping(store, subject.id)
    out = []
    for key in sorted(latest):
        seq, p = latest[key]
        out.append(statements.fairness(_cite(store, cited, seq), p))
    return out


def _gate(store: Store, subject: Subject, cited: dict[int, str]) -> dict[str, Any] | None:
    """The decisive gate run, whose outcome the report leads with.

    With policies bound to the model: the latest run whose policies include every bound policy
    (by rule digest); a run under any other policy set decides nothing. Without a binding: the run
    the latest release of this version cites, else the latest run. None if no run qualifies.
    """
    runs = history(store, subject.id)
    bound = {b.digest for b in binding.required(store, subject.id)}
    if bound:
        covering = [r for r in runs if bound <= set(r.result.policy_digests.values())]
        decisive, why = (covering[-1] if covering else None), "the latest gate run under every bound policy"
    else:
        released = [r for r in runs if r.release]
        decisive = released[-1] if released else (runs[-1] if runs else None)
        why = "the gate run its release cites" if released else "the latest gate run"
    if decisive is None:
        return None
    result = decisive.result
    now, unchecked = _recheck(store, subject, result)
    shown = now if now is not None and now.outcome != result.outcome else result
    _cite(store, cited, decisive.seq)  # the entry that recorded the run: result.seq, typed optional for unrecorded runs
    for r in shown.results:
        for ref in r.evidence:
            if ref.startswith("ledger:"):
                _cite(store, cited, int(ref.split(":")[1]))
    recheck = (
        {"holds": None, "why": unchecked}
        if now is None
        else {
            "holds": now.outcome == result.outcome,
            "recorded_outcome": result.outcome,
            "outcome_now": now.outcome,
            "why": ""
            if now.outcome == result.outcome
            else f"the recorded run {result.outcome}ed; the same policy {'blocks' if now.outcome == 'blocked' else 'passes'} "
            "on what the ledger holds now",
        }
    )
    recorded = statements.recorded_gate(result, decisive.actor)
    return {
        "seq": recorded["seq"],
        "outcome": shown.outcome,
        "evaluated_at": recorded["evaluated_at"],
        "decisive": why,
        "actor": recorded["actor"],
        "policy": recorded["policy"],
        "policy_digest": recorded["policy_digest"],
        "recheck": recheck,
        "rules": statements.rules(shown),
    }


def _recheck(store: Store, subject: Subject, result) -> tuple[Any, str]:
    """The decisive run's policy evaluated again on the ledger as it is now (nothing recorded).

    A verdict is only as good as the facts under it: an approval revoked since, a veto signed since,
    or evidence set aside since changes it. Returns (result now, '') or (None, why it could not run).
    """
    from governance.binding import policy_digests
    from governance.errors import RuleFileError
    from governance.gate import evaluate
    from governance.rules import load_policy

    names = [source.removeprefix("pack:") for source in result.policy]
    try:
        policy = load_policy(names)
    except RuleFileError as e:
        return None, f"not re-checked: the policy cannot be loaded again ({str(e).splitlines()[0]})"
    if result.policy_digests and policy_digests(policy) != result.policy_digests:
        return None, "not re-checked: the policy's rules changed since the recorded run"
    return evaluate(store, subject.id, policy), ""


def _gate_history(store: Store, subject: Subject, cited: dict[int, str]) -> list[dict[str, Any]]:
    """Every gate run on this version, oldest first: a report shows each policy tried, not only the one that passed."""
    return [
        statements.gate_run(_cite(store, cited, run.seq), run.actor, run.recorded_at, run.result, run.release)
        for run in history(store, subject.id)
    ]


def _approvals(subject: Subject, cited: dict[int, str]) -> list[dict[str, Any]]:
    """Each approval, citing the key registration it names too (the approver's name and public key)."""
    registered = readmodels.keys(subject.store)
    out = []
    for a in subject.approvals:
        _cite(subject.store, cited, a.seq)
        key = registered.get(a.key_id)
        key_seq = _cite(subject.store, cited, key.seq) if key else None
        out.append(
            {
                "seq": a.seq,
                "role": a.role,
                "decision": a.decision,
                "approver": a.approver,
                "key_id": a.key_id,
                "key_seq": key_seq,
                "time": a.time,
                "evidence_digest": a.evidence_digest,
                "signature": "valid" if a.valid else "invalid",
                "problem": a.problem,
            }
        )
    return out


def not_evaluated(bundle: dict[str, Any]) -> list[dict[str, str]]:
    missing = []
    if bundle["gate"] is None:
        missing.append({"what": "release gate", "why": "no gate run is recorded for this version"})
    else:
        missing += [
            {"what": r["rule"], "why": r["reason"]} for r in bundle["gate"]["rules"] if r["status"] == "not_evaluated"
        ]
    if bundle["explanation"] is None:
        missing.append({"what": "explanation", "why": "no SHAP explanation is recorded"})
    if not bundle["fairness"]:
        missing.append({"what": "fairness", "why": "no fairness assessment is recorded"})
    if not bundle["evaluations"]:
        missing.append({"what": "evaluations", "why": "no evaluation metrics are recorded"})
    return missing


def _coverage_state(by: list[dict[str, str]]) -> str:
    """Only a pass is evidence: a rule that had nothing to check, or could not check, evidences nothing."""
    statuses = {b["status"] for b in by}
    if statuses & {"fail", "warn"}:
        return "evidenced, failing"
    if "not_evaluated" in statuses:
        return "not evidenced (not evaluated)"
    if "pass" in statuses:
        return "evidenced"
    return "not evidenced (nothing to check)" if statuses else "not evidenced"


def coverage(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each framework, each item: the rules that evidence it (with status), or none."""
    out = []
    for framework, items in FRAMEWORKS.items():
        rows = []
        for item, title in items.items():
            by = [
                {"rule": r["rule"], "status": r["status"]}
                for r in rules
                if item in r.get("evidences", {}).get(framework, [])
            ]
            rows.append({"item": item, "title": title, "rules": by, "state": _coverage_state(by)})
        out.append({"framework": framework, "title": TITLES[framework], "items": rows})
    return out
