"""Every governance ledger entry kind, declared once (see ``lineage.kinds``).

Each declaration names the payload model, the scope a writer needs and the
subject the entry is about. Reads of governance state go through the read
models in ``governance.readmodels``, which read these kinds only; nothing else
parses governance payloads.

Scopes (``lineage.kinds.SCOPES``):

* ``govern``: facts about data and models (tags, owners, intended use,
  evaluations, explanation and fairness evidence);
* ``approve``: signed approvals and their revocation, gate runs, releases;
* ``admin``: signing keys and policy bindings.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from lineage.kinds import EntryKind, Payload

Text = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
Note = Annotated[str, StringConstraints(max_length=4096)]
Time = Annotated[str, StringConstraints(min_length=1, max_length=64)]
NodeRef = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Role = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^\S+$")]
TagName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^\S+$")]
Glob = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


# --- metadata (scope: govern) -----------------------------------------------------


class TagPayload(Payload):
    node: NodeRef
    tag: TagName
    action: Literal["add", "remove"]
    at: Time


class OwnersPayload(Payload):
    node: NodeRef
    owners: list[Text] = Field(min_length=1, max_length=100)
    at: Time


class IntendedUsePayload(Payload):
    node: NodeRef
    intended_use: Text
    limitations: list[Text] = Field(default_factory=list, max_length=100)
    at: Time


class EvaluationPayload(Payload):
    model: NodeRef
    metrics: dict[Text, float] = Field(min_length=1, max_length=1000)
    dataset: NodeRef | None = None
    at: Time

    @model_validator(mode="after")
    def _finite(self) -> EvaluationPayload:
        for name, value in self.metrics.items():
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"metric {name!r} is not a finite number")
        return self


class _Computed(Payload):
    """Evidence computed from a model file and a data file: what was loaded, by digest."""

    model: NodeRef
    dataset: NodeRef | None = None
    data_digest: Digest | None = None
    model_digest: Digest | None = None  # SHA-256 of the model file the evidence was computed on
    artifact_recorded: bool | None = None  # True: that file is the recorded artifact; False: the operator
    # allowed one lineage does not record (--allow-unrecorded-artifact); None: no model file was loaded
    at: Time


Num = float | None  # a measured value; None where it is undefined (a group with no positives)
Interval = Annotated[list[Num], Field(min_length=2, max_length=2)]


class Importance(Payload):
    feature: Text
    mean_abs_shap: float
    share: float


class Additivity(Payload):
    max: float
    p99: float


class ExplanationPayload(_Computed):
    """SHAP evidence, every field typed: a record a check cannot read is refused before it is stored."""

    explainer: Text
    output: Note = ""
    estimator: Note = ""
    rows_explained: int = Field(ge=0)
    rows_available: int = Field(ge=0)
    max_rows: int = Field(ge=0)
    background_rows: int = Field(ge=0)
    background_digest: Sha256 | None = None
    rows_digest: Sha256 | None = None
    seed: int
    features: list[Text] = Field(min_length=1)
    importance: list[Importance] = Field(min_length=1)
    additivity: Additivity | None = None
    proxies: dict[Text, dict[Text, float]] | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    seconds: float | None = None


class Disparity(Payload):
    value: Num
    ci: Interval | None = None


class GroupMetrics(Payload):
    group: Text
    n: int = Field(ge=0)
    too_small: bool
    selection_rate: Num = None
    tpr: Num = None
    fpr: Num = None
    fnr: Num = None
    accuracy: Num = None
    ci: dict[str, Interval | None] | None = None


class Bootstrap(Payload):
    resamples: int = Field(ge=0)
    seed: int
    confidence: float


DISPARITY_NAMES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
)


class FairnessPayload(_Computed):
    """Fairness evidence, every field typed (numbers are numbers, every disparity a check reads is present)."""

    target: Text | None = None
    protected: list[Text] = Field(min_length=1)
    rows: int = Field(ge=0)
    min_group_size: int = Field(ge=1)
    excluded_groups: list[Text] = Field(default_factory=list)
    groups: list[GroupMetrics] = Field(min_length=1)
    metrics: dict[str, Disparity]
    overall: dict[str, Num] = Field(default_factory=dict)
    bootstrap: Bootstrap | None = None
    versions: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _every_disparity(self) -> FairnessPayload:
        missing = [m for m in DISPARITY_NAMES if m not in self.metrics]
        if missing:
            raise ValueError(f"metrics lack {', '.join(missing)}")
        return self


# --- keys, approvals (scopes: admin, approve) ---------------------------------------


class KeyPayload(Payload):
    key_id: KeyId
    name: Text  # the person the key belongs to; quorums count distinct names
    roles: list[Role] = Field(min_length=1, max_length=50)
    public_key: dict[str, Any]
    identities: list[Text] = Field(default_factory=list, max_length=50)  # ledger actors this person records as
    at: Time


class KeyRevokedPayload(Payload):
    key_id: KeyId
    reason: Note = ""
    at: Time


class Signature(Payload):
    keyid: KeyId
    sig: Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=r"^[A-Za-z0-9+/=_-]+$")]


class Envelope(Payload):
    """A DSSE envelope exactly as ``securesystemslib`` writes it; nothing else is recorded."""

    payload: Annotated[str, StringConstraints(min_length=1, max_length=1 << 20, pattern=r"^[A-Za-z0-9+/=_-]+$")]
    payloadType: Literal["application/vnd.in-toto+json"]
    signatures: list[Signature] = Field(min_length=1, max_length=1)


class ApprovalPayload(Payload):
    """Only what the signature covers: the model the statement names, and the envelope itself."""

    model: NodeRef
    envelope: Envelope


class ApprovalRevokedPayload(Payload):
    """Revokes a signed statement (by its digest), wherever and however often it was recorded.

    Either its signer revokes it (``by_key`` and ``signature`` over ``revocation_bytes``), or an
    administrator does (no signature; the CLI requires admin authority for that).
    """

    statement: Sha256
    model: NodeRef
    reason: Note = ""
    by_key: KeyId | None = None
    signature: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{2,1024}$")] | None = None
    at: Time


def revocation_bytes(statement: str, model: str) -> bytes:
    """What a signer signs to revoke their own approval."""
    return f"auditgraph-revoke-approval:{model}:{statement}".encode()


# --- the gate (scopes: approve, admin) ----------------------------------------------


class PolicyBindingPayload(Payload):
    """Every release of a model matching ``models`` (an id or a glob) must pass these policies."""

    models: Glob
    policies: list[Text] = Field(min_length=1, max_length=50)
    reason: Note = ""
    replaces: int | None = None  # the binding of the same glob it replaces, when it drops a policy
    at: Time

    @model_validator(mode="after")
    def _sorted(self) -> PolicyBindingPayload:
        if self.policies != sorted(set(self.policies)):
            raise ValueError("policies must be sorted and distinct")
        if not re.match(r"^model:", self.models):
            raise ValueError("models must name model ids (model:<namespace>/<name>[@version]); * is a wildcard")
        return self


RuleStatus = Literal["pass", "fail", "warn", "not_evaluated", "not_applicable"]  # one list for checks, gate, ledger


class RuleResultPayload(Payload):
    rule: Text
    title: Note = ""
    rationale: Note = ""
    severity: Literal["block", "warn"]
    check: Text
    status: RuleStatus
    blocking: bool
    observed: Any = None
    threshold: Any = None
    reason: Note = ""
    evidence: list[str] = Field(default_factory=list)
    evidences: dict[str, list[str]] = Field(default_factory=dict)
    source: str = ""


class GatePayload(Payload):
    """One gate run: every rule's result, passed ones included, and the policy it ran under."""

    model: NodeRef
    outcome: Literal["pass", "blocked"]
    evaluated_at: Time
    policy: list[str] = Field(min_length=1)
    policy_digest: Sha256
    policy_digests: dict[str, Digest] = Field(default_factory=dict)
    results: list[RuleResultPayload] = Field(min_length=1)


