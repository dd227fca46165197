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

import json
import hmac
import re
import secrets
import threading
from dataclasses import dataclass

from lineage.canonical import sha256_hex
from lineage.clock import utc_text
from lineage.errors import Forbidden, Invalid, NotFound, Unauthorized
from lineage.ledger import Pending
from lineage.store import Store

SCOPES = ("read", "ingest", "govern", "approve", "admin")
CREATED, REVOKED = "auth.key.created", "auth.key.revoked"
_TOKEN = re.compile(r"^agk_([0-9a-f]{16})_([A-Za-z0-9_\-]{20,200})$")


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
    payload = {"key_id": key_id, "name": name, "scopes": sorted(set(scopes)), "secret_sha256": _sha256(secret),
               "created_at": utc_text()}
    store.append(Pending(CREATED, payload, actor, subject=f"apikey:{key_id}"))
    return key_id, f"agk_{key_id}_{secret}"


def revoke_key(store: Store, key_id: str, actor: str, reason: str = "") -> None:
    if not _entries(store, key_id)[0]:
        raise NotFound(f"no API key {key_id!r}")
    store.append(Pending(REVOKED, {"key_id": key_id, "revoked_at": utc_text(), "reason": reason}, actor,
                         subject=f"apikey:{key_id}"))


def list_keys(store: Store) -> list[dict]:
    revoked = {e.subject for e in store.entries(kind=REVOKED, limit=None)}
    out = []
    for entry in store.entries(kind=CREATED, limit=None):
        p = json.loads(entry.payload)
        out.append({"key_id": p["key_id"], "name": p["name"], "scopes": p["scopes"], "created_at": p["created_at"],
                    "revoked": entry.subject in revoked})
    return out


def has_admin_key(store: Store) -> bool:
    """Whether the store holds an unrevoked API key with the ``admin`` scope (administration is then keyed)."""
    return any("admin" in k["scopes"] and not k["revoked"] for k in list_keys(store))


def _entries(store: Store, key_id: str) -> tuple[dict | None, bool]:
    created, revoked = None, False
    for entry in store.entries(subject=f"apikey:{key_id}", limit=None):
        if entry.kind == CREATED:
            created = json.loads(entry.payload)
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
