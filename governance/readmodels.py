"""Read models: the only way governance state is read from the ledger.

Each function replays typed entries (``governance.kinds``) and computes an
answer that says which entries it came from. Nothing here trusts a facet or
the mere presence of an entry:

* an approval counts only if its signature verifies against a key registered
  before it, the key may sign for the role and is not revoked, the signed
  statement is well formed (DSSE ``payloadType``, in-toto ``_type``, our
  ``predicateType``), names this model version and its recorded artifact, has
  not been revoked, and was not counted already (the same statement recorded
  twice counts once);
* an approval counts only if the ledger head it signs is an entry of this
  ledger at or before it (``anchor_problem``): a statement that names the
  head's sequence number (``ledgerSeq``) is checked by reading that one
  entry; one signed before that field existed by looking for the hash,
  scanning back from the approval (approvers sign the head they were shown,
  a few entries before their approval, so the scan is short unless the claim
  is false);
* a malformed stored entry is reported, never guessed at, and never counts.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints, ValidationError

from governance import kinds as k
from lineage.canonical import sha256_hex
from lineage.extras import require
from lineage.kinds import Malformed, Payload, Record, describe
from lineage.store import Store

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://auditgraph.dev/attestations/approval/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


# --- keys ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    key_id: str
    name: str
    roles: tuple[str, ...]
    public_key: dict
    seq: int
    registered_by: str
    revoked: bool = False
    revoked_seq: int | None = None
    identities: tuple[str, ...] = ()  # the ledger actors this person records entries as

    def acts_as(self, actor: str) -> bool:
        """Whether a ledger actor (``cli:<login>``, ``apikey:<id>:<name>``, ...) is one of this person's identities."""
        return any(actor == i or actor.endswith(":" + i) for i in self.identities)

    @property
    def person(self) -> str:
        """Who the key belongs to, for counting distinct people: the registered name, case and spacing folded."""
        return " ".join(self.name.casefold().split())

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("public_key")
        out["roles"], out["identities"] = list(self.roles), list(self.identities)
        return out


def keys(store: Store) -> dict[str, Key]:
    """Every registered signing key, first registration wins; revoked ones flagged."""
    found: dict[str, Key] = {}
    for r in k.KEY.valid(store):
        p = r.value
        if p.key_id not in found:
            found[p.key_id] = Key(
                p.key_id, p.name, tuple(p.roles), p.public_key, r.seq, r.actor, identities=tuple(p.identities)
            )
    for revocation in k.KEY_REVOKED.valid(store):
        key = found.get(revocation.value.key_id)
        if key is not None and not key.revoked:
            found[key.key_id] = Key(
                **{
                    **asdict(key),
                    "roles": key.roles,
                    "identities": key.identities,
                    "revoked": True,
                    "revoked_seq": revocation.seq,
                }
            )
    return found


# --- approvals ---------------------------------------------------------------------------

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class _Digest(Payload):
    sha256: Sha256


class _Subject(Payload):
    name: k.NodeRef
    digest: _Digest


