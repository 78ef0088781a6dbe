"""One request on its way through the gateway, and what its client connection must offer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pier.gateway.pool import RoutedReplica, UpstreamConnection
    from pier.gateway.routes import ServiceRoute


class Client(Protocol):
    """The client side of an exchange: where the response goes."""

    def write(self, data: bytes) -> None:
        """Send response bytes to the client, untouched."""

    def response_done(self, exchange: Exchange, status: int) -> None:
        """The whole response was passed on."""

    def upstream_failed(self, exchange: Exchange, reason: str, retryable: bool) -> None:
        """The replica connection failed before the response was complete."""


class Exchange:
    """A request read in full from a client, forwarded to one replica (or two, on retry)."""

    __slots__ = (
        "body",
        "client",
        "conn",
        "forwarded",
        "head",
        "is_head",
        "keep_alive",
        "replica",
        "route",
        "stale",
        "started",
        "tries",
    )

    def __init__(
        self,
        client: Client,
        route: ServiceRoute,
        head: bytes,
        body: bytes,
        is_head: bool,
        keep_alive: bool,
        started: float,
    ) -> None:
        self.client = client
        self.route = route
        #: the request line and headers as sent upstream, blank line included
        self.head = head
        self.body = body
        self.is_head = is_head
        #: whether the client connection stays open after the response
        self.keep_alive = keep_alive
        #: perf_counter when the request was read
        self.started = started
        #: the replica the request was last sent to
        self.replica: RoutedReplica | None = None
        self.conn: UpstreamConnection | None = None
        #: whether response bytes went to the client: from then on, no retry or error reply
        self.forwarded = False
        self.tries = 0
        #: the last attempt failed on a reused connection the replica had closed: not a
        #: sign of an unhealthy replica, so it does not count toward ejection
        self.stale = False
