"""Responses the gateway writes itself: health, metrics and errors, each complete in one write."""

from __future__ import annotations

import orjson

_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    413: b"Content Too Large",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def reply(
    status: int,
    body: bytes,
    keep_alive: bool = True,
    content_type: bytes = b"application/json",
    head_only: bool = False,
) -> bytes:
    """A complete response; for a HEAD request (``head_only``) the head the GET would have."""
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n" % (
        status,
        _REASONS.get(status, b"Error"),
        content_type,
        len(body),
        b"" if keep_alive else b"connection: close\r\n",
    )
    return head if head_only else head + body


def error_reply(
    status: int, message: str, keep_alive: bool = True, head_only: bool = False
) -> bytes:
    """``{"error": message}`` with ``status``: the shape both protocols use for errors."""
    return reply(status, orjson.dumps({"error": message}), keep_alive, head_only=head_only)


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