def _whole(value: Any) -> Any:
    """A whole number signed as JSON: the in-toto Statement (a protobuf Struct) writes 42 as 42.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class Predicate(Payload):
    keyId: k.KeyId
    role: k.Role
    decision: Literal["approve", "reject"]
    time: k.Time
    evidenceDigest: k.Digest
    ledgerHead: Sha256
    ledgerSeq: Annotated[int, BeforeValidator(_whole), Field(ge=1, le=1 << 53)] | None = None  # absent: signed
    # before auditgraph recorded it; the head is then found by its hash
    comment: k.Note = ""


class Statement(Payload):
    type_: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type")
    subject: list[_Subject] = Field(min_length=1, max_length=1)
    predicateType: Literal["https://auditgraph.dev/attestations/approval/v1"]
    predicate: Predicate


@dataclass(frozen=True)
class Approval:
    seq: int
    model: str
    role: str
    decision: str
    approver: str  # the registered name of the signing key, never free text
    key_id: str
    time: str
    evidence_digest: str
    statement: str  # SHA-256 of the signed statement bytes: what a revocation names
    recorded_by: str
    valid: bool
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def statement_digest(envelope_payload_b64: str) -> str:
    return sha256_hex(_b64(envelope_payload_b64))


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def read_statement(envelope: k.Envelope) -> Statement:
    """The signed statement inside an envelope, checked for shape (not for signature)."""
    try:
        return Statement.model_validate_json(_b64(envelope.payload))
    except (ValidationError, ValueError) as e:
        reason = describe(e) if isinstance(e, ValidationError) else str(e)
        raise ValueError(f"the signed statement is not an auditgraph approval: {reason}") from None


def verify_signature(envelope: k.Envelope, key: Key) -> str:
    """'' if the envelope's one signature verifies against ``key``, else why not."""
    require("signing")  # without it nothing is verified: MissingExtra, never a pass
    from securesystemslib.dsse import Envelope as DsseEnvelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    if envelope.signatures[0].keyid != key.key_id:
        return f"the envelope is signed by {envelope.signatures[0].keyid}, not by the key the statement names"
    try:
        dsse = DsseEnvelope.from_dict(envelope.model_dump(mode="json"))
        dsse.verify([SSlibKey.from_dict(key.key_id, dict(key.public_key))], 1)
    except (VerificationError, ValueError, TypeError, KeyError) as e:
        return f"signature does not verify ({type(e).__name__})"
    return ""


@dataclass(frozen=True)
class Artifact:
    """The artifact a model version was recorded with: fixed by its writer's first record, disagreements kept.

    The writer is the run whose event first (in ledger order) named the version as an output; a digest
    recorded by any other run is never adopted, only reported.
    """

    digest: str | None  # SHA-256 hex of the first artifact its writer recorded, None if none was recorded
    seq: int | None  # the ledger entry that recorded it
    conflicts: tuple[tuple[int, str], ...] = ()  # later entries that recorded another digest
    foreign: tuple[tuple[int, str], ...] = ()  # entries of other runs that recorded a digest for this version

    @property
    def foreign_note(self) -> str:
        """Digests other runs recorded for this version: never adopted, reported (not a verdict)."""
        other = [(seq, d) for seq, d in self.foreign if d != self.digest]
        if not other:
            return ""
        seq, d = other[0]
        return f"ledger:{seq}, by a run other than the version's writer, recorded sha256:{d}; not adopted" + (
            f" (and {len(other) - 1} more)" if len(other) > 1 else ""
        )

    @property
    def problem(self) -> str:
        if not self.conflicts:
            return ""
        seq, other = self.conflicts[0]
        return (
            f"the artifact recorded for this version changed: ledger:{self.seq} recorded sha256:{self.digest}, "
            f"ledger:{seq} sha256:{other}"
            + (f" (and {len(self.conflicts) - 1} more)" if len(self.conflicts) > 1 else "")
        )


def writers(store: Store, model: str) -> list[tuple[int, str]]:
    """Every run that wrote ``model``, with the ledger entry that first said so, oldest first."""
    runs = [e.src for e in store.edges([model], "upstream", ["WROTE"])]
    out = []
    for run in runs:
        first = next((e.seq for e in store.entries(subject=run, kind="openlineage.event", limit=None)), None)
        out.append((first if first is not None else 1 << 62, run))
    return sorted(out)


def artifact(store: Store, model: str) -> Artifact:
    """Replay the events of the runs that wrote ``model`` and collect the artifact digests they recorded for it."""
    from lineage.ids import parse_id

    target = parse_id(model)
    ordered = writers(store, model)
    if not ordered:
        return Artifact(None, None)
    writer = ordered[0][1]
    mine: list[tuple[int, str]] = []
    foreign: list[tuple[int, str]] = []
    for _, run in ordered:
        for entry in store.entries(subject=run, kind="openlineage.event", limit=None):
            digest = _recorded_digest(json.loads(entry.payload), target, run.removeprefix("run:"))
            if digest:
                (mine if run == writer else foreign).append((entry.seq, digest))
    if not mine:
        return Artifact(None, None, foreign=tuple(sorted(foreign)))
    mine.sort()
    first_seq, first = mine[0]
    return Artifact(first, first_seq, tuple((seq, d) for seq, d in mine if d != first), tuple(sorted(foreign)))


