"""Signed checkpoints of the ledger's Merkle tree, in the C2SP signed-note format.

A checkpoint (C2SP tlog-checkpoint) is a note whose text is three lines: the
log's origin, the tree size in decimal, and the root hash in standard base64;
then an empty line and one signature line per signer (C2SP signed-note):
``— <key name> <base64(4-byte key hash || Ed25519 signature)>``. The key hash
is the first four bytes of SHA-256(name || "\\n" || 0x01 || public key). Keys
are written as the Go ``golang.org/x/mod/sumdb/note`` package writes them:

* verifier key (public): ``<name>+<hash, 8 hex digits>+<base64(0x01 || public key)>``
* signer key (private): ``PRIVATE+KEY+<name>+<hash>+<base64(0x01 || 32-byte seed)>``

so a checkpoint signed here verifies with that package and with any other
implementation of the format (``tests/test_checkpoint.py`` checks both ways).

The log key is the operator's and is kept outside the store (a file, a secret
manager): whoever can write the database cannot sign a checkpoint, so a
rewritten ledger cannot match a checkpoint someone kept. Needs the ``signing``
extra (``cryptography``).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from lineage.canonical import sha256
from lineage.errors import Invalid
from lineage.extras import require

ALGORITHM_ED25519 = 0x01
_DASH = "\u2014 "
_NAME = re.compile(r"^[^\s+]+\Z")  # \Z: $ would match before a final newline
_MAX_SIGNATURES = 100


class CheckpointError(Invalid):
    """A key, note or checkpoint that is malformed or does not verify (exit 2, HTTP 422)."""


def key_hash(name: str, public: bytes) -> bytes:
    return sha256(name.encode() + b"\n" + bytes([ALGORITHM_ED25519]) + public)[:4]


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise CheckpointError(f"key name {name!r}: must be non-empty, without spaces or '+'")
    return name


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(f"{what}: not standard base64") from None


@dataclass(frozen=True)
class Verifier:
    """A public log key: checks signatures made by its ``LogKey``."""

    name: str
    hash: bytes
    public: bytes

    @classmethod
    def parse(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)  # the base64 key may itself hold '+'
        if len(parts) != 3:
            raise CheckpointError("a log public key is <name>+<8 hex digits>+<base64 key>")
        name, hash_hex, key = parts
        _check_name(name)
        raw = _b64(key, "log public key")
        if len(raw) != 33 or raw[0] != ALGORITHM_ED25519:
            raise CheckpointError("log public key: not an Ed25519 key (0x01 and 32 bytes)")
        public = raw[1:]
        if hash_hex != key_hash(name, public).hex():
            raise CheckpointError(f"log public key {name}: its hash {hash_hex} does not match the key")
        return cls(name, key_hash(name, public), public)

    @classmethod
    def load(cls, value: str) -> Verifier:
        """A verifier key given as the key itself or as the path of a file holding it."""
        path = Path(value)
        try:
            text = path.read_text(encoding="utf-8") if "+" not in value or path.is_file() else value
        except OSError as e:
            raise CheckpointError(f"{value}: cannot read the log public key ({e.strerror})") from None
        return cls.parse(text)

    def text(self) -> str:
        return f"{self.name}+{self.hash.hex()}+{base64.b64encode(bytes([ALGORITHM_ED25519]) + self.public).decode()}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        require("signing", "cryptography")
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class LogKey:
    """A private log key (an Ed25519 seed and the name signatures carry)."""

    name: str
    seed: bytes = field(repr=False)

    @classmethod
    def generate(cls, name: str) -> LogKey:
        return cls(_check_name(name), os.urandom(32))

    @classmethod
    def parse(cls, text: str) -> LogKey:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise CheckpointError("a log key is PRIVATE+KEY+<name>+<8 hex digits>+<base64 seed>")
        name, hash_hex, key = parts[2:]
        _check_name(name)
        raw = _b64(key, "log key")
        if len(raw) != 33 or raw[0] != ALGORITHM_ED25519:
            raise CheckpointError("log key: not an Ed25519 key (0x01 and a 32-byte seed)")
        key_ = cls(name, raw[1:])
        if hash_hex != key_.verifier().hash.hex():
            raise CheckpointError(f"log key {name}: its hash {hash_hex} does not match the key")
        return key_

    @classmethod
    def load(cls, path: str | Path) -> LogKey:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise CheckpointError(f"{path}: cannot read the log key ({e.strerror})") from None
        return cls.parse(text)

    def _private(self):
        require("signing", "cryptography")
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(self.seed)

    def verifier(self) -> Verifier:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        public = self._private().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, key_hash(self.name, public), public)

    def text(self) -> str:
        raw = base64.b64encode(bytes([ALGORITHM_ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier().hash.hex()}+{raw}"

    def sign(self, message: bytes) -> bytes:
        return self._private().sign(message)


# --- notes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    name: str
    hash: bytes
    signature: bytes


def sign_note(text: str, key: LogKey) -> str:
    """The signed note of ``text`` (which must end with a newline)."""
    if any(c < " " and c != "\n" for c in text):
        raise CheckpointError("a note's text holds a control character other than newline (Go's note.Open refuses it)")
    if not text.endswith("\n") or "\n\n" in text:
        raise CheckpointError("a note's text ends with one newline and has no empty line")
    signature = key.sign(text.encode("utf-8"))
    verifier = key.verifier()
    line = base64.b64encode(verifier.hash + signature).decode()
    return f"{text}\n{_DASH}{key.name} {line}\n"


def split_note(note: str) -> tuple[str, list[Signature]]:
    """A note's text and its signature lines (not verified)."""
    if any(c < " " and c != "\n" for c in note):  # as sumdb/note Open: no control characters but newline
        raise CheckpointError("not a signed note: it holds a control character other than newline")
    text, sep, signed = note.rpartition("\n\n")
    if not sep or not signed.endswith("\n"):
        raise CheckpointError("not a signed note: no empty line before the signatures, or no final newline")
    text += "\n"
    signatures = []
    for line in signed[:-1].split("\n"):
        if not line.startswith(_DASH):
            raise CheckpointError(f"not a signature line: {line[:80]!r}")
        name, _, b64 = line[len(_DASH) :].partition(" ")
        raw = _b64(b64, f"signature by {name}")
        if len(raw) < 5:
            raise CheckpointError(f"signature by {name}: too short")
        signatures.append(Signature(_check_name(name), raw[:4], raw[4:]))
    if not signatures or len(signatures) > _MAX_SIGNATURES:
        raise CheckpointError("a signed note has between 1 and 100 signatures")
    return text, signatures


