"""Signed approvals that hold up later: writing them. Reading is ``governance.readmodels``.

* An approver's key is Ed25519, made by ``generate_key``; the private key stays
  in a PEM file (mode 0600) the approver keeps; the public key, the person's
  name and the roles the key may sign for are a ``governance.key`` entry,
  recorded by an administrator (the entry's actor).
* An approval is an in-toto Statement v1 (subject: the model version id and
  its artifact digest; predicate: key id, role, decision, time, the digest of
  the evidence shown, the ledger head and its sequence number) in a DSSE
  envelope signed with that key.
  The ``governance.approval`` entry records the model id and the envelope,
  nothing else: every field a reader shows comes from the signed statement
  or from the registered key, so nothing unsigned can be altered.
* The same statement recorded again is a duplicate, whatever else differs.
  Revocation names the statement (by digest), so a revoked approval stays
  revoked however often it is submitted.
* The ledger head an approval signs must be an entry of this ledger at or
  before the approval: ``record_signed`` refuses one that is not, the read
  model does not count it, and ``audit verify`` names it.
* ``audit verify`` re-checks every approval signature and signed ledger head
  in the ledger (``ApprovalSignatures``).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from governance import kinds as k
from governance import readmodels as rm
from governance.errors import (
    AuthorityError,
    KeyFileError,
    NodeKindError,
    NotRecordedError,
    RecordError,
    RevokedError,
    SignatureError,
)
from lineage.clock import utc_text
from lineage.errors import EntryError
from lineage.extras import require
from lineage.graph import Graph
from lineage.ids import NodeKind
from lineage.kinds import Malformed, describe
from lineage.ledger import Ack, Head, LedgerEntry
from lineage.store import Store

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner

KEY, KEY_REVOKED, APPROVAL, APPROVAL_REVOKED = (
    k.KEY.name,
    k.KEY_REVOKED.name,
    k.APPROVAL.name,
    k.APPROVAL_REVOKED.name,
)
PREDICATE_TYPE, PAYLOAD_TYPE = rm.PREDICATE_TYPE, rm.PAYLOAD_TYPE
DECISIONS = ("approve", "reject")
Approval = rm.Approval


# --- keys -------------------------------------------------------------------------


def generate_key(
    store: Store, name: str, roles: list[str], out: Path, actor: str, identities: list[str] | None = None
) -> str:
    """Make a key pair, write the private key to ``out`` (0600), register the public key; return its id."""
    if not roles or not all(r.strip() for r in roles):
        raise RecordError("a key needs at least one role it may sign for")
    if not name.strip():
        raise RecordError("a key needs the name of the person it belongs to")
    if out.exists():
        raise KeyFileError(f"{out} exists; refusing to overwrite a private key")
    require("signing")
    from securesystemslib.signer import CryptoSigner

    signer = CryptoSigner.generate_ed25519()
    key = signer.public_key
    pending = k.KEY.pending(
        {
            "key_id": key.keyid,
            "name": name,
            "roles": sorted(set(roles)),
            "public_key": key.to_dict(),
            "identities": sorted(set(identities or [])),
            "at": utc_text(),
        },
        actor,
    )
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(signer.private_bytes)
    store.append(pending)
    return key.keyid


def load_signer(path: Path) -> CryptoSigner:
    require("signing")
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.signer import CryptoSigner, SSlibKey

    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise SignatureError(f"{path}: not a readable PEM private key ({type(e).__name__})") from None
    public = SSlibKey.from_crypto(private.public_key())
    return CryptoSigner(private, public)


def revoke_key(store: Store, key_id: str, reason: str, actor: str) -> int:
    if key_id not in rm.keys(store):
        raise NotRecordedError(f"no registered key {key_id!r}")
    return store.append(k.KEY_REVOKED.pending({"key_id": key_id, "reason": reason, "at": utc_text()}, actor)).seq


def registered_keys(store: Store) -> dict[str, dict]:
    """Registered keys as plain dicts (for listings); ``readmodels.keys`` for typed reads."""
    return {key_id: {**key.public(), "public_key": key.public_key} for key_id, key in rm.keys(store).items()}


# --- approving --------------------------------------------------------------------


def statement(model: str, artifact_sha256: str, predicate: dict[str, Any]) -> dict:
    """The in-toto Statement v1 for an approval, as JSON."""
    require("signing")
    from google.protobuf import json_format
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement

    subject = ResourceDescriptor(name=model, digest={"sha256": artifact_sha256}).pb
    st = Statement([subject], PREDICATE_TYPE, predicate)
    st.validate()
    return json.loads(json_format.MessageToJson(st.pb))


def approve(
    store: Store,
    model: str,
    role: str,
    signer: CryptoSigner,
    evidence_digest: str,
    actor: str,
    decision: str = "approve",
    comment: str = "",
) -> Ack:
    """Sign and record an approval (or rejection) of a model version, as the key's registered person."""
    row = Graph(store).resolve(model)
    if row.kind != NodeKind.MODEL_VERSION:
        raise NodeKindError(f"{row.id} is a {row.kind}; approvals are of a model version (model:ns/name@version)")
    if decision not in DECISIONS:
        raise RecordError(f"decision must be one of {', '.join(DECISIONS)}")
    key = rm.keys(store).get(signer.public_key.keyid)
    if key is None or key.revoked:
        raise SignatureError(f"key {signer.public_key.keyid} is not registered, or was revoked")
    if role not in key.roles:
        raise AuthorityError(f"key {key.key_id} ({key.name}) may sign for {', '.join(key.roles)}, not {role!r}")
    payload = signed_payload(
        row.id, rm.artifact_digest(store, row.id), role, signer, evidence_digest, store.head(), decision, comment
    )
    return record_signed(store, payload, actor)


