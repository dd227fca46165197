"""What a report states, derived from the ledger entries it cites: once for issuing, again for verifying.

Each row of a bundle that names a ledger entry (``seq``) states facts read from
that entry's payload. The functions here make those rows from a payload as its
kind's model reads it; ``reports.bundle`` builds its rows with them, and
``check`` runs them again on the payloads an anchored bundle carries
(``reports.anchor``), so a verifier without the store sees that every row comes
from the entry it cites, field for field, and not only that the entry exists.

Checked offline: evaluations, the explanation, fairness, the decisive gate run
as recorded, the gate history, policy bindings, owners and intended use, and each
approval's statement, signer and signature. ``UNCHECKED`` names what no cited
entry holds, which only a check against the store can speak to.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any

from governance import kinds
from governance.gate import GateResult
from governance.readmodels import Key, read_statement, verify_signature
from lineage.canonical import canonical_json
from lineage.errors import Unavailable
from lineage.kinds import EntryKind, Payload

EXPLANATION_FIELDS = (
    "explainer",
    "output",
    "estimator",
    "rows_explained",
    "rows_available",
    "background_rows",
    "background_digest",
    "seed",
    "importance",
    "additivity",
    "proxies",
    "versions",
    "dataset",
    "data_digest",
    "model_digest",
    "artifact_recorded",
    "at",
)
UNCHECKED = (
    "not checked against cited entries: the model's identity and lineage (read from the graph, which no cited "
    "entry holds); that nothing was left out, and whether an approval was revoked or a gate run led to a release "
    "(entries recorded beside the cited ones); and the gate's re-check on the ledger as of issuance"
)


# --- rows, from payloads ----------------------------------------------------------------------------


def evaluation(seq: int, p: Mapping[str, Any]) -> dict[str, Any]:
    return {"seq": seq, "metrics": p["metrics"], "dataset": p["dataset"], "at": p["at"]}


def explanation(seq: int, e: Mapping[str, Any]) -> dict[str, Any]:
    return {"seq": seq, **{k: e.get(k) for k in EXPLANATION_FIELDS}}


def fairness(seq: int, p: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "seq": seq,
        "protected": p["protected"],
        "rows": p["rows"],
        "groups": p["groups"],
        "metrics": p["metrics"],
        "excluded_groups": p["excluded_groups"],
        "min_group_size": p["min_group_size"],
        "bootstrap": p["bootstrap"],
        "target": p.get("target"),
        "dataset": p.get("dataset"),
        "model_digest": p.get("model_digest"),
        "artifact_recorded": p.get("artifact_recorded"),
        "at": p["at"],
    }


def gate_run(seq: int, actor: str, recorded_at: str, result: GateResult, release: bool) -> dict[str, Any]:
    return {
        "seq": seq,
        "policy": result.policy,
        "outcome": result.outcome,
        "blocking": len(result.blocking),
        "actor": actor,
        "recorded_at": recorded_at,
        "release": release,
    }


def recorded_gate(result: GateResult, actor: str) -> dict[str, Any]:
    """The fields of the decisive gate row that come from the run as recorded."""
    return {
        "seq": result.seq,
        "evaluated_at": result.evaluated_at,
        "actor": actor,
        "policy": result.policy,
        "policy_digest": result.policy_digest,
    }


def rules(result: GateResult) -> list[dict[str, Any]]:
    return [r.model_dump(exclude={"source"}) for r in result.results]


def signed(approvals: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The identity's summary of the approval rows: valid approvals and rejections, and who signed what per
    role (the report states facts; whether that is enough is the gate's verdict)."""
    counted = [a for a in approvals if a["signature"] == "valid"]
    by_role: dict[str, dict[str, list[str]]] = {}
    for a in counted:
        people = by_role.setdefault(a["role"], {"approve": [], "reject": []})[a["decision"]]
        if a["approver"] not in people:
            people.append(a["approver"])
    return {
        "valid_approvals": len([a for a in counted if a["decision"] == "approve"]),
        "valid_rejections": len([a for a in counted if a["decision"] == "reject"]),
        "signed_by_role": by_role,
    }


# --- checking rows against the payloads an anchor carries ----------------------------------------------