def open_note(note: str, verifier: Verifier) -> str:
    """The text of a note, if ``verifier``'s key signed it; ``CheckpointError`` otherwise."""
    text, signatures = split_note(note)
    mine = [s for s in signatures if s.name == verifier.name and s.hash == verifier.hash]
    if not mine:
        names = ", ".join(sorted({s.name for s in signatures}))
        raise CheckpointError(
            f"the note is not signed by log key {verifier.name}+{verifier.hash.hex()} (signed by {names})"
        )
    # as golang.org/x/mod/sumdb/note.Open: every signature by the key must verify, not just one
    if not all(verifier.verify(text.encode("utf-8"), s.signature) for s in mine):
        raise CheckpointError(f"the signature by {verifier.name} does not verify: the note was altered")
    return text


# --- checkpoints ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise CheckpointError("a checkpoint is an origin line, a size line and a root hash line")
        origin, size, root = lines[0], lines[1], lines[2]
        if not origin or not re.fullmatch(r"0|[1-9][0-9]{0,18}", size):
            raise CheckpointError(f"checkpoint: bad origin or size line ({origin[:80]!r}, {size[:30]!r})")
        digest = _b64(root, "checkpoint root hash")
        if len(digest) != 32:
            raise CheckpointError("checkpoint root hash: not 32 bytes")
        return cls(origin, int(size), digest, tuple(lines[3:-1]))


def sign_checkpoint(checkpoint: Checkpoint, key: LogKey) -> str:
    return sign_note(checkpoint.text(), key)


def read_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint a note carries, once the log key's signature on it verifies."""
    return Checkpoint.parse(open_note(note, verifier))


def load_checkpoint(path: str | Path, verifier: Verifier) -> Checkpoint:
    try:
        note = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({e})") from None
    try:
        return read_checkpoint(note, verifier)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
