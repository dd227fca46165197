"""Reading OpenLineage events from files and streams, and recording them.

Accepted inputs: one JSON object, a JSON array of objects, JSON Lines, or any
mix of concatenated JSON values, read from files or standard input. Reading
is incremental: memory holds one chunk and the event being decoded, never the
whole file, whatever its size.

Each event is validated before anything is written; a rejected event is
reported with its file and line and changes nothing. Accepted events are
recorded in batches (one transaction each), every event all-or-nothing.
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from lineage.errors import EventError, InputError, LineageError
from lineage.ledger import Pending
from lineage.openlineage import ParsedEvent, parse_event
from lineage.projection import OPENLINEAGE_KIND
from lineage.store import Store

CHUNK = 1 << 16
MAX_EVENT_BYTES = 16 << 20  # one event may not be larger than this (a runaway file, not an event)
_DECODER = json.JSONDecoder()
_SPACE = " \t\r\n"


@dataclass(slots=True)
class Document:
    """One JSON value read from a source, or the reason it could not be read."""

    where: str
    value: Any = None
    error: str | None = None
    text: str | None = None  # the source text, when ``value`` came from the fast decoder (see ``exact``)

    def exact(self) -> Any:
        """The value as the standard library decodes it.

        The fast decoder (orjson) reads a plain value (no floats) exactly as the
        standard library does, but may read big integers and some floats
        differently; callers that find floats in ``value`` ask for this instead.
        """
        return self.value if self.text is None else json.loads(self.text)


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "rejections": [{"where": w, "reason": r} for w, r in self.rejected],
            "warnings": [{"where": w, "warning": m} for w, m in self.warnings],
        }


def read_documents(stream: IO[bytes], name: str, on_bytes: Callable[[int], None] | None = None) -> Iterator[Document]:
    """Yield each JSON value in ``stream``, with ``name:line`` of where it starts.

    A top-level array is unpacked into its elements. After a syntax error in
    JSON Lines, reading resumes on the next line; inside an array it stops.
    """
    reader = _Reader(stream, name, on_bytes)
    while reader.skip_space():
        if reader.peek() == "[":
            reader.advance(1)
            yield from _array(reader)
        else:
            yield reader.decode(resync=True)


def _array(reader: _Reader) -> Iterator[Document]:
    expect_item = True
    while reader.skip_space():
        ch = reader.peek()
        if ch == "]":
            reader.advance(1)
            return
        if ch == "," and not expect_item:
            reader.advance(1)
            expect_item = True
            continue
        if not expect_item:
            yield Document(reader.where(), error=f"expected ',' or ']' in the array, found {ch!r}")
            reader.abandon()
            return
        doc = reader.decode(resync=False)
        yield doc
        if doc.error:
            reader.abandon()
            return
        expect_item = False
    yield Document(reader.where(), error="the JSON array is not closed with ']'")


class _Reader:
    """A text buffer over a byte stream, decoding UTF-8 incrementally and counting lines."""

    def __init__(self, stream: IO[bytes], name: str, on_bytes: Callable[[int], None] | None):
        self.stream, self.name, self.on_bytes = stream, name, on_bytes
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.buf, self.pos, self.line, self.eof, self.consumed = "", 0, 1, False, 0

    def where(self) -> str:
        return f"{self.name}:{self.line}"

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.stream.read(CHUNK)
        if self.on_bytes and chunk:
            self.on_bytes(len(chunk))
        try:
            text = self.decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as e:
            raise InputError(f"{self.name}: invalid UTF-8 near byte {self.consumed + e.start}") from None
        self.consumed += len(chunk)
        self.eof = not chunk
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return bool(text) or not self.eof

    def skip_space(self) -> bool:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _SPACE:
                self.line += self.buf[self.pos] == "\n"
                self.pos += 1
            if self.pos < len(self.buf):
                return True
            if not self._fill():
                return False

    def peek(self) -> str:
        return self.buf[self.pos]

    def advance(self, n: int) -> None:
        self.line += self.buf.count("\n", self.pos, self.pos + n)
        self.pos += n

    def abandon(self) -> None:
        self.buf, self.pos, self.eof = "", 0, True

    def decode(self, resync: bool) -> Document:
        where = self.where()
        if resync and (line := self._whole_line()) is not None:
            try:  # JSON Lines: a line that is one JSON value, parsed in one call
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                pass  # the standard decoder reads it again below, for its exact reading or its error message
            else:
                self.advance(len(line) + 1)
                return Document(where, value=value, text=line)
            try:
                value = json.loads(line)
            except RecursionError:
                self.advance(len(line) + 1)
                return Document(where, error="invalid JSON: nested too deeply to read")
            except ValueError:
                pass
            else:
                self.advance(len(line) + 1)
                return Document(where, value=value)
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except RecursionError:
                self.abandon()
                return Document(where, error="invalid JSON: nested too deeply to read")
            except json.JSONDecodeError as e:
                if not self.eof and len(self.buf) - self.pos < MAX_EVENT_BYTES and self._fill():
                    continue
                return self._syntax_error(where, e, resync)
            if end == len(self.buf) and not self.eof and self._fill():
                continue  # a number or literal may go on in the next chunk
            self.advance(end - self.pos)
            return Document(where, value=value)

    def _whole_line(self) -> str | None:
        newline = self.buf.find("\n", self.pos)
        if newline < 0 and not self.eof:
            if not self._fill():
                return None
            newline = self.buf.find("\n", self.pos)
        return self.buf[self.pos : newline] if newline >= 0 else None

    def _syntax_error(self, where: str, e: json.JSONDecodeError, resync: bool) -> Document:
        if len(self.buf) - self.pos >= MAX_EVENT_BYTES:
            self.abandon()
            return Document(where, error=f"one JSON value is larger than {MAX_EVENT_BYTES >> 20} MiB")
        at = self.line + self.buf.count("\n", self.pos, e.pos)
        doc = Document(where, error=f"invalid JSON: {e.msg} (at line {at})")
        if not resync:
            self.abandon()
            return doc
        # JSON Lines: drop the line the bad value started on and go on with the next.
        while (newline := self.buf.find("\n", self.pos)) < 0:
            self.pos = len(self.buf)
            if not self._fill():
                return doc
        self.advance(newline + 1 - self.pos)
        return doc


def events_of(doc: Document) -> Iterator[Document]:
    """Unpack the ``{"events": [...]}`` wrapper some tools write; pass anything else on."""
    value = doc.value
    if isinstance(value, dict) and set(value) == {"events"} and isinstance(value["events"], list):
        value = doc.exact()  # the items are not checked for floats one by one here
        for i, item in enumerate(value["events"]):
            yield Document(f"{doc.where} events[{i}]", value=item)
    else:
        yield doc


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector during bulk work; ``between_batches`` collects.

    A batch holds thousands of parsed events; the collector would re-scan them
    again and again (it tripled ingest time). Parsed JSON has no cycles, so
    reference counting frees it, but a store's driver may leave cyclic garbage
    per transaction (the Neo4j driver does: 7.5 KB per event, 8.8 GB over the
    1M file), so the young generations are collected after every batch, when
    the batch itself is gone and there is little left to scan.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def prepare(raw: Any, actor: str, exact: Callable[[], Any] | None = None) -> tuple[ParsedEvent, Pending]:
    """Validate one OpenLineage event and make its ledger write: the one preparation that ``ingest``,
    the HTTP routes and the SDK share.

    An event that is not plain (it holds floats) is read again by ``exact`` (the standard decoder),
    when given, so the ledger keeps exactly what the standard decoder reads (``Document.exact``).
    Raises ``EventError`` naming the field.
    """
    event = parse_event(raw)
    if not event.plain and exact is not None:
        raw = exact()
        event = parse_event(raw)
    return event, Pending(OPENLINEAGE_KIND, raw, actor, event.subject, event.time_key, hint=event, plain=event.plain)


def ingest(
    store: Store,
    documents: Iterable[Document],
    actor: str,
    batch: int = 500,
    after_batch: Callable[[Store], Any] | None = None,
) -> IngestReport:
    """Validate and record every event; return what was accepted, duplicated and rejected.
    ``after_batch`` runs after each batch is written (a checkpointer)."""
    with paused_gc():
        return _ingest(store, documents, actor, batch, after_batch)


def _ingest(
    store: Store, documents: Iterable[Document], actor: str, batch: int, after_batch: Callable[[Store], Any] | None
) -> IngestReport:
    report = IngestReport()
    pending: list[tuple[str, Pending]] = []
    for outer in documents:
        for doc in events_of(outer) if outer.error is None else [outer]:
            if doc.error is not None:
                report.rejected.append((doc.where, doc.error))
                continue
            try:
                event, write = prepare(doc.value, actor, doc.exact if doc.text is not None else None)
            except EventError as e:
                report.rejected.append((doc.where, str(e)))
                continue
            report.warnings += [(doc.where, w) for w in event.warnings]
            pending.append((doc.where, write))
            if len(pending) >= batch:
                _flush(store, pending, report)
                if after_batch:
                    after_batch(store)
    _flush(store, pending, report)
    if after_batch:
        after_batch(store)
    return report


def _flush(store: Store, pending: list[tuple[str, Pending]], report: IngestReport) -> None:
    if not pending:
        return
    results = store.append_many([p for _, p in pending])
    for (where, _), result in zip(pending, results):
        if isinstance(result, LineageError):
            report.rejected.append((where, str(result)))
        elif result.duplicate:
            report.duplicates += 1
        else:
            report.accepted += 1
    pending.clear()
    between_batches()


def between_batches() -> None:
    """Free the cyclic garbage of the batch just written (see ``paused_gc``)."""
    if not gc.isenabled():
        gc.collect(1)
