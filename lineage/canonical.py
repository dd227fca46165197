"""Canonical JSON and the digests computed over it.

Invariant: every hash in auditgraph is SHA-256 over the bytes that
``canonical_bytes`` returns, and nothing else. Those bytes are JSON with sorted
keys, no insignificant white space, UTF-8 without ASCII escaping, and no NaN or
Infinity (which JSON cannot carry). There is no ``default=`` hook: a value that
is not plain JSON is an error, never silently stringified.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of ``value``."""
    return _ENCODER.encode(value)


def canonical_bytes(value: Any) -> bytes:
    """Return the canonical UTF-8 bytes of ``value``."""
    return canonical_json(value).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(value: Any) -> str:
    """SHA-256 hex digest of the canonical bytes of ``value``."""
    return sha256_hex(canonical_bytes(value))