class ReleasePayload(Payload):
    """A release (citing the gate run that allowed it) or a rollback to an earlier released version."""

    entity: NodeRef
    model: NodeRef
    decision: Literal["release", "rollback"]
    gate: int | None = None
    policy: list[str] = Field(default_factory=list)
    bound_by: list[int] = Field(default_factory=list)
    previous: NodeRef | None = None
    reason: Note = ""
    at: Time


TAG = EntryKind("governance.tag", TagPayload, "govern", lambda p: p.node)
OWNERS = EntryKind("governance.owners", OwnersPayload, "govern", lambda p: p.node)
INTENDED_USE = EntryKind("governance.intended_use", IntendedUsePayload, "govern", lambda p: p.node)
EVALUATION = EntryKind("governance.evaluation", EvaluationPayload, "govern", lambda p: p.model)
EXPLANATION = EntryKind("governance.explanation", ExplanationPayload, "govern", lambda p: p.model)
FAIRNESS = EntryKind("governance.fairness", FairnessPayload, "govern", lambda p: p.model)
KEY = EntryKind("governance.key", KeyPayload, "admin", lambda p: f"key:{p.key_id}")
KEY_REVOKED = EntryKind("governance.key_revoked", KeyRevokedPayload, "admin", lambda p: f"key:{p.key_id}")
APPROVAL = EntryKind("governance.approval", ApprovalPayload, "approve", lambda p: p.model)
APPROVAL_REVOKED = EntryKind("governance.approval_revoked", ApprovalRevokedPayload, "approve", lambda p: p.model)
POLICY_BINDING = EntryKind("governance.policy_binding", PolicyBindingPayload, "admin", lambda p: "policy:" + p.models)
GATE = EntryKind("governance.gate", GatePayload, "approve", lambda p: p.model)
RELEASE = EntryKind("governance.release", ReleasePayload, "approve", lambda p: p.entity)

# Declared to lineage through governance.plugin's register_entry_kinds hook.
KINDS = (
    TAG,
    OWNERS,
    INTENDED_USE,
    EVALUATION,
    EXPLANATION,
    FAIRNESS,
    KEY,
    KEY_REVOKED,
    APPROVAL,
    APPROVAL_REVOKED,
    POLICY_BINDING,
    GATE,
    RELEASE,
)
