"""HTTP plumbing: body limits, decompression, header parsing, TF Serving path parsing."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from typing import Any

import pytest

from pier.errors import InvalidInput, NotFound, PayloadTooLarge, Unavailable
from pier.serving.protocols.http import RequestHeaders, http_status, read_body
from pier.serving.protocols.tfs_rest import TfsPath, parse_path


def receiver(*chunks: bytes) -> Any:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


def read(headers: RequestHeaders, *chunks: bytes, limit: int = 100) -> bytes:
    return asyncio.run(read_body(receiver(*chunks), headers, limit))


def test_body_in_chunks() -> None:
    assert read(RequestHeaders(), b"ab", b"cd", b"e") == b"abcde"


def test_body_limit_by_header_and_by_stream() -> None:
    with pytest.raises(PayloadTooLarge, match="101 bytes"):
        read(RequestHeaders(content_length=101), b"x")
    with pytest.raises(PayloadTooLarge, match="limit of 100"):
        read(RequestHeaders(), b"x" * 60, b"x" * 60)


def test_gzip_and_deflate_bodies() -> None:
    assert read(RequestHeaders(content_encoding=b"gzip"), gzip.compress(b"hello")) == b"hello"
    assert read(RequestHeaders(content_encoding=b"deflate"), zlib.compress(b"hello")) == b"hello"
    with pytest.raises(PayloadTooLarge, match="decompressed"):
        read(RequestHeaders(content_encoding=b"gzip"), gzip.compress(b"0" * 10_000))
    with pytest.raises(InvalidInput, match="not valid gzip"):
        read(RequestHeaders(content_encoding=b"gzip"), b"plain")
    with pytest.raises(InvalidInput, match="br"):
        read(RequestHeaders(content_encoding=b"br"), b"x")


def test_headers_are_read_once() -> None:
    h = RequestHeaders.parse(
        [
            (b"content-length", b"12"),
            (b"inference-header-content-length", b"7"),
            (b"content-encoding", b" GZIP "),
        ]
    )
    assert (h.content_length, h.inference_header_length, h.content_encoding) == (12, 7, b"gzip")
    with pytest.raises(InvalidInput, match="inference-header-content-length"):
        RequestHeaders.parse([(b"inference-header-content-length", b"-3")])


def test_status_mapping() -> None:
    assert http_status(InvalidInput("x")) == 400
    assert http_status(NotFound("x")) == 404
    assert http_status(Unavailable("x")) == 503
    assert http_status(PayloadTooLarge("x")) == 413


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/models", None),
        ("/v1/models/m", TfsPath("m")),
        ("/v1/models/m/metadata", TfsPath("m", metadata=True)),
        ("/v1/models/m/versions/3", TfsPath("m", version=3)),
        ("/v1/models/m/labels/stable/metadata", TfsPath("m", label="stable", metadata=True)),
        ("/v1/models/m:predict", TfsPath("m", verb="predict")),
        ("/v1/models/m/versions/2:classify", TfsPath("m", version=2, verb="classify")),
        ("/v1/models/m/labels/canary:regress", TfsPath("m", label="canary", verb="regress")),
    ],
)
def test_tfserving_paths(path: str, expected: TfsPath | None) -> None:
    assert parse_path(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/m:fly",
        "/v1/models/m/versions/x",
        "/v1/models/m/extra",
        "/v1/models/m/metadata:predict",
        "/v1/modelsx",
    ],
)
def test_malformed_tfserving_paths(path: str) -> None:
    with pytest.raises(InvalidInput, match="Malformed request"):
        parse_path(path)
