"""Canonical JSON and the digests computed over it.

Invariant: every hash in auditgraph is SHA-256 over the bytes that
``canonical_bytes`` returns, and nothing else. Those bytes are JSON with sorted
keys, no insignificant white space, UTF-8 without ASCII escaping, and no NaN or
Infinity (which JSON cannot carry). There is no ``default=`` hook: a value that
is not plain JSON is an error, never silently stringified.

Two encoders produce those bytes. The reference is the standard library's.
The fast one (orjson, compiled) is used only for values a caller has shown to
be *plain*: dicts with string keys, lists, strings, ints, booleans and None,
and no floats, since orjson writes some floats differently (``1e-05`` is
``0.00001`` there). ``is_plain`` decides that, and anything orjson refuses (an
int beyond 64 bits, a non-string key) falls back to the reference encoder.
``tests/test_canonical.py`` checks the two agree byte for byte.

Digests are written in three forms, all made here and nowhere else: raw bytes (``sha256``: the
Merkle tree over the ledger and log key fingerprints, ``lineage.merkle``), 64 hex digits
(``sha256_hex``, ``digest``: the ledger's ``hash`` and ``payload_digest``) and
``sha256:<hex>`` (``sha256_digest``, ``file_digest``: artifacts, evidence, rule
bindings, report bundles and files).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import orjson

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_STORED = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # stored_json's fallback
# Dataclasses and datetimes are refused (not serialised) so that, on any value, orjson either
# writes what the standard encoder would or fails and hands over to it.
_REFUSE_NON_JSON = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
_FAST_OPTIONS = orjson.OPT_SORT_KEYS | _REFUSE_NON_JSON


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of ``value``."""
    return _ENCODER.encode(value)


def canonical_bytes(value: Any) -> bytes:
    """Return the canonical UTF-8 bytes of ``value``."""
    return canonical_json(value).encode("utf-8")


def plain_canonical_bytes(value: Any) -> bytes:
    """The canonical bytes of a value known to be plain (see the module text), by the fast encoder."""
    try:
        return orjson.dumps(value, option=_FAST_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        return canonical_bytes(value)  # raises the reference encoder's error, or gives its bytes


def is_plain(value: Any, max_depth: int) -> bool:
    """Whether ``value`` holds only dicts, lists, strings, ints, booleans and None (no floats).

    Raises ``RecursionError`` if containers nest deeper than ``max_depth`` (the
    outermost counts as 1); the walk itself never recurses deeper than that.
    Keys are not looked at: orjson refuses any key that is not exactly a
    ``str``, and the fast path then falls back to the reference encoder.
    """
    return _plain(value, max_depth)


def _plain(value: Any, budget: int) -> bool:
    if budget <= 0:
        raise RecursionError("nested too deeply")
    kind = type(value)
    if kind is not dict and kind is not list:
        return kind is str or kind is int or kind is bool or value is None
    plain = True
    for item in value.values() if kind is dict else value:
        t = type(item)
        if t is dict or t is list:
            plain = _plain(item, budget - 1) and plain
        elif t is not str and t is not int and t is not bool and item is not None:
            plain = False
    return plain


def sha256(data: bytes) -> bytes:
    """SHA-256 of ``data``, the 32 raw bytes (the Merkle tree's hashes and key fingerprints)."""
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lower-case hex digits."""
    return hashlib.sha256(data).hexdigest()


def sha256_digest(data: bytes) -> str:
    """SHA-256 of ``data`` as ``sha256:<hex>``."""
    return "sha256:" + sha256_hex(data)


def file_digest(path: str | os.PathLike[str]) -> str:
    """``sha256_digest`` of a file's bytes, read in chunks."""
    with open(path, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def digest(value: Any) -> str:
    """SHA-256 hex digest of the canonical bytes of ``value``."""
    return sha256_hex(canonical_bytes(value))


def plain_digest(value: Any) -> str:
    """``digest`` of a value known to be plain, by the fast encoder."""
    return sha256_hex(plain_canonical_bytes(value))


def stored_json(value: Any) -> str:
    """Compact JSON text of a value kept for reading back (a stored facet), never hashed.

    Any valid JSON will do here, so the fast encoder is used whatever the value
    holds; what it refuses (an int beyond 64 bits) goes to the standard one.
    """
    try:
        return orjson.dumps(value, option=_REFUSE_NON_JSON).decode()
    except (orjson.JSONEncodeError, TypeError):
        return _STORED.encode(value)
