"""HTTP plumbing for the raw ASGI app: bodies, encodings, error statuses, responses."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from pier.errors import ErrorCode, InvalidInput, PayloadTooLarge, PierError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
OCTETS = b"application/octet-stream"

#: Error code -> HTTP status of the model server's REST edge (every code has one; a test
#: checks). Triton, KServe and TF Serving agree on these.
STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.ALREADY_EXISTS: 409,
    ErrorCode.FAILED_PRECONDITION: 409,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.UNIMPLEMENTED: 501,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.LOAD_FAILED: 500,
    ErrorCode.DATA_LOSS: 500,
    ErrorCode.INTERNAL: 500,
}


def http_status(exc: PierError) -> int:
    """The HTTP status that answers ``exc``."""
    if isinstance(exc, PayloadTooLarge):
        return 413  # a resource_exhausted that HTTP names more precisely
    return STATUS_BY_CODE[exc.code]


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(data))


def error_response(message: str, status: int) -> Response:
    return Response(status, orjson.dumps({"error": message}))


@dataclass(slots=True)
class RequestHeaders:
    """The few request headers the inference paths look at, read in one pass."""

    content_length: int | None = None
    content_encoding: bytes = b""
    accept_encoding: bytes = b""
    inference_header_length: int | None = None

    @classmethod
    def parse(cls, raw: list[tuple[bytes, bytes]]) -> RequestHeaders:
        h = cls()
        for name, value in raw:
            if name == b"content-length":
                # digits only (the usual case) need no call to check them
                h.content_length = int(value) if value.isdigit() else _int_header(name, value)
            elif name == b"inference-header-content-length":
                h.inference_header_length = _int_header(name, value)
            elif name == b"content-encoding":
                h.content_encoding = value.strip().lower()
            elif name == b"accept-encoding":
                h.accept_encoding = value.lower()
        return h


def _int_header(name: bytes, value: bytes) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise InvalidInput(
            f"header {name.decode()}: '{value.decode(errors='replace')}' is not a non-negative integer"
        )
    return n


async def read_body(receive: Receive, headers: RequestHeaders, limit: int) -> bytes:
    """The whole request body, decompressed, refusing more than ``limit`` bytes."""
    if headers.content_length is not None and headers.content_length > limit:
        raise PayloadTooLarge(
            f"request body of {headers.content_length} bytes is over the limit of {limit} bytes"
        )
    message = await receive()
    body: bytes = message.get("body", b"")
    if message.get("more_body", False):
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
    if headers.content_encoding and headers.content_encoding != b"identity":
        body = _decompress(body, headers.content_encoding, limit)
    return body


def _decompress(body: bytes, encoding: bytes, limit: int) -> bytes:
    if encoding == b"gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == b"deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise InvalidInput(
            f"unsupported Content-Encoding '{encoding.decode(errors='replace')}'; use gzip or deflate"
        )
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"request body is not valid {encoding.decode()} data: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed request body is over the limit of {limit} bytes")
    return out


def compress(response: Response, accept: bytes) -> None:
    """Compress a large response body in place when the client asked for it."""
    if len(response.body) < 1024 or not accept:
        return
    if b"gzip" in accept:
        response.body = gzip.compress(response.body, compresslevel=1)
        response.headers.append((b"content-encoding", b"gzip"))
    elif b"deflate" in accept:
        response.body = zlib.compress(response.body, 1)
        response.headers.append((b"content-encoding", b"deflate"))


def response_start(response: Response) -> Message:
    """The ``http.response.start`` message of a response; its body follows in one message."""
    headers = [
        (b"content-type", response.content_type),
        (b"content-length", b"%d" % len(response.body)),
        *response.headers,
    ]
    return {"type": "http.response.start", "status": response.status, "headers": headers}