Cited = Mapping[int, Mapping[str, Any]]  # seq -> an anchored entry whose hash and inclusion were proven


class Findings:
    """What ``check`` found: problems (the report states what its entry does not), rows checked, notes."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.rows = 0


def check(bundle: Mapping[str, Any], proven: Cited) -> Findings:
    found = Findings()
    for where, row, kind, expect in _statements(bundle):
        seq = row["seq"]
        value = _payload(where, seq, kind, proven, found)
        if value is None:
            continue
        other = _about(kind, proven[seq]["header"], value, bundle["model"])
        if other:
            found.problems.append(
                f"{where} cites ledger entry {seq}, which is about {other}, not {bundle['model']['id']}"
            )
            continue
        try:
            expected = expect(row, value, proven[seq]["header"], proven)
        except (ValueError, Unavailable) as e:
            found.problems.append(f"{where} (ledger entry {seq}): {e}")
            continue
        for field, want in expected.items():
            if canonical_json(row.get(field)) != canonical_json(want):
                found.problems.append(
                    f"{where} (ledger entry {seq}) states {field} = {_short(row.get(field))}; "
                    f"the entry it cites records {_short(want)}"
                )
                break
        else:
            found.rows += 1
    return found


Expect = Callable[[Mapping[str, Any], Any, Mapping[str, Any], Cited], dict[str, Any]]  # (row, payload, header, proven)


def _statements(bundle: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], EntryKind, Expect]]:
    for row in bundle["evaluations"]:
        yield "evaluations", row, kinds.EVALUATION, _evaluation
    if bundle["explanation"]:
        yield "explanation", bundle["explanation"], kinds.EXPLANATION, _explanation
    for row in bundle["fairness"]:
        yield "fairness", row, kinds.FAIRNESS, _fairness
    for row in bundle["gate_history"]:
        yield "gate history", row, kinds.GATE, _gate_history
    if bundle["gate"]:
        yield "gate", bundle["gate"], kinds.GATE, _decisive
    for row in bundle["binding_history"]:
        yield "binding history", row, kinds.POLICY_BINDING, _binding
    for row in bundle["bound_policies"]:
        yield "bound policies", row, kinds.POLICY_BINDING, _bound
    documentation = bundle["documentation"]
    cites = documentation.get("seqs") or {}
    if cites.get("owners") is not None:
        yield "owners", {"seq": cites["owners"], **documentation}, kinds.OWNERS, _owners
    if cites.get("intended_use") is not None:
        yield "intended use", {"seq": cites["intended_use"], **documentation}, kinds.INTENDED_USE, _intended_use
    for row in bundle["approvals"]:
        yield "approvals", row, kinds.APPROVAL, _approval


def stated(bundle: Mapping[str, Any]) -> set[int]:
    """The entries the report states facts from: their payloads travel in its anchor."""
    seqs = {row["seq"] for _, row, _, _ in _statements(bundle)}
    return seqs | {a["key_seq"] for a in bundle["approvals"] if a.get("key_seq")}


def _payload(where: str, seq: int, kind: EntryKind, proven: Cited, found: Findings) -> Payload | None:
    item = proven.get(seq)
    if item is None:
        found.problems.append(f"{where} cites ledger entry {seq}, which the report's anchor does not prove")
        return None
    if item["header"]["kind"] != kind.name:
        found.problems.append(
            f"{where} cites ledger entry {seq} as a {kind.name} entry; it is a {item['header']['kind']} entry"
        )
        return None
    if not isinstance(item.get("payload"), str):
        found.problems.append(
            f"{where} (ledger entry {seq}): its payload is not in the bundle, so it cannot be checked"
        )
        return None
    try:
        return kind.validate(json.loads(item["payload"]))
    except ValueError as e:
        found.problems.append(f"{where} (ledger entry {seq}): its payload does not read as a {kind.name}: {e}")
        return None


def _about(kind: EntryKind, header: Mapping[str, Any], v: Any, model: Mapping[str, Any]) -> str:
    """'' if the entry is about the report's model version (owners and intended use: or its model; a binding:
    a glob matching either), else what it is about."""
    if kind is kinds.POLICY_BINDING:
        return "" if fnmatchcase(model["id"], v.models) or fnmatchcase(model["entity"], v.models) else v.models
    allowed = {model["id"], model["entity"]} if kind in (kinds.OWNERS, kinds.INTENDED_USE) else {model["id"]}
    subjects = {header["subject"], kind.subject(v)}
    return "" if subjects <= allowed else ", ".join(sorted(str(s) for s in subjects - allowed))


def _evaluation(row: Mapping[str, Any], v: Any, header: Mapping[str, Any], proven: Cited) -> dict[str, Any]:
    return evaluation(header["seq"], v.model_dump())


def _explanation(row: Mapping[str, Any], v: Any, header: Mapping[str, Any], proven: Cited) -> dict[str, Any]:
    return explanation(header["seq"], v.model_dump())


def _fairness(row: Mapping[str, Any], v: Any, header: Mapping[str, Any], proven: Cited) -> dict[str, Any]:
    return fairness(header["seq"], v.model_dump())


def _gate_history(row: Mapping[str, Any], v: Any, header: Mapping[str, Any], proven: Cited) -> dict[str, Any]:
    made = gate_run(header["seq"], header["actor"], header["recorded_at"], GateResult(**v.model_dump()), False)
    return {k: made[k] for k in ("policy", "outcome", "blocking", "actor", "recorded_at")}


def _decisive(gate: Mapping[str, Any], v: Any, header: Mapping[str, Any], proven: Cited) -> dict[str, Any]:
    """The recorded run; its rules and outcome too unless the report shows the re-check's (which differs)."""
    result = GateResult(**v.model_dump(), seq=header["seq"])
    expected = recorded_gate(result, header["actor"])
    if gate["recheck"].get("holds") is False:
        return {**expected, "recheck": {**gate["recheck"], "recorded_outcome": result.outcome}}
    return {**expected, "outcome": result.outcome, "rules": rules(result)}