def signed_payload(
    model: str,
    artifact_sha256: str,
    role: str,
    signer: CryptoSigner,
    evidence_digest: str,
    ledger_head: Head | str,
    decision: str = "approve",
    comment: str = "",
) -> dict:
    """An approval signed with the approver's key, ready to record (here or through the HTTP API).

    ``ledger_head`` is the ledger head the approver looked at (``store.head()``): its hash and sequence
    number are signed. A bare hash signs the form older clients made, which is checked by a slower lookup.
    """
    head = ledger_head if isinstance(ledger_head, Head) else None
    predicate = {
        "keyId": signer.public_key.keyid,
        "role": role,
        "decision": decision,
        "time": utc_text(),
        "evidenceDigest": evidence_digest,
        "ledgerHead": head.hash if head else ledger_head,
        **({"ledgerSeq": head.seq} if head else {}),
        "comment": comment,
    }
    require("signing")
    from securesystemslib.dsse import Envelope

    envelope = Envelope(
        payload=json.dumps(statement(model, artifact_sha256, predicate), sort_keys=True).encode(),
        payload_type=PAYLOAD_TYPE,
        signatures={},
    )
    envelope.sign(signer)
    return {"model": model, "envelope": envelope.to_dict()}


def record_signed(store: Store, body: Any, actor: str) -> Ack:
    """Record a signed approval after checking it fully; the same statement again is a duplicate.

    Raises ``EntryError`` for a body of the wrong shape and ``SignatureError``
    for one that does not verify: nothing is recorded in either case.
    """
    try:
        payload = k.ApprovalPayload.model_validate(body)
    except ValidationError as e:
        raise EntryError(f"approval: {describe(e)}") from None
    row = Graph(store).resolve(payload.model)
    payload = payload.model_copy(update={"model": row.id})
    record = k.APPROVAL.read(_as_entry(payload))
    if isinstance(record, Malformed):  # validated above; a payload that does not read back is refused the same way
        raise EntryError(f"approval: {record.reason}")
    st, key, problem = rm.check_approval(record, row.id, rm.keys(store), rm.artifact(store, row.id), store)
    if problem:
        raise SignatureError(problem)
    digest = rm.statement_digest(payload.envelope.payload)
    for earlier in rm.approvals(store, row.id):
        if earlier.statement == digest:
            if "revoked" in earlier.problem:
                raise RevokedError(f"this signed statement was revoked (ledger:{earlier.seq}); sign a new one")
            entry = next(store.entries(after_seq=earlier.seq - 1, limit=1))
            return Ack(entry.seq, entry.hash, True, entry.subject)
    return store.append(k.APPROVAL.pending(payload, actor))


def _as_entry(payload: k.ApprovalPayload) -> LedgerEntry:
    """A not-yet-recorded approval in entry form, so it is checked by exactly the reader's code."""
    return LedgerEntry(
        seq=1 << 62,
        recorded_at="",
        kind=APPROVAL,
        actor="",
        subject=payload.model,
        event_time=None,
        payload=payload.model_dump_json(),
        payload_digest="",
        prev_hash="",
        hash="",
    )


