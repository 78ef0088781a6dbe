"""The client side of the gateway: HTTP/1.1 connections parsed with httptools, in order.

A request is read in full (Content-Length or chunked, up to ``max_body``), its head is
rebuilt without hop-by-hop headers and with a Content-Length, and it is handed to the
proxy. Requests pipelined on one connection are answered one after the other.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, cast

import httptools
import orjson

from pier.gateway.exchange import Exchange
from pier.gateway.pool import set_nodelay

if TYPE_CHECKING:
    from pier.gateway.server import Gateway

#: request headers the gateway consumes or that concern one connection only
_SPECIAL = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"upgrade",
        b"expect",
    }
)
_BODY_METHODS = frozenset({b"POST", b"PUT", b"PATCH"})
_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    413: b"Content Too Large",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: requests parsed ahead of the one being answered before reading pauses
MAX_QUEUED = 16


def reply(
    status: int,
    body: bytes,
    keep_alive: bool = True,
    content_type: bytes = b"application/json",
    head_only: bool = False,
) -> bytes:
    """A complete response the gateway answers itself."""
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n" % (
        status,
        _REASONS.get(status, b"Error"),
        content_type,
        len(body),
        b"" if keep_alive else b"connection: close\r\n",
    )
    return head if head_only else head + body


def error_reply(status: int, message: str, keep_alive: bool = True) -> bytes:
    """``{"error": message}`` with ``status``: the shape both protocols use for errors."""
    return reply(status, orjson.dumps({"error": message}), keep_alive)


class _Stop(Exception):
    """Raised from a parser callback to stop reading this connection."""


class Local:
    """A request the gateway answers itself, queued behind earlier ones."""

    __slots__ = ("head_only", "keep_alive", "method", "path", "ready", "service")

    def __init__(
        self,
        path: str,
        method: bytes,
        keep_alive: bool,
        ready: bytes | None = None,
        service: str | None = None,
    ) -> None:
        self.path = path
        #: the service a model path names (unknown to the gateway); None for other paths
        self.service = service
        self.method = method
        self.keep_alive = keep_alive
        self.head_only = method == b"HEAD"
        #: a response decided at parse time (errors); None: the gateway builds it
        self.ready = ready


class ClientConnection(asyncio.Protocol):
    """One client's connection to the gateway."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Exchange | Local] = deque()
        self.current: Exchange | None = None
        self.closed = False
        self.stopped = False  # no more requests are read (error, or closing)
        self.write_paused = False
        self.read_paused = False
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.lines: list[bytes] = []
        self.parts: list[bytes] = []
        self.size = 0
        self.content_length = -1
        self.expect = False

    # ----- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        set_nodelay(transport)
        self.gw.clients.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gw.clients.discard(self)
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self.stopped:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not supported by the gateway")
        except httptools.HttpParserError as exc:
            if not self.stopped:
                self._refuse(400, f"malformed HTTP request: {exc}")
        if self.current is None:
            self._next()
        elif len(self.queue) >= MAX_QUEUED and self.transport is not None:
            self.transport.pause_reading()
            self.read_paused = True

    def pause_writing(self) -> None:
        self.write_paused = True
        ex = self.current
        if ex is not None and ex.conn is not None:
            ex.conn.pause()

    def resume_writing(self) -> None:
        self.write_paused = False
        ex = self.current
        if ex is not None and ex.conn is not None:
            ex.conn.resume()

    # ----- httptools callbacks -------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname in _SPECIAL:
            if lname == b"content-length":
                self.content_length = int(value)
            elif lname == b"expect" and value.lower() == b"100-continue":
                self.expect = True
            return
        self.lines.append(name + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        limit = self.gw.max_body
        if self.content_length > limit:
            self._too_large(limit)
        if self.expect and self.current is None and not self.queue and self.transport:
            self.transport.write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.gw.max_body:
            self._too_large(self.gw.max_body)
        self.parts.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        url = self.url
        method = parser.get_method()
        keep_alive = parser.should_keep_alive() and not self.gw.closing
        gw = self.gw
        entry = gw.paths.get(url)
        if entry is None:
            entry = gw.classify(url)
        service, path = entry
        route = None if service is None else gw.routes.get(service)
        if route is None:
            self.queue.append(Local(path, method, keep_alive, None, service))
        else:
            parts = self.parts
            body = parts[0] if len(parts) == 1 else b"".join(parts)
            lines = self.lines
            if body or method in _BODY_METHODS:
                lines.append(b"content-length: %d\r\n\r\n" % len(body))
            else:
                lines.append(b"\r\n")
            head = b"%s %s HTTP/1.1\r\n%s" % (method, url, b"".join(lines))
            self.queue.append(
                Exchange(
                    self, route, head, body, method == b"HEAD", keep_alive, time.perf_counter()
                )
            )
        self._reset()

    # ----- answering -----------------------------------------------------------

    def _too_large(self, limit: int) -> None:
        message = f"request body larger than the gateway's limit of {limit} bytes"
        self.queue.append(Local("", b"", False, error_reply(413, message, False)))
        self.stopped = True
        raise _Stop

    def _refuse(self, status: int, message: str) -> None:
        self.queue.append(Local("", b"", False, error_reply(status, message, False)))
        self.stopped = True

    def _next(self) -> None:
        """Answer queued requests until one is forwarded (its reply comes later) or none is left."""
        queue = self.queue
        transport = self.transport
        assert transport is not None
        while self.current is None and queue and not self.closed:
            item = queue.popleft()
            if type(item) is Exchange:
                self.current = item
                if self.gw.proxy.forward(item):
                    return
                self.current = None
                data = self.gw.no_replica(item)
                keep_alive = item.keep_alive
            else:
                assert isinstance(item, Local)
                data = item.ready or self.gw.local(item)
                keep_alive = item.keep_alive
            transport.write(data)
            if not keep_alive:
                self._close()
                return
        if self.read_paused and len(queue) < MAX_QUEUED:
            self.read_paused = False
            transport.resume_reading()

    def _close(self) -> None:
        self.stopped = True
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    def write(self, data: bytes) -> None:
        if not self.closed:
            assert self.transport is not None
            self.transport.write(data)

    def response_done(self, exchange: Exchange, status: int) -> None:
        self.gw.proxy.done(exchange, status)
        if exchange is not self.current:
            return
        self.current = None
        if not exchange.keep_alive or self.gw.closing:
            self._close()
        else:
            self._next()

    def upstream_failed(self, exchange: Exchange, reason: str, retryable: bool) -> None:
        if exchange is not self.current or exchange.target is None:
            return  # given up on already
        target = exchange.target
        if self.gw.proxy.failed(exchange, retryable):
            return
        self.current = None
        if exchange.forwarded:  # part of a response went out: the client must see it cut
            if self.transport is not None:
                self.transport.abort()
            self.closed = True
            return
        message = (
            f"replica '{target.backend.id}' of service '{exchange.route.name}' failed: {reason}"
        )
        self.write(error_reply(502, message, exchange.keep_alive))
        if exchange.keep_alive:
            self._next()
        else:
            self._close()

    def check_timeout(self, now: float, limit: float) -> None:
        """Give up on the current exchange if it has run past ``limit`` seconds: 504."""
        ex = self.current
        if ex is None or now - ex.started <= limit:
            return
        if ex.conn is not None and ex.conn.exchange is ex:
            ex.conn.abort()
        self.gw.proxy.abandoned(ex)
        self.current = None
        if ex.forwarded:
            if self.transport is not None:
                self.transport.abort()
            self.closed = True
            return
        message = f"service '{ex.route.name}' did not answer within {limit:g}s"
        self.write(error_reply(504, message, False))
        self._close()

    def close_if_idle(self) -> None:
        """Close the connection if no request is being answered (the gateway is stopping)."""
        if self.current is None and not self.queue:
            self._close()
