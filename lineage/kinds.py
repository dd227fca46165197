"""Ledger entry kinds, each declared once.

An ``EntryKind`` is the one place that says, for entries of one kind:

* ``payload``: the pydantic model of what is recorded (frozen, ``extra="forbid"``,
  strict types), so a malformed payload is refused before anything is written;
* ``scope``: the API scope a writer needs (``ingest``, ``govern``, ``approve``,
  ``admin``; ``system`` for entries only the server itself writes);
* ``projector``: what the entry adds to the graph, if anything;
* ``events``: the webhook events it raises, if any;
* ``verifier``: a per-entry check ``audit verify`` runs (signatures), if any.

Invariants:

* ``Store.append`` validates the payload of every registered kind (``check``);
  a payload that does not validate is an ``EntryError`` and is not recorded.
* Reads go through ``EntryKind.read``/``records``: a stored payload that no
  longer validates is returned as ``Malformed`` with the reason, never guessed
  at, so read models can fail closed on it.
* Kinds are declared by the package that owns them through the plugin hook
  ``register_entry_kinds`` (``lineage.hookspecs``); two plugins declaring the
  same name differently is an error (``lineage.plugins``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from lineage.errors import EntryError
from lineage.ledger import EntryCheck, LedgerEntry, Pending

SCOPES = ("read", "ingest", "govern", "approve", "admin")
WRITE_SCOPES = ("ingest", "govern", "approve", "admin", "system")


class Payload(BaseModel):
    """Base of every typed payload: frozen, no unknown fields, no type coercion."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


P = TypeVar("P", bound=Payload)


@dataclass(frozen=True, slots=True)
class Record(Generic[P]):
    """A ledger entry with its payload read through its kind's model."""

    seq: int
    actor: str
    recorded_at: str
    subject: str | None
    value: P

    @property
    def cite(self) -> str:
        return f"ledger:{self.seq}"


@dataclass(frozen=True, slots=True)
class Malformed:
    """A stored entry whose payload does not validate against its kind; never counted as evidence."""

    seq: int
    kind: str
    reason: str


@dataclass(frozen=True)
class EntryKind(Generic[P]):
    name: str
    payload: type[P]
    scope: str
    subject: Callable[[P], str | None] = lambda _: None
    description: str = ""
    projector: Callable[..., Any] | None = None
    events: Callable[[LedgerEntry, Any], list[tuple[str, dict]]] | None = None
    verifier: Callable[[], EntryCheck] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scope not in WRITE_SCOPES:
            raise ValueError(f"entry kind {self.name}: scope {self.scope!r} is not one of {', '.join(WRITE_SCOPES)}")

    def validate(self, data: Any) -> P:
        """The typed payload, or ``EntryError`` naming the field at fault."""
        if isinstance(data, self.payload):
            return data
        try:
            return self.payload.model_validate(data)
        except ValidationError as e:
            raise EntryError(f"{self.name}: {describe(e)}") from None

    def pending(self, value: P | Mapping[str, Any], actor: str, *, event_time: str | None = None) -> Pending:
        """A write of this kind: ``value`` is the payload or its plain form (validated here, ``EntryError``
        naming the field at fault); the subject comes from the payload."""
        payload = self.validate(value)
        return Pending(
            self.name, payload.model_dump(mode="json"), actor, subject=self.subject(payload), event_time=event_time
        )

    def read(self, entry: LedgerEntry) -> Record[P] | Malformed:
        try:
            value = self.payload.model_validate(json.loads(entry.payload))
        except (ValidationError, ValueError) as e:
            reason = describe(e) if isinstance(e, ValidationError) else str(e)
            return Malformed(entry.seq, entry.kind, reason)
        return Record(entry.seq, entry.actor, entry.recorded_at, entry.subject, value)

    def records(self, store, subject: str | None = None) -> Iterator[Record[P] | Malformed]:
        """Every entry of this kind (about ``subject`` if given), in sequence order."""
        for entry in store.entries(kind=self.name, subject=subject, limit=None):
            yield self.read(entry)

    def valid(self, store, subject: str | None = None) -> Iterator[Record[P]]:
        """Only the entries that validate; callers that must fail closed use ``records``."""
        for record in self.records(store, subject):
            if isinstance(record, Record):
                yield record


def describe(error: ValidationError) -> str:
    """A pydantic error as one line: ``field.path: message; ...``."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "payload"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts[:5]) + (f" (and {len(parts) - 5} more)" if len(parts) > 5 else "")


def kind_named(name: str) -> EntryKind | None:
    """The entry kind a plugin declares under ``name`` (``register_entry_kinds``), if any."""
    from lineage.plugins import registry

    return registry().kinds.get(name)


def declared() -> dict[str, EntryKind]:
    from lineage.plugins import registry

    return dict(registry().kinds)


def check(pending: Pending) -> None:
    """Validate a pending write of a declared kind in place (its payload becomes plain JSON)."""
    kind = kind_named(pending.kind)
    if kind is None:
        return
    pending.payload = kind.validate(pending.payload).model_dump(mode="json")
