"""Request bodies and slow clients: the limits every route gets, whatever reads its body.

Invariants, for every route (ours and the plugins'):

* A request head not complete ``header_timeout`` seconds after its first byte (or after the
  connection opened) gets 408 and the connection is closed (``SlowClientProtocol``: uvicorn's
  h11 protocol has a keep-alive timer but no deadline for a head that is still arriving).
  Past ``limit_concurrency`` open connections, a new one gets 503 and is closed at once.
* A body not fully received ``body_timeout`` seconds after the route first reads it gets 408
  and the connection is closed (``BodyGuard``; uvicorn has no body deadline at all).
* A body is at most ``limit`` bytes, before and after gzip decompression (413, before it is
  inflated further); a Content-Encoding other than gzip or none gets 415.
* A body is UTF-8, without a byte order mark and without NUL bytes (which JSON never holds
  unescaped, and which are how a UTF-16 or UTF-32 body without a byte order mark shows):
  anything else gets 400 "not JSON (UTF-8 required)", so no decoder guesses an encoding.
* A client that disconnects mid-body costs one log line, not a traceback.
* Every TCP connection has Nagle's algorithm off (``TCP_NODELAY``), whoever bound the listener:
  a response is several writes (head, body), and with Nagle on, each one after the first on a
  kept-alive connection waited for the client's delayed ACK (~40 ms on Linux).

Routes read the body as usual (``await request.body()``, FastAPI's own body parsing); they
get it already inflated and checked. The errors are ``HTTPException`` raised from ``receive``,
so the app's ordinary exception handling answers them.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import socket
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import h11
import uvicorn
from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("uvicorn.error")  # the server's own log, where uvicorn reports connections
NOT_JSON = "the body is not JSON (UTF-8 required)"
Message = dict[str, Any]


class SlowClientConfig(uvicorn.Config):
    """uvicorn's configuration plus ``header_timeout``, which ``SlowClientProtocol`` reads."""

    header_timeout: float | None = None


def uvicorn_config(app: Any, *, header_timeout: float, **options: Any) -> SlowClientConfig:
    """uvicorn's configuration, serving with ``SlowClientProtocol`` (which reads ``header_timeout`` from it)."""
    config = SlowClientConfig(app, http=SlowClientProtocol, **options)
    config.header_timeout = header_timeout  # a plain attribute: it travels to worker processes with the config
    return config


class SlowClientProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for the request head and a cap on open connections."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _send_without_delay(transport)
        super().connection_made(transport)
        if self.limit_concurrency is not None and len(self.connections) > self.limit_concurrency:
            self._answer_and_close(503, "too many connections; try again later")
            return
        self._arm_head_timer()  # a client that connects and says nothing is closed too

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:  # the first bytes of a new request start its clock
            self._arm_head_timer()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            timeout = getattr(self.config, "header_timeout", None)
            if timeout:
                self._head_timer = self.loop.call_later(timeout, self._head_timed_out, timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self, timeout: float) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info(
                "%s:%s - no complete request head within %g s; closed", *(self.client or ("?", "?")), timeout
            )
            self._answer_and_close(408, f"the request head did not arrive within {timeout:g} s")

    def _answer_and_close(self, status: int, text: str) -> None:
        body = text.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (status, _REASONS[status], len(body), body)
        )
        self.transport.close()


_REASONS = {408: b"Request Timeout", 503: b"Service Unavailable"}


def _send_without_delay(transport: asyncio.BaseTransport) -> None:
    """Turn Nagle's algorithm off for a TCP connection.

    asyncio does it only when the accepted socket says ``proto == IPPROTO_TCP``, which it
    inherits from the listener: one bound by uvicorn before 0.55 for ``--workers N`` (or by
    gunicorn) says 0, so every kept-alive request there stalled ~40 ms.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:  # not a TCP socket after all: nothing to turn off
            log.debug("TCP_NODELAY not set: %s", e)


class BodyGuard:
    """ASGI middleware: deadline, size limit, gzip and UTF-8 for every request body."""

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int, body_timeout: float):
        self.app, self.limit, self.body_timeout = app, limit, body_timeout

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[Message]], send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await _refuse(413, f"the body is {int(declared)} bytes; the limit is {self.limit}", scope, send)
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        if encoding not in ("identity", "gzip"):
            return await _refuse(415, f"Content-Encoding {encoding!r} is not supported; use gzip or none", scope, send)
        if encoding == "gzip":  # the routes see the inflated body, so they must not inflate it again
            scope = {
                **scope,
                "headers": [(k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")],
            }
        body = _Body(receive, self.limit, self.body_timeout, gzip=encoding == "gzip")
        try:
            await self.app(scope, body.receive, send)
        except ClientDisconnect:
            log.info(
                "%s %s: the client disconnected after %d of its body's bytes",
                scope["method"],
                scope["path"],
                body.received,
            )


def _closing(status: int, detail: str) -> HTTPException:
    """An error answered mid-body: the rest of the body is never read, so the connection closes."""
    return HTTPException(status, detail, headers={"Connection": "close"})


async def _refuse(status: int, detail: str, scope: dict, send) -> None:
    """Answer before the app sees the request; close, since the body is left unread."""
    response = JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close"})
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


class _Body:
    """One request's ``receive``, bounded in time and size, inflated and checked as UTF-8."""

    def __init__(self, receive: Callable[[], Awaitable[Message]], limit: int, timeout: float, gzip: bool):
        self._receive, self.limit, self.timeout = receive, limit, timeout
        self._deadline: float | None = None
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self.received = self._out = 0
        self._done = self._started = False

    async def receive(self) -> Message:
        if self._done:  # after the body, receive only waits for a disconnect: no deadline
            return await self._receive()
        loop = asyncio.get_running_loop()
        if self._deadline is None:
            self._deadline = loop.time() + self.timeout
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            raise _closing(
                408, f"the body did not arrive within {self.timeout:g} s ({self.received} bytes received)"
            ) from None
        if message["type"] != "http.request":
            return message
        self._done = not message.get("more_body", False)
        return {**message, "body": self._check(message.get("body", b""))}

    def _check(self, chunk: bytes) -> bytes:
        self.received += len(chunk)
        if self.received > self.limit:
            raise _closing(413, f"the body is over the limit of {self.limit} bytes")
        chunk = self._inflated(chunk)
        start, self._out = self._out, self._out + len(chunk)
        nul = chunk.find(0)
        if nul >= 0:
            raise _closing(400, f"{NOT_JSON}: a NUL byte at byte {start + nul} (is it UTF-16 or UTF-32?)")
        try:
            text = self._utf8.decode(chunk, final=self._done)
        except UnicodeDecodeError as e:
            raise _closing(400, f"{NOT_JSON}: invalid UTF-8 at byte {start + e.start}") from None
        if text and not self._started:
            self._started = True
            if text[0] == "\ufeff":
                raise _closing(400, f"{NOT_JSON}: it starts with a byte order mark")
        return chunk

    def _inflated(self, chunk: bytes) -> bytes:
        """``chunk`` inflated if the body is gzip, else as it came."""
        inflate = self._inflate
        if inflate is None:
            return chunk
        try:
            out = inflate.decompress(chunk, self.limit + 1 - self._out)
        except zlib.error as e:
            raise _closing(400, f"the gzip body is corrupt: {e}") from None
        if self._out + len(out) > self.limit or inflate.unconsumed_tail:
            raise _closing(413, f"the decompressed body is over the limit of {self.limit} bytes")
        if self._done and not inflate.eof:
            raise _closing(400, "the gzip body is truncated")
        return out
