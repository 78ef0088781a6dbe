"""uvicorn's httptools protocol with bounds on the request target and the header block.

uvicorn accepts a request line of any length (it concatenates ``self.url += url``, which
is quadratic) and httptools gathers a header value of any length the same way, so one
client streaming a huge head costs the server memory and CPU that every other client
waits on. This protocol counts the head's bytes as they arrive and answers 414 (URI Too
Long) or 431 (Request Header Fields Too Large), then closes that connection only. Imported
by the server when it starts uvicorn; ``import pier`` does not load it.
"""

from __future__ import annotations

from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

#: Longest request target (path and query), in bytes: as nginx's and gunicorn's default.
MAX_TARGET = 8 * 1024
#: Most bytes of header names and values in one request.
MAX_HEADERS = 64 * 1024
# Bytes of an unfinished head, counted as they arrive: a header value that httptools is
# still gathering is not seen by on_header until it ends.
_MAX_HEAD = MAX_TARGET + MAX_HEADERS + 4096


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing; the refusal is kept on the protocol."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses an over-long request target (414) or headers (431)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._target_bytes = 0
        self._header_bytes = 0
        self._head_bytes = 0  # bytes received while a head was unfinished
        self._in_head = False
        self._refusal: tuple[int, str] | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._target_bytes = self._header_bytes = self._head_bytes = 0
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        self._target_bytes += len(url)
        if self._target_bytes > MAX_TARGET:
            self._refuse_in_parser(414, f"request target is over {MAX_TARGET} bytes")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._header_bytes > MAX_HEADERS:
            self._refuse_in_parser(431, f"request headers are over {MAX_HEADERS} bytes")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > _MAX_HEAD and not self.transport.is_closing():
            what = "request line" if self._target_bytes and not self._header_bytes else "head"
            status = 414 if what == "request line" else 431
            self._refusal = (status, f"{what} is over {_MAX_HEAD} bytes and not finished")
            self.send_400_response("")

    def _refuse_in_parser(self, status: int, message: str) -> None:
        self._refusal = (status, message)
        raise _HeadTooLarge(message)  # httptools stops; uvicorn calls send_400_response

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
            return
        status, message = self._refusal
        body = orjson.dumps({"error": message})
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