def _recorded_digest(event: Any, target, run: str) -> str | None:
    """The artifact digest an OpenLineage event records for the model version ``target``, if any."""
    outputs = event.get("outputs") if isinstance(event, dict) else None
    for ds in outputs if isinstance(outputs, list) else []:
        if not isinstance(ds, dict) or (ds.get("namespace"), ds.get("name")) != (target.namespace, target.name):
            continue
        facets = _object(ds.get("facets"))
        model = facets.get("auditgraph_model")
        if not isinstance(model, dict) or not isinstance(model.get("artifactDigest"), str):
            continue
        declared = _object(facets.get("version"))
        names = {declared.get("datasetVersion"), model.get("version"), run}
        if target.version in names:
            digest = model["artifactDigest"].removeprefix("sha256:").lower()
            if digest:
                return digest
    return None


def _object(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one: a producer's event is read as sent."""
    return value if isinstance(value, dict) else {}


def artifact_digest(store: Store, model: str) -> str:
    """The SHA-256 an approval of ``model`` must sign: its first recorded artifact, else a digest of its id."""
    return artifact(store, model).digest or _placeholder(model)


def _placeholder(model: str) -> str:
    from lineage.canonical import digest

    return digest({"model": model})


def unanchored(predicate: Predicate) -> str:
    """Why an approval whose signed ledger head is not an entry at or before it does not hold."""
    at = f" (entry {predicate.ledgerSeq})" if predicate.ledgerSeq is not None else ""
    return f"approval signs ledger head {predicate.ledgerHead}{at}, which is not an entry at or before it"


def anchor_problem(store: Store, predicate: Predicate, seq: int) -> str:
    """'' if the ledger head an approval recorded at ``seq`` signs is an entry of this ledger at or before it.

    With ``ledgerSeq`` one entry is read; a statement signed before that field existed is looked up by hash.
    The empty ledger's head (``GENESIS``) never holds: an approval names a recorded model and a registered key.
    """
    at = predicate.ledgerSeq
    if at is None:
        found = _entry_with_hash(store, predicate.ledgerHead, seq) is not None
    else:
        entry = next(store.entries(after_seq=at - 1, limit=1), None) if at <= seq else None
        found = entry is not None and entry.seq == at and entry.hash == predicate.ledgerHead
    return "" if found else unanchored(predicate)


def _entry_with_hash(store: Store, wanted: str, seq: int) -> int | None:
    """The sequence number of the entry at or before ``seq`` whose hash is ``wanted``, scanning back in
    growing windows: the head an approver signs is usually a few entries before their approval."""
    hi, window = min(seq, store.head().seq), 16
    while hi > 0:
        lo = max(hi - window, 0)
        for entry in store.entries(after_seq=lo, limit=hi - lo):
            if entry.hash == wanted:
                return entry.seq
        hi, window = lo, window * 8
    return None


def check_approval(
    record: Record[k.ApprovalPayload], model: str, key_map: dict[str, Key], recorded: Artifact, store: Store
) -> tuple[Statement | None, Key | None, str]:
    """Verify one recorded approval: (statement, key, problem); problem is '' when it holds."""
    p = record.value
    if p.model != model:
        return None, None, f"recorded for {p.model}, not {model}"
    try:
        st = read_statement(p.envelope)
    except ValueError as e:
        return None, None, str(e)
    key = key_map.get(st.predicate.keyId)
    if key is None or key.seq > record.seq:
        return st, None, f"key {st.predicate.keyId} was not registered when this was recorded"
    problem = verify_signature(p.envelope, key) or anchor_problem(store, st.predicate, record.seq)
    if problem:
        return st, key, problem
    if st.subject[0].name != model:
        return st, key, f"the signed statement is about {st.subject[0].name}, not {model}"
    if recorded.problem:
        return st, key, recorded.problem
    expected = recorded.digest or _placeholder(model)
    if st.subject[0].digest.sha256 != expected:
        return st, key, "the signed artifact digest differs from the one recorded for this model version"
    if st.predicate.role not in key.roles:
        return st, key, f"key {key.key_id} ({key.name}) may not sign for {st.predicate.role!r}"
    if key.revoked and (st.predicate.decision == "approve" or (key.revoked_seq or 0) < record.seq):
        # revoking a key withdraws its approvals, not the vetoes it signed before: those stand until revoked
        return st, key, f"key {key.key_id} ({key.name}) was revoked"
    return st, key, ""


def approvals(store: Store, model: str) -> list[Approval]:
    """Every approval entry of a model version, each with whether it counts and, if not, why.

    The only source of "approved" in auditgraph: checks, reports, the retraining
    trigger and the stability check all read this.
    """
    key_map = keys(store)
    recorded = artifact(store, model)
    revocations = list(k.APPROVAL_REVOKED.valid(store, model))
    seen: dict[str, int] = {}
    out = []
    for record in k.APPROVAL.records(store, model):
        if isinstance(record, Malformed):
            out.append(
                Approval(
                    record.seq,
                    model,
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    False,
                    f"malformed approval entry: {record.reason}",
                )
            )
            continue
        st, key, problem = check_approval(record, model, key_map, recorded, store)
        digest = statement_digest(record.value.envelope.payload)
        if (
            st is not None
            and not problem
            and any(_revokes(r.value, digest, st.predicate.keyId, key_map) for r in revocations)
        ):
            problem = "the approval was revoked"
        if not problem and digest in seen:
            problem = f"the same signed statement is already recorded as ledger:{seen[digest]}"
        if not problem:
            seen[digest] = record.seq
        pred = st.predicate if st else None
        out.append(
            Approval(
                record.seq,
                model,
                pred.role if pred else "",
                pred.decision if pred else "",
                key.name if key else "",
                pred.keyId if pred else "",
                pred.time if pred else "",
                pred.evidenceDigest if pred else "",
                digest,
                record.actor,
                not problem,
                problem,
            )
        )
    return out


def _revokes(revocation: k.ApprovalRevokedPayload, statement: str, signer: str, key_map: dict[str, Key]) -> bool:
    """Whether a revocation applies: it names the statement, and is signed by its signer or recorded unsigned
    (by an administrator: the CLI requires admin authority for that)."""
    if revocation.statement != statement:
        return False
    if revocation.by_key is None:
        return True
    key = key_map.get(revocation.by_key)
    if key is None or revocation.by_key != signer or revocation.signature is None:
        return False
    require("signing")
    from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
    from securesystemslib.signer import Signature, SSlibKey

    try:
        SSlibKey.from_dict(key.key_id, dict(key.public_key)).verify_signature(
            Signature(key.key_id, revocation.signature), k.revocation_bytes(statement, revocation.model)
        )
    except (UnverifiedSignatureError, VerificationError, ValueError):
        return False
    return True


def counted(found: list[Approval], role: str, decision: str = "approve") -> list[Approval]:
    """Valid approvals by ``role``, one per person (the first each person signed)."""
    out, people = [], set()
    for a in found:
        if a.valid and a.role == role and a.decision == decision:
            person = " ".join(a.approver.casefold().split())
            if person not in people:
                people.add(person)
                out.append(a)
    return out


def is_approved(store: Store, model: str) -> bool:
    """At least one valid approval and no valid rejection: what 'approved' means outside a rule."""
    found = approvals(store, model)
    return any(a.valid and a.decision == "approve" for a in found) and not any(
        a.valid and a.decision == "reject" for a in found
    )


def statement_of(store: Store, seq: int) -> tuple[str, str]:
    """(statement digest, model) of the approval recorded at ``seq``."""
    from governance.errors import NotRecordedError

    entry = next(store.entries(after_seq=seq - 1, limit=1), None)
    if entry is None or entry.seq != seq or entry.kind != k.APPROVAL.name:
        raise NotRecordedError(f"ledger entry {seq} is not an approval")
    record = k.APPROVAL.read(entry)
    if isinstance(record, Malformed):
        raise NotRecordedError(f"ledger entry {seq} is a malformed approval: {record.reason}")
    return statement_digest(record.value.envelope.payload), record.value.model


def dump(found: list[Approval]) -> list[dict]:
    return [a.as_dict() for a in found]
