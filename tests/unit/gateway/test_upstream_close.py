"""Upstream responses the gateway frames through httptools: without a length, chunked."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from pier.gateway import Gateway, GatewaySettings, Replica, run_in_thread


def _replica(reply: bytes) -> Iterator[int]:
    """A one-thread fake replica answering every request with ``reply``, then closing."""
    loop = asyncio.new_event_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


def _ask(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        got = b""
        while chunk := sock.recv(65536):  # read until the gateway closes
            got += chunk
        return got


@pytest.mark.parametrize(
    ("reply", "body"),
    [
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil close",
            b"until close",
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nten bytes!", b"ten bytes!"),
    ],
)
def test_response_ending_at_the_close_reaches_the_client_whole(reply: bytes, body: bytes) -> None:
    for port in _replica(reply):
        gw = Gateway(GatewaySettings(retry=False))
        gw.set_routes("m", [Replica("r0", 1, "127.0.0.1", port)])
        handle = run_in_thread(gw, "127.0.0.1", 0)
        try:
            got = _ask(handle.port, b"GET /v2/models/m HTTP/1.1\r\nHost: x\r\n\r\n")
        finally:
            handle.stop()
        head, _, rest = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.")
        assert b" 200 " in head.split(b"\r\n")[0]
        assert b"connection: close" in head.lower()
        assert rest == body


def test_chunked_response_with_extensions_and_trailers_passes() -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    for port in _replica(reply):
        gw = Gateway(GatewaySettings(retry=False))
        gw.set_routes("m", [Replica("r0", 1, "127.0.0.1", port)])
        handle = run_in_thread(gw, "127.0.0.1", 0)
        try:
            got = _ask(
                handle.port, b"GET /v2/models/m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
        finally:
            handle.stop()
        assert got.startswith(b"HTTP/1.1 200 OK\r\n")
        assert got.endswith(b"0\r\nX-Trailer: t\r\n\r\n")


def test_reused_connection_closed_by_the_replica_is_retried_not_held_against_it() -> None:
    """A replica that closes idle keep-alive connections (a drain, a timeout) is not ejected."""
    loop = asyncio.new_event_loop()
    answered = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        await reader.readuntil(b"\r\n\r\n")
        answered += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        # The next request on this connection is read and dropped: closed before answering.
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = server.sockets[0].getsockname()[1]
    gw = Gateway(GatewaySettings(eject_after=1))  # one counted failure would eject the only replica
    gw.set_routes("m", [Replica("r0", 1, "127.0.0.1", port)])
    handle = run_in_thread(gw, "127.0.0.1", 0)
    try:
        with socket.create_connection(("127.0.0.1", handle.port), timeout=10) as sock:
            for _ in range(5):
                sock.sendall(b"GET /v2/models/m HTTP/1.1\r\nHost: x\r\n\r\n")
                got = b""
                while not got.endswith(b"ok"):
                    got += sock.recv(65536)
                assert b" 200 " in got.split(b"\r\n")[0]
        text = gw.metrics.render()[0].decode()
    finally:
        handle.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
    assert answered == 5
    retries = [line for line in text.splitlines() if line.startswith("pier_gateway_retries_total{")]
    assert retries and float(retries[0].rsplit(" ", 1)[1]) == 4.0  # every reuse hit a closed one
    assert not [
        line
        for line in text.splitlines()
        if line.startswith("pier_gateway_ejections_total{") and not line.endswith(" 0.0")
    ]
