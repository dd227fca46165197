"""Signed approvals that hold up later.

* An approver's key is Ed25519, made by ``generate_key``; the private key stays
  in a PEM file (mode 0600) the approver keeps; the public key, the approver's
  name and the roles the key may sign for are a ``governance.key`` ledger entry.
* An approval is an in-toto Statement v1 (subject: the model version id and
  its artifact digest; predicate: approver, role, decision, time, the digest
  of the evidence shown, the ledger head) in a DSSE envelope signed with that
  key (securesystemslib), recorded as a ``governance.approval`` entry.
* An approval counts when its signature verifies against the key registered
  for its key id, the key may sign for the role, neither the key nor the
  approval has been revoked, and the statement names this model version.
* ``audit verify`` re-checks every approval signature in the ledger
  (``ApprovalSignatures``).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from google.protobuf import json_format
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from governance.errors import SignatureError
from governance.records import now
from lineage.canonical import digest
from lineage.errors import LineageError
from lineage.ids import NodeKind
from lineage.ledger import LedgerEntry, Pending
from lineage.store import Store

KEY, KEY_REVOKED, APPROVAL, APPROVAL_REVOKED = ("governance.key", "governance.key_revoked", "governance.approval",
                                                "governance.approval_revoked")
PREDICATE_TYPE = "https://auditgraph.dev/attestations/approval/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
DECISIONS = ("approve", "reject")


# --- keys -------------------------------------------------------------------------

def generate_key(store: Store, name: str, roles: list[str], out: Path, actor: str) -> str:
    """Make a key pair, write the private key to ``out`` (0600), register the public key; return its id."""
    if not roles or not all(r.strip() for r in roles):
        raise LineageError("a key needs at least one role it may sign for")
    if out.exists():
        raise LineageError(f"{out} exists; refusing to overwrite a private key")
    signer = CryptoSigner.generate_ed25519()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(signer.private_bytes)
    key = signer.public_key
    store.append(Pending(KEY, {"key_id": key.keyid, "name": name, "roles": sorted(set(roles)),
                               "public_key": key.to_dict(), "at": now()}, actor, subject=f"key:{key.keyid}"))
    return key.keyid


def load_signer(path: Path) -> CryptoSigner:
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise SignatureError(f"{path}: not a readable PEM private key ({type(e).__name__})") from None
    public = SSlibKey.from_crypto(private.public_key())
    return CryptoSigner(private, public)


def revoke_key(store: Store, key_id: str, reason: str, actor: str) -> int:
    if key_id not in registered_keys(store):
        raise LineageError(f"no registered key {key_id!r}")
    return store.append(Pending(KEY_REVOKED, {"key_id": key_id, "reason": reason, "at": now()}, actor,
                                subject=f"key:{key_id}")).seq


def registered_keys(store: Store) -> dict[str, dict]:
    keys = {}
    for entry in store.entries(kind=KEY, limit=None):
        p = json.loads(entry.payload)
        keys[p["key_id"]] = {**p, "seq": entry.seq, "revoked": False}
    for entry in store.entries(kind=KEY_REVOKED, limit=None):
        p = json.loads(entry.payload)
        if p["key_id"] in keys:
            keys[p["key_id"]]["revoked"] = True
    return keys


# --- approving --------------------------------------------------------------------

def statement(model: str, artifact_digest: str | None, predicate: dict[str, Any]) -> dict:
    """The in-toto Statement v1 for an approval, as JSON."""
    sha = (artifact_digest or "").removeprefix("sha256:") or digest({"model": model})
    subject = ResourceDescriptor(name=model, digest={"sha256": sha}).pb
    st = Statement([subject], PREDICATE_TYPE, predicate)
    st.validate()
    return json.loads(json_format.MessageToJson(st.pb))


def approve(store: Store, model: str, role: str, signer: CryptoSigner, approver: str, evidence_digest: str,
            actor: str, decision: str = "approve", comment: str = "") -> int:
    """Sign and record an approval (or rejection) of a model version."""
    row = store.resolve(model)
    if row.kind != NodeKind.MODEL_VERSION:
        raise LineageError(f"{row.id} is a {row.kind}; approvals are of a model version (model:ns/name@version)")
    if decision not in DECISIONS:
        raise LineageError(f"decision must be one of {', '.join(DECISIONS)}")
    key = registered_keys(store).get(signer.public_key.keyid)
    if key is None or key["revoked"]:
        raise SignatureError(f"key {signer.public_key.keyid} is not registered, or was revoked")
    if role not in key["roles"]:
        raise SignatureError(f"key {key['key_id']} ({key['name']}) may sign for {', '.join(key['roles'])}, not {role!r}")
    artifact = (store.facets(row.id).get("auditgraph_model") or {}).get("artifactDigest")
    payload = signed_payload(row.id, artifact, role, signer, approver, evidence_digest, store.head().hash,
                             decision, comment)
    return store.append(Pending(APPROVAL, payload, actor, subject=row.id)).seq


def signed_payload(model: str, artifact_digest: str | None, role: str, signer: CryptoSigner, approver: str,
                   evidence_digest: str, ledger_head: str, decision: str = "approve", comment: str = "") -> dict:
    """An approval signed with the approver's key, ready to record (here or through the HTTP API)."""
    predicate = {"approver": approver, "keyId": signer.public_key.keyid, "role": role, "decision": decision,
                 "time": now(), "evidenceDigest": evidence_digest, "ledgerHead": ledger_head, "comment": comment}
    envelope = Envelope(payload=json.dumps(statement(model, artifact_digest, predicate), sort_keys=True).encode(),
                        payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(signer)
    return {"model": model, "role": role, "decision": decision, "approver": approver,
            "key_id": signer.public_key.keyid, "at": predicate["time"], "envelope": envelope.to_dict()}


def record_signed(store: Store, payload: dict, actor: str) -> int:
    """Record an approval someone signed elsewhere (the HTTP API), after checking it fully."""
    for field in ("model", "role", "decision", "approver", "key_id", "envelope"):
        if field not in payload:
            raise SignatureError(f"{field}: missing")
    row = store.resolve(payload["model"])
    key = registered_keys(store).get(payload["key_id"])
    signed, problem = verify_envelope(payload, key)
    if signed is None:
        raise SignatureError(problem)
    predicate = signed.get("predicate", {})
    if [s.get("name") for s in signed.get("subject", [])] != [row.id]:
        raise SignatureError(f"the signed statement is not about {row.id}")
    if (predicate.get("role"), predicate.get("decision")) != (payload["role"], payload["decision"]):
        raise SignatureError("role or decision differ from the signed statement")
    if key["revoked"] or payload["role"] not in key["roles"]:
        raise SignatureError(f"key {key['key_id']} is revoked or may not sign for {payload['role']!r}")
    clean = {k: payload[k] for k in ("model", "role", "decision", "approver", "key_id", "envelope")}
    return store.append(Pending(APPROVAL, {**clean, "model": row.id, "at": predicate.get("time", now())},
                                actor, subject=row.id)).seq


def revoke_approval(store: Store, seq: int, reason: str, actor: str) -> int:
    entry = next(store.entries(after_seq=seq - 1, limit=1), None)
    if entry is None or entry.seq != seq or entry.kind != APPROVAL:
        raise LineageError(f"ledger entry {seq} is not an approval")
    return store.append(Pending(APPROVAL_REVOKED, {"approval": seq, "reason": reason, "at": now()}, actor,
                                subject=entry.subject)).seq


# --- checking ---------------------------------------------------------------------

@dataclass(frozen=True)
class Approval:
    seq: int
    model: str
    role: str
    decision: str
    approver: str
    key_id: str
    time: str
    evidence_digest: str
    valid: bool
    problem: str = ""


def verify_envelope(payload: dict, key: dict | None) -> tuple[dict | None, str]:
    """The signed statement, or None and why it does not verify."""
    if key is None:
        return None, f"key {payload.get('key_id')!r} is not registered"
    try:
        envelope = Envelope.from_dict(copy.deepcopy(payload["envelope"]))  # from_dict rewrites its argument
        public = SSlibKey.from_dict(key["key_id"], dict(key["public_key"]))
        envelope.verify([public], 1)
        signed = json.loads(envelope.payload)
    except (VerificationError, KeyError, ValueError, TypeError) as e:
        return None, f"signature does not verify ({type(e).__name__})"
    return signed, ""


def approvals_of(store: Store, model: str) -> list[Approval]:
    """Every approval entry for a model version, each with whether it counts and why not."""
    keys = registered_keys(store)
    revoked = {json.loads(e.payload)["approval"] for e in store.entries(subject=model, kind=APPROVAL_REVOKED, limit=None)}
    out = []
    for entry in store.entries(subject=model, kind=APPROVAL, limit=None):
        p = json.loads(entry.payload)
        key = keys.get(p.get("key_id"))
        signed, problem = verify_envelope(p, key)
        predicate = (signed or {}).get("predicate", {})
        names = [s.get("name") for s in (signed or {}).get("subject", [])]
        if signed and names != [model]:
            problem = f"the signed statement is about {names}, not {model}"
        elif signed and (predicate.get("role"), predicate.get("decision")) != (p["role"], p["decision"]):
            problem = "the recorded role or decision differs from the signed one"
        elif signed and p["role"] not in key["roles"]:
            problem = f"key {key['key_id']} may not sign for {p['role']!r}"
        elif signed and key["revoked"]:
            problem = f"key {key['key_id']} was revoked"
        elif entry.seq in revoked:
            problem = "the approval was revoked"
        out.append(Approval(entry.seq, model, p["role"], p["decision"], p["approver"], p.get("key_id", ""),
                            predicate.get("time", ""), predicate.get("evidenceDigest", ""), not problem, problem))
    return out


class ApprovalSignatures:
    """``audit verify``'s per-entry check: every approval's signature verifies against its key."""

    def __init__(self):
        self.keys: dict[str, dict] = {}
        self.verified = 0

    def __call__(self, entry: LedgerEntry) -> str | None:
        if entry.kind == KEY:
            p = json.loads(entry.payload)
            self.keys[p["key_id"]] = p
        elif entry.kind == APPROVAL:
            p = json.loads(entry.payload)
            signed, problem = verify_envelope(p, self.keys.get(p.get("key_id")))
            if signed is None:
                return f"approval {problem}"
            self.verified += 1
        return None
