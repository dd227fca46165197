"""API keys with scopes.

A key is ``agk_<key id>_<secret>``. Only the SHA-256 of the secret is kept, in a
ledger entry (kind ``auth.key.created``, subject ``apikey:<key id>``), so
creating and revoking keys is itself audited; revocation is another entry
(``auth.key.revoked``). Secrets are compared in constant time and never logged,
never echoed in an error.

Scopes: ``read`` (queries), ``ingest`` (OpenLineage events: lineage only),
``govern`` (governance facts: tags, owners, intended use, evaluations,
evidence), ``approve`` (signed approvals, gate runs, releases), ``admin``
(everything, including keys and policy bindings). An ``ingest`` key, which every
producer holds, cannot write a governance fact.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import StringConstraints

from lineage.canonical import sha256_hex
from lineage.clock import utc_text
from lineage.errors import Forbidden, Invalid, NotFound, Unauthorized
from lineage.kinds import EntryKind, Payload, Record
from lineage.store import Store

SCOPES = ("read", "ingest", "govern", "approve", "admin")
_TOKEN = re.compile(r"^agk_([0-9a-f]{16})_([A-Za-z0-9_\-]{20,200})$")
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]


class KeyCreatedPayload(Payload):
    """An API key was made: only the SHA-256 of its secret is recorded."""

    key_id: KeyId
    name: str
    scopes: list[Literal["read", "ingest", "govern", "approve", "admin"]]
    secret_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    created_at: str


class KeyRevokedPayload(Payload):
    key_id: KeyId
    revoked_at: str
    reason: str = ""


KEY_CREATED = EntryKind("auth.key.created", KeyCreatedPayload, "admin", lambda p: f"apikey:{p.key_id}")
KEY_REVOKED = EntryKind("auth.key.revoked", KeyRevokedPayload, "admin", lambda p: f"apikey:{p.key_id}")
CREATED, REVOKED = KEY_CREATED.name, KEY_REVOKED.name


class AuthError(Unauthorized):
    """A request's API key is missing, malformed, unknown or revoked."""


class ScopeError(Forbidden):
    """A valid API key lacks the scope the request needs (or, from the CLI, is not the admin key's holder)."""


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @property
    def actor(self) -> str:
        return f"apikey:{self.key_id}:{self.name}"


def _sha256(text: str) -> str:
    return sha256_hex(text.encode("utf-8"))


def create_key(store: Store, name: str, scopes: list[str], actor: str) -> tuple[str, str]:
    """Create a key; return (key id, token). The token is shown once and not stored."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise Invalid(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}")
    if not name.strip():
        raise Invalid("a key needs a name")
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    payload = {
        "key_id": key_id,
        "name": name,
        "scopes": sorted(set(scopes)),
        "secret_sha256": _sha256(secret),
        "created_at": utc_text(),
    }
    store.append(KEY_CREATED.pending(payload, actor))
    return key_id, f"agk_{key_id}_{secret}"


def revoke_key(store: Store, key_id: str, actor: str, reason: str = "") -> None:
    if not _entries(store, key_id)[0]:
        raise NotFound(f"no API key {key_id!r}")
    store.append(KEY_REVOKED.pending({"key_id": key_id, "revoked_at": utc_text(), "reason": reason}, actor))


def list_keys(store: Store) -> list[dict]:
    """Every key whose creation entry validates; any revocation entry of a key (even a malformed one) revokes it."""
    revoked = {e.subject for e in store.entries(kind=REVOKED, limit=None)}
    return [
        {
            "key_id": r.value.key_id,
            "name": r.value.name,
            "scopes": r.value.scopes,
            "created_at": r.value.created_at,
            "revoked": r.subject in revoked,
        }
        for r in KEY_CREATED.valid(store)
        if r.subject == f"apikey:{r.value.key_id}"
    ]


def has_admin_key(store: Store) -> bool:
    """Whether the store holds an unrevoked API key with the ``admin`` scope (administration is then keyed)."""
    return any("admin" in k["scopes"] and not k["revoked"] for k in list_keys(store))


def _entries(store: Store, key_id: str) -> tuple[dict | None, bool]:
    """The key's creation (None unless it validates and names this key) and whether anything revoked it.

    Fails closed: a creation entry that does not validate is no key; a revocation entry, valid or not, revokes.
    """
    created, revoked = None, False
    for entry in store.entries(subject=f"apikey:{key_id}", limit=None):
        if entry.kind == CREATED:
            record = KEY_CREATED.read(entry)
            if isinstance(record, Record) and record.value.key_id == key_id and created is None:
                created = record.value.model_dump()
        elif entry.kind == REVOKED:
            revoked = True
    return created, revoked


class KeyVerifier:
    """Checks bearer tokens against the store.

    A key's creation record never changes, so it is cached (bounded). Revocation is
    looked up in the store on every request (one indexed read of the key's own
    entries), so a key revoked through any handle, process or worker is refused on
    the very next request.
    """

    def __init__(self, max_cached: int = 10_000):
        self.max_cached = max_cached
        self._created: dict[str, dict] = {}
        self._lock = threading.Lock()

    def verify(self, store: Store, authorization: str | None) -> Principal:
        if not authorization:
            raise AuthError("this request needs an API key: send 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        match = _TOKEN.match(token.strip()) if scheme.lower() == "bearer" else None
        if not match:
            raise AuthError("the Authorization header is not 'Bearer agk_...'")
        key_id, secret = match.groups()
        created, revoked = self._lookup(store, key_id)
        expected = created["secret_sha256"] if created else _sha256("no such key")
        if not hmac.compare_digest(_sha256(secret), expected) or not created:
            raise AuthError("the API key is not valid")
        if revoked:
            raise AuthError("the API key has been revoked")
        return Principal(key_id, created["name"], frozenset(created["scopes"]))

    def _lookup(self, store: Store, key_id: str) -> tuple[dict | None, bool]:
        with self._lock:
            created = self._created.get(key_id)
        if created is None:
            created, revoked = _entries(store, key_id)
            if created is not None:
                with self._lock:
                    if len(self._created) >= self.max_cached:
                        self._created.clear()
                    self._created[key_id] = created
            return created, revoked
        subject = f"apikey:{key_id}"
        return created, next(store.entries(subject=subject, kind=REVOKED, limit=1), None) is not None
