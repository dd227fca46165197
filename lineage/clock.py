"""The time auditgraph records, written in one place.

Invariant: every time auditgraph records (a ledger entry's ``recorded_at``, the
``at`` of a governance payload, a key's ``created_at``, an event's time key) is
UTC written as fixed-width text with microseconds, ``2024-01-31T12:00:00.000000Z``
(years 0001-9999), so that string order is time order. ``utc_text`` writes it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, time-zone aware, in UTC."""
    return datetime.now(UTC)


def utc_text(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as fixed-width UTC text; a naive ``moment`` is read as UTC.

    An aware ``moment`` whose UTC reading leaves years 1-9999 raises ``OverflowError``
    (``openlineage.format_time`` turns that into a ``TimeRangeError`` naming the field).
    """
    if moment is None:
        moment = utc_now()
    elif moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