def revoke_approval(store: Store, seq: int, reason: str, actor: str, signer: CryptoSigner | None = None) -> int:
    """Revoke the signed statement recorded at ``seq``: it stops counting wherever it is recorded.

    With ``signer`` (the approval's own key) the revocation is signed and counts on its own;
    without, it is an administrator's (callers check that authority).
    """
    statement_digest, model = rm.statement_of(store, seq)
    payload = {"statement": statement_digest, "model": model, "reason": reason, "at": utc_text()}
    if signer is not None:
        signed_by = next((a.key_id for a in rm.approvals(store, model) if a.seq == seq), None)
        if signed_by != signer.public_key.keyid:
            raise AuthorityError(
                f"ledger:{seq} was not signed by key {signer.public_key.keyid}; only its signer "
                "(or an administrator) can revoke it"
            )
        signature = signer.sign(k.revocation_bytes(statement_digest, model))
        payload |= {"by_key": signer.public_key.keyid, "signature": signature.signature}
    return store.append(k.APPROVAL_REVOKED.pending(payload, actor)).seq


def approvals_of(store: Store, model: str) -> list[Approval]:
    return rm.approvals(store, model)


# --- audit verify ------------------------------------------------------------------


class ApprovalSignatures:
    """``audit verify``'s per-entry check: every well-formed approval's signature verifies against its key,
    and the ledger head it signs is an entry at or before it.

    ``prepare(store)`` collects the heads the approvals claim (a read of approval entries only); the
    chain pass then remembers where it meets those hashes, and nothing else, so memory grows with the
    approvals, not with the ledger. Each claim is taken from the entry the chain pass verified, never
    from that first read: an approval the first read did not see (recorded since) is looked up in the
    store as the read model does. Unprepared, the check remembers every hash it meets.
    """

    def __init__(self) -> None:
        self.keys: dict[str, rm.Key] = {}
        self.verified = 0
        self.store: Store | None = None
        self.claimed: set[str] | None = None  # the ledger heads approvals sign; None: watch every hash
        self.seen: dict[str, int] = {}  # claimed heads met so far in the chain pass: hash -> seq

    def prepare(self, store: Store) -> None:
        self.store, self.claimed = store, set()
        for entry in store.entries(kind=APPROVAL, limit=None):
            claim = _claim(entry)
            if claim is not None:
                self.claimed.add(claim.ledgerHead)

    def __call__(self, entry: LedgerEntry) -> str | None:
        problem = self._check(entry)
        if self.claimed is None or entry.hash in self.claimed:
            self.seen.setdefault(entry.hash, entry.seq)
        return problem

    def _check(self, entry: LedgerEntry) -> str | None:
        if entry.kind == KEY:
            registered = k.KEY.read(entry)
            if not isinstance(registered, Malformed) and registered.value.key_id not in self.keys:
                p = registered.value
                self.keys[p.key_id] = rm.Key(p.key_id, p.name, tuple(p.roles), p.public_key, entry.seq, entry.actor)
        elif entry.kind == APPROVAL:
            approval = k.APPROVAL.read(entry)
            if isinstance(approval, Malformed):
                return None  # recorded before approvals were typed; the read model never counts it
            try:
                st = rm.read_statement(approval.value.envelope)
            except ValueError as e:
                return f"approval {e}"
            key = self.keys.get(st.predicate.keyId)
            if key is None:
                return f"approval signed by unregistered key {st.predicate.keyId}"
            problem = rm.verify_signature(approval.value.envelope, key)
            if problem:
                return f"approval {problem}"
            problem = self._anchor(st.predicate, entry.seq)
            if problem:
                return problem
            self.verified += 1
        return None

    def _anchor(self, claim: rm.Predicate, seq: int) -> str:
        """'' if the chain pass met the signed head (at the signed sequence number) before this approval."""
        if self.claimed is not None and claim.ledgerHead not in self.claimed and self.store is not None:
            return rm.anchor_problem(self.store, claim, seq)  # recorded after prepare read the claims
        at = self.seen.get(claim.ledgerHead)
        if at is None or (claim.ledgerSeq is not None and claim.ledgerSeq != at):
            return rm.unanchored(claim)
        return ""


def _claim(entry: LedgerEntry) -> rm.Predicate | None:
    """The signed predicate of an approval entry, if it reads as one (its signature is checked later)."""
    approval = k.APPROVAL.read(entry)
    if isinstance(approval, Malformed):
        return None
    try:
        return rm.read_statement(approval.value.envelope).predicate
    except ValueError:
        return None


def envelope_payload(payload: dict) -> dict:
    """The statement a recorded approval body signs (for tests and tools)."""
    return json.loads(base64.b64decode(payload["envelope"]["payload"]))
