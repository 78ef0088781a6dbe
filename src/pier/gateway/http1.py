"""The client side of the gateway: HTTP/1.1 connections parsed with httptools, in order.

A request is read in full (Content-Length or chunked, up to ``max_body``), its head is
rebuilt without hop-by-hop headers and with a Content-Length, and it is handed to the
proxy. Requests pipelined on one connection are answered one after the other. The request
target, the headers and the body are bounded while they arrive: past a bound the request
is answered (414, 431, 413) and the connection closed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol, cast

import httptools

from pier.gateway.exchange import Exchange
from pier.gateway.pool import set_nodelay
from pier.gateway.replies import CONTINUE, Local, error_reply

if TYPE_CHECKING:
    from pier.gateway.proxy import Proxy
    from pier.gateway.routes import ServiceRoute
    from pier.gateway.settings import GatewaySettings

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
#: room in a request head for the method, the version and line ends, beyond the bounds
#: on the target and the headers
_HEAD_SLACK = 1024
#: after refusing a request, how long (and how much of) the rest of what the client
#: sends is read and dropped before the connection closes: closing with unread input
#: sends a reset, which can destroy the refusal before the client reads it
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024


class ClientHost(Protocol):
    """What a client connection needs of the gateway that accepted it."""

    @property
    def settings(self) -> GatewaySettings: ...

    @property
    def closing(self) -> bool:
        """The gateway is stopping: answer what is read, keep no connection alive."""

    @property
    def proxy(self) -> Proxy: ...

    @property
    def clients(self) -> set[ClientConnection]:
        """The open client connections; each adds itself and removes itself."""

    def resolve(self, url: bytes) -> tuple[ServiceRoute | None, str | None, str]:
        """(route or None, service the path names or None, path) of a request target."""

    def local(self, req: Local) -> bytes:
        """The reply to a request the gateway answers itself."""

    def no_replica(self, ex: Exchange) -> bytes:
        """The 503 for a request whose service has no ready replica now."""


class _Stop(Exception):
    """Raised from a parser callback to stop reading this connection."""


class ClientConnection(asyncio.Protocol):
    """One client's connection to the gateway."""

    def __init__(self, host: ClientHost) -> None:
        self.host = host
        settings = host.settings
        self.max_body = settings.max_body
        self.max_target = settings.max_request_target
        self.max_headers = settings.max_header_bytes
        self.max_head = settings.max_request_target + settings.max_header_bytes + _HEAD_SLACK
        self.max_queued = settings.max_pipelined
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Exchange | Local] = deque()
        self.current: Exchange | None = None
        self.closed = False
        self.stopped = False  # no more requests are read (error, or closing)
        #: a request was refused while it arrived: the client may still be sending
        self.refused = False
        self.write_paused = False
        self.read_paused = False
        #: a request head is being read (its target begun, its headers not complete)
        self.in_head = False
        #: the last bytes of the head so far, for a blank line split between reads
        self.tail = b""
        self._linger: asyncio.TimerHandle | None = None
        self.lingered = 0
        self._reset()

    def _reset(self) -> None:
        #: bytes of the head read in data after the one it began in
        self.head_seen = 0
        self.url_parts: list[bytes] = []
        self.url_size = 0
        self.header_size = 0
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
        self.host.clients.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.host.clients.discard(self)
        self.queue.clear()
        if self._linger is not None:
            self._linger.cancel()

    def data_received(self, data: bytes) -> None:
        if self.stopped:
            if self._linger is not None:
                self.lingered += len(data)
                if self.lingered > LINGER_BYTES:
                    self._close()
            return
        if self.in_head and self._head_overflows(data):
            return
        self._feed(data)
        if self.in_head:
            self.tail = data[-3:]
        if self.current is None:
            self._next()
        elif len(self.queue) >= self.max_queued and self.transport is not None:
            self.transport.pause_reading()
            self.read_paused = True

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not supported by the gateway")
        except httptools.HttpParserError as exc:
            if not self.stopped:
                self._refuse(400, f"malformed HTTP request: {exc}")

    def _head_overflows(self, data: bytes) -> bool:
        """Refuse a head that ``data`` would take past the largest one allowed.

        A head is parsed as it arrives, so the target and headers are bounded in the
        callbacks; this bounds what the parser itself holds of a target or header still
        incomplete (it joins their pieces), for heads that come in many reads.
        """
        tail = self.tail
        seam = (tail + data[:3]).find(b"\r\n\r\n")  # the blank line split across reads
        if seam >= 0:
            part = seam + 4 - len(tail)
        else:
            end = data.find(b"\r\n\r\n")
            part = len(data) if end < 0 else end + 4
        budget = self.max_head - self.head_seen
        self.head_seen += part
        if part <= budget:
            return False
        # Feed what fits: when it is the target that runs long, its callback says so (414).
        self._feed(data[: budget + 1])
        if not self.stopped:
            self._refuse(
                431, f"request head larger than the gateway's limit of {self.max_head} bytes"
            )
        self._next()
        return True

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
        self.in_head = True  # known here rather than in one more callback per request
        # Pieces are joined once, at the end: adding bytes to bytes piece by piece is
        # quadratic in the length of a target that arrives in many reads.
        self.url_parts.append(url)
        self.url_size += len(url)
        if self.url_size > self.max_target:
            message = f"request target longer than the gateway's limit of {self.max_target} bytes"
            self._refuse(414, message)
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_size += len(name) + len(value) + 4  # ": " and the line end
        if self.header_size > self.max_headers:
            message = f"request headers larger than the gateway's limit of {self.max_headers} bytes"
            self._refuse(431, message)
            raise _Stop
        lname = name.lower()
        if lname in _SPECIAL:
            if lname == b"content-length":
                self.content_length = int(value)
            elif lname == b"expect" and value.lower() == b"100-continue":
                self.expect = True
            return
        self.lines.append(name + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        self.in_head = False
        limit = self.max_body
        if self.content_length > limit:
            self._too_large(limit)
        if self.expect and self.current is None and not self.queue and self.transport:
            self.transport.write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.max_body:
            self._too_large(self.max_body)
        self.parts.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        parts = self.url_parts
        url = parts[0] if len(parts) == 1 else b"".join(parts)
        method = parser.get_method()
        keep_alive = parser.should_keep_alive() and not self.host.closing
        route, service, path = self.host.resolve(url)
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
        self._refuse(413, f"request body larger than the gateway's limit of {limit} bytes")
        raise _Stop

    def _refuse(self, status: int, message: str) -> None:
        """Answer the request being read with ``status`` after those before it, and stop reading."""
        try:
            head_only = self.parser.get_method() == b"HEAD"
        except httptools.HttpParserError:  # no method parsed
            head_only = False
        self.queue.append(Local("", b"", False, error_reply(status, message, False, head_only)))
        self.stopped = True
        self.refused = True

    def _next(self) -> None:
        """Answer queued requests until one is forwarded (its reply comes later) or none is left."""
        queue = self.queue
        transport = self.transport
        assert transport is not None
        while self.current is None and queue and not self.closed:
            item = queue.popleft()
            if type(item) is Exchange:
                self.current = item
                if self.host.proxy.forward(item):
                    return
                self.current = None
                data = self.host.no_replica(item)
                keep_alive = item.keep_alive
            else:
                assert isinstance(item, Local)
                data = item.ready or self.host.local(item)
                keep_alive = item.keep_alive
            transport.write(data)
            if not keep_alive:
                self._end()
                return
        if self.read_paused and len(queue) < self.max_queued:
            self.read_paused = False
            transport.resume_reading()

    def _end(self) -> None:
        """Close after the last response; after a refusal, once the client stopped sending."""
        if not self.refused or self.transport is None or self.closed:
            self._close()
            return
        # Half-close: the refusal and then the end of the stream reach the client, while
        # what it still sends is read and dropped (``stopped``) for a little while.
        self.stopped = True
        transport = self.transport
        if transport.can_write_eof():
            transport.write_eof()
        if self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        self._linger = asyncio.get_running_loop().call_later(LINGER_SECONDS, self._close)

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
        self.host.proxy.done(exchange, status)
        if exchange is not self.current:
            return
        self.current = None
        if not exchange.keep_alive or self.host.closing:
            self._close()
        else:
            self._next()

    def upstream_failed(self, exchange: Exchange, reason: str, retryable: bool) -> None:
        if exchange is not self.current or exchange.replica is None:
            return  # given up on already
        replica = exchange.replica
        if self.host.proxy.failed(exchange, retryable):
            return
        self.current = None
        if exchange.forwarded:  # part of a response went out: the client must see it cut
            if self.transport is not None:
                self.transport.abort()
            self.closed = True
            return
        message = (
            f"replica '{replica.record.id}' of service '{exchange.route.name}' failed: {reason}"
        )
        self.write(error_reply(502, message, exchange.keep_alive, exchange.is_head))
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
        self.host.proxy.abandoned(ex)
        self.current = None
        if ex.forwarded:
            if self.transport is not None:
                self.transport.abort()
            self.closed = True
            return
        message = f"service '{ex.route.name}' did not answer within {limit:g}s"
        self.write(error_reply(504, message, False, ex.is_head))
        self._close()

    def close_if_idle(self) -> None:
        """Close the connection if no request is being answered (the gateway is stopping)."""
        if self.current is None and not self.queue:
            self._close()
