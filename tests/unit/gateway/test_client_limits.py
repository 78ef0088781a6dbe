"""The gateway's own replies on a kept-alive connection: HEAD without a body, bounded heads."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import pytest

from pier.gateway import Gateway, GatewaySettings, Replica, run_in_thread
from tests.integration.server import free_port

ALIVE = b'{"status":"alive"}'


@pytest.fixture
def gateway() -> Iterator[tuple[Gateway, int]]:
    gw = Gateway(GatewaySettings(max_body=1000, max_request_target=1024, max_header_bytes=4096))
    gw.set_routes("stopped", [], wanted=2, stopped=True)
    gw.set_routes("gone", [Replica("gone-1", 1, "127.0.0.1", free_port())])  # nothing listens
    handle = run_in_thread(gw, "127.0.0.1", 0)
    yield gw, handle.port
    handle.stop()


def responses(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """Read the reply to a HEAD, then ``count - 1`` more: (head, body) each.

    The first is read as its head alone, the others with a body as long as their
    Content-Length: a HEAD reply that carries a body shows up as a malformed next one.
    """
    got = b""
    out: list[tuple[bytes, bytes]] = []
    while len(out) < count:
        while b"\r\n\r\n" not in got:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {out}, with {got!r} left"
            got += chunk
        head, _, got = got.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if out:
            while len(got) < length:
                got += sock.recv(65536)
            body, got = got[:length], got[length:]
        else:
            body = b""
        out.append((head, body))
    return out


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"HEAD /v2/models/nope HTTP/1.1", 404),  # unknown service
        (b"HEAD /v1/models/stopped HTTP/1.1", 503),  # no ready replica
        (b"HEAD /v2/models/gone HTTP/1.1", 502),  # the replica cannot be reached
        (b"HEAD /elsewhere HTTP/1.1", 404),  # no route for the path
    ],
)
def test_head_on_an_error_path_has_no_body_and_the_next_response_is_intact(
    gateway: tuple[Gateway, int], request_line: bytes, status: int
) -> None:
    _, port = gateway
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_line + b"\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        (head, _), (next_head, next_body) = responses(sock, 2)
    assert head.startswith(b"HTTP/1.1 %d " % status)
    assert b"content-length: " in head  # the length the GET would have
    assert next_head.startswith(b"HTTP/1.1 200 "), next_head
    assert next_body == ALIVE


def test_head_refused_for_its_body_gets_the_head_alone(gateway: tuple[Gateway, int]) -> None:
    _, port = gateway
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"HEAD /v2/models/stopped HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        head, _, rest = _until_closed(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ") and b"connection: close" in head
    assert rest == b""


def _until_closed(sock: socket.socket) -> bytes:
    got = b""
    while chunk := sock.recv(65536):
        got += chunk
    return got


def stream(port: int, first: bytes, piece: bytes, most: int) -> tuple[bytes, int, float]:
    """Send ``first``, then ``piece`` again and again (up to ``most`` bytes) until a reply comes.

    Returns (everything read until the gateway closed, bytes sent, seconds to the first
    reply byte). Reading while sending is what a client must do to see an early reply.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setblocking(False)
        started = time.monotonic()
        sent = 0
        pending = first
        got = b""
        first_reply = 0.0
        while True:
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], 5)
            if readable:
                chunk = sock.recv(65536)
                if not chunk:
                    return got, sent, first_reply
                if not got:
                    first_reply = time.monotonic() - started
                    pending = b""  # answered: stop sending
                got += chunk
            elif writable:
                try:
                    n = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    pending = b""
                    continue
                sent += n
                pending = pending[n:] or (piece if sent < most and not got else b"")
            elif not pending:
                raise AssertionError(f"no reply after {sent} bytes sent")


def test_long_request_target_is_414_and_the_connection_closes(
    gateway: tuple[Gateway, int],
) -> None:
    _, port = gateway
    got, sent, seconds = stream(port, b"GET /v2/models/", b"a" * 1000, 64 * 1024 * 1024)
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414 URI Too Long\r\n"), got[:200]
    assert b"connection: close" in head
    assert b"request target longer than the gateway's limit of 1024 bytes" in body
    assert sent < 8 * 1024 * 1024  # answered long before the client was done
    assert seconds < 2.0


def test_many_header_bytes_are_431(gateway: tuple[Gateway, int]) -> None:
    _, port = gateway
    header = b"X-Filler: " + b"b" * 200 + b"\r\n"
    got, _, _ = stream(port, b"GET / HTTP/1.1\r\nHost: x\r\n", header, 64 * 1024 * 1024)
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), got[:200]
    assert b"4096 bytes" in body


def test_one_header_value_streamed_without_end_is_431(gateway: tuple[Gateway, int]) -> None:
    """A value the parser would join piece by piece is cut off by the bound on the head."""
    _, port = gateway
    got, sent, _ = stream(port, b"GET / HTTP/1.1\r\nX-Long: ", b"c" * 1000, 64 * 1024 * 1024)
    assert got.startswith(b"HTTP/1.1 431 "), got[:200]
    assert sent < 8 * 1024 * 1024


def test_requests_within_the_bounds_pass_and_the_earlier_ones_are_answered_first(
    gateway: tuple[Gateway, int],
) -> None:
    _, port = gateway
    ok = b"GET /?" + b"q" * 900 + b" HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"d" * 3000 + b"\r\n\r\n"
    too_long = b"GET /" + b"e" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(ok + ok + too_long)
        got = _until_closed(sock)
    assert got.count(b"HTTP/1.1 200 OK") == 2
    assert got.index(ALIVE) < got.index(b"HTTP/1.1 414 ")


def test_a_head_split_between_reads_counts_only_its_own_bytes(
    gateway: tuple[Gateway, int],
) -> None:
    """A blank line cut between two reads ends the head: what follows it is not head bytes."""
    _, port = gateway
    following = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 300  # far more than one head's bound
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for cut in (3, 2):  # "\r\n\r" | "\n...", then "\r\n" | "\r\n..."
            head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            sock.sendall(head[: len(head) - 4 + cut])
            time.sleep(0.05)  # two reads on the gateway's side
            sock.sendall(head[len(head) - 4 + cut :] + following)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = _until_closed(sock)
    assert got.count(b"HTTP/1.1 200 OK") == 2 * 301 + 1
    assert b" 431 " not in got
