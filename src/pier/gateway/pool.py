"""Keep-alive HTTP/1.1 connections to one replica, reused across requests, and their protocol.

A response is passed to the client as the bytes arrive. httptools tracks where the
response ends (Content-Length, chunked, or the close of the connection when it has
neither); only its head is looked at, and rewritten only when it carries hop-by-hop
headers (or, for a response ending at the close, to say the client's ends there too).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from typing import cast

import httptools

from pier.gateway.balancer import ReplicaLoad
from pier.gateway.exchange import Exchange
from pier.gateway.routes import Replica
from pier.gateway.settings import GatewaySettings
from pier.observe.gateway_metrics import BoundGatewayMetrics

#: response headers that concern one connection only; never passed on
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"upgrade",
    }
)
#: finds a hop-by-hop header in a response head: one C-level search, no lowering
_HOP_SEARCH = re.compile(
    rb"\n(?:connection|keep-alive|proxy-[a-z]+|te|upgrade)[ \t]*:", re.I
).search


def strip_hop_by_hop(head: bytes) -> bytes:
    """The response head without hop-by-hop headers, nor those its Connection header names."""
    lines = head.split(b"\r\n")
    drop = set(HOP_BY_HOP)
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"connection":
            drop.update(t.strip().lower() for t in value.split(b","))
    kept = [lines[0]]
    kept += [ln for ln in lines[1:] if ln.partition(b":")[0].strip().lower() not in drop]
    return b"\r\n".join(kept)


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Send small writes at once: a response or request is one write, never worth delaying."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # not TCP
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class UpstreamConnection(asyncio.Protocol):
    """One connection to a replica: sends a request, passes the response to the exchange."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.closed = False
        #: response bytes arrived for the current exchange
        self.received = False
        self.status = 0
        self.done = False
        self.keep_alive = True
        self.pending = b""  # a response head not yet complete
        #: the response in progress ends when the replica closes the connection
        self.until_close = False
        self.idle_since = 0.0
        self.paused = False
        #: responses completed on this connection: a reused one may have been closed by the
        #: replica while idle (keep-alive timeout, drain), which says nothing of its health
        self.served = 0

    # ----- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        set_nodelay(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        ex = self.exchange
        if ex is None:
            return
        self.exchange = None
        if self.until_close and self.status:  # the close ends a response without length
            ex.keep_alive = False
            ex.client.response_done(ex, self.status)
        elif not self.received:
            ex.stale = self.served > 0
            ex.client.upstream_failed(ex, "closed the connection before answering", True)
        else:
            ex.client.upstream_failed(ex, "closed the connection mid-response", False)

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None:  # nothing was asked: the replica is out of step; drop the connection
            self.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.exchange = None
            self.close()
            ex.client.upstream_failed(ex, "sent a malformed response", False)
            return
        if not ex.forwarded:
            data = self.pending + data if self.pending else data
            if self.status == 0:  # head not complete yet
                limit = self.pool.max_head
                if len(data) > limit:
                    self.exchange = None
                    self.close()
                    message = f"sent a response head over {limit} bytes"
                    ex.client.upstream_failed(ex, message, False)
                    return
                self.pending = data
                return
            self.pending = b""
            end = data.find(b"\r\n\r\n")
            if not self.done:
                # Neither chunked nor with a length, the body runs to the close of the
                # connection: so does the client's response then.
                low = data[:end].lower()
                self.until_close = (
                    b"\ncontent-length:" not in low and b"\ntransfer-encoding:" not in low
                )
            if self.until_close:
                data = strip_hop_by_hop(data[:end]) + b"\r\nconnection: close" + data[end:]
            elif _HOP_SEARCH(data, 0, end) is not None:
                data = strip_hop_by_hop(data[:end]) + data[end:]
            ex.forwarded = True
        ex.client.write(data)
        if self.done:
            self.finish(ex)

    # ----- httptools callbacks -------------------------------------------------

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # an interim response: the final one follows
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        ex = self.exchange
        if ex is not None and (ex.is_head or status in (204, 304)):
            # No body follows, whatever Content-Length says; the parser cannot be told
            # the request was HEAD, so a fresh one takes the next response.
            self.done = True
            self.parser = httptools.HttpResponseParser(self)

    def on_message_complete(self) -> None:
        if self.status:
            self.done = True
            self.until_close = False

    # ----- used by the proxy ---------------------------------------------------

    def send(self, ex: Exchange) -> None:
        """Send the exchange's request; the response comes back through ``data_received``."""
        self.exchange = ex
        ex.conn = self
        self.received = False
        self.status = 0
        self.done = False
        self.until_close = False
        transport = self.transport
        assert transport is not None
        body = ex.body
        if len(body) < 65536:
            transport.write(ex.head + body if body else ex.head)
        else:
            transport.write(ex.head)
            transport.write(body)

    def pause(self) -> None:
        """Stop reading the response: the client reads slower than the replica writes."""
        if self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and self.paused:
            self.paused = False
            self.transport.resume_reading()

    def finish(self, ex: Exchange) -> None:
        self.exchange = None
        self.served += 1
        if self.paused:
            self.resume()
        status = self.status
        self.done = False
        if self.keep_alive and not self.closed:
            self.pool.give_back(self)
        else:
            self.close()
        ex.client.response_done(ex, status)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True
        self.pool.forget(self)

    def abort(self) -> None:
        """Drop the connection at once (a request timed out): no exchange is told."""
        self.exchange = None
        if self.transport is not None:
            self.transport.abort()
        self.closed = True
        self.pool.forget(self)


class ConnectionPool:
    """Idle keep-alive connections to one replica, newest reused first."""

    def __init__(self, host: str, port: int, settings: GatewaySettings) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = settings.connect_timeout
        #: idle connections kept; more are closed when they come back
        self.max_idle = settings.idle_connections
        #: an idle connection older than this is closed rather than reused
        self.idle_seconds = settings.idle_seconds
        self.max_head = settings.max_response_head
        self.idle: list[UpstreamConnection] = []
        self.closed = False

    def take(self) -> UpstreamConnection | None:
        """An open idle connection, or None."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def give_back(self, conn: UpstreamConnection) -> None:
        if self.closed or len(self.idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self.idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        """Drop a closed connection from the idle list."""
        if conn in self.idle:
            self.idle.remove(conn)

    async def connect(self) -> UpstreamConnection:
        """A new connection; raises OSError or TimeoutError when the replica is unreachable."""
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: UpstreamConnection(self), self.host, self.port),
            self.connect_timeout,
        )
        return conn

    def close_stale(self, now: float) -> None:
        """Close connections idle for longer than ``idle_seconds``."""
        for conn in [c for c in self.idle if now - c.idle_since > self.idle_seconds]:
            conn.close()

    def close(self) -> None:
        """Close the idle connections; busy ones close when their response is done."""
        self.closed = True
        for conn in list(self.idle):
            conn.close()
        self.idle.clear()


class RoutedReplica(ReplicaLoad):
    """A replica as the proxy uses it: balancer load, connection pool and metric children."""

    __slots__ = ("bound", "pool", "record")

    def __init__(self, record: Replica, pool: ConnectionPool, bound: BoundGatewayMetrics) -> None:
        super().__init__()
        #: the routing table's entry: id, revision and address
        self.record = record
        self.pool = pool
        self.bound = bound