def _binding(row: Mapping[str, Any], v: Any, header: Mapping[str, Any], proven: Cited) -> dict[str, Any]:
    return {
        "actor": header["actor"],
        "models": v.models,
        "reason": v.reason,
        "policies": [p.rpartition(" ")[0] for p in v.policies],
        "replaces": v.replaces,
    }


def _bound(row: Mapping[str, Any], v: Any, header: Mapping[str, Any], proven: Cited) -> dict[str, Any]:
    if f"{row['policy']} {row['rules_digest']}" not in v.policies:
        raise ValueError(f"the binding does not name {row['policy']} with rules {row['rules_digest']}")
    return {"glob": v.models}


def _owners(row: Mapping[str, Any], v: Any, header: Mapping[str, Any], proven: Cited) -> dict[str, Any]:
    return {"owners": v.owners}


def _intended_use(row: Mapping[str, Any], v: Any, header: Mapping[str, Any], proven: Cited) -> dict[str, Any]:
    return {"intended_use": v.intended_use, "limitations": v.limitations}


def _approval(row: Mapping[str, Any], v: Any, header: Mapping[str, Any], proven: Cited) -> dict[str, Any]:
    """The signed statement's fields; the approver's name from the key registration the row cites, and a
    'valid' signature verified with that key (revocations, recorded elsewhere, need the store)."""
    pred = read_statement(v.envelope).predicate
    expected = {
        "role": pred.role,
        "decision": pred.decision,
        "key_id": pred.keyId,
        "time": pred.time,
        "evidence_digest": pred.evidenceDigest,
    }
    if row["signature"] != "valid":
        return expected
    key_item = proven.get(row.get("key_seq") or 0)
    if key_item is None or key_item["header"]["kind"] != kinds.KEY.name or key_item.get("payload") is None:
        raise ValueError("its signature is stated valid, but the key registration it cites is not proven")
    p = kinds.KEY.validate(json.loads(key_item["payload"]))
    key = Key(p.key_id, p.name, tuple(p.roles), p.public_key, key_item["header"]["seq"], key_item["header"]["actor"])
    problem = verify_signature(v.envelope, key)
    if problem:
        raise ValueError(f"its signature is stated valid, but with the key of entry {key.seq}: {problem}")
    return {**expected, "approver": p.name}


def _short(value: Any) -> str:
    text = canonical_json(value)
    return text if len(text) <= 120 else text[:117] + "..."
