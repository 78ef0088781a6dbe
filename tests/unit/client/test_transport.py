"""The SDK's stdlib transport against raw HTTP servers on 127.0.0.1 that misbehave on purpose."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from pier.client import PierAPIError, PierClient, PierConnectionError
from pier.client.transport import Transport, TransportError
from pier.errors import ConfigError

Handler = Callable[[socket.socket, "RawServer"], None]


class RawServer:
    """Accepts connections on a free port and hands each to ``handler`` in its own thread."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.targets: list[str] = []
        self.heads: list[bytes] = []
        self._thread = threading.Thread(target=self._accept, name="raw-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            self.handler(conn, self)

    def read_head(self, conn: socket.socket) -> bytes:
        """One request head (and no body: the tests send GETs or tiny bodies read with it)."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return b""
            data += chunk
        self.targets.append(data.split(b" ", 2)[1].decode())
        self.heads.append(data)
        return data

    def close(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone would leave it listening.
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def dead_url() -> str:
    """The URL of a 127.0.0.1 port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def answer(body: bytes = b"{}", status: str = "200 OK", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Handler) -> RawServer:
        servers.append(RawServer(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def keep_alive(conn: socket.socket, server: RawServer) -> None:
    while server.read_head(conn):
        conn.sendall(answer(b'{"ok": true}'))


def one_per_connection(conn: socket.socket, server: RawServer) -> None:
    """Answers once, then closes without saying so (as a server's idle timeout does)."""
    if server.read_head(conn):
        conn.sendall(answer(b'{"ok": true}'))


def test_one_connection_serves_many_requests(serve: Callable[[Handler], RawServer]) -> None:
    server = serve(keep_alive)
    transport = Transport(server.url, {}, timeout=5)
    for _ in range(3):
        assert transport.request("GET", "/x").json() == {"ok": True}
    transport.close()
    assert server.connections == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_connection_the_server_closed_is_not_reused(
    serve: Callable[[Handler], RawServer], method: str
) -> None:
    server = serve(one_per_connection)
    transport = Transport(server.url, {}, timeout=5)
    first = transport.request(method, "/x", json_body={})
    assert first.json() == {"ok": True}
    threading.Event().wait(0.2)  # time for the server's FIN to arrive
    assert transport.request(method, "/x", json_body={}).json() == {"ok": True}
    transport.close()
    assert server.connections == 2


def test_failures_come_out_with_a_kind(serve: Callable[[Handler], RawServer]) -> None:
    silent = serve(lambda conn, server: server.read_head(conn) and conn.recv(1))
    with pytest.raises(TransportError) as timed_out:
        Transport(silent.url, {}, timeout=0.3).request("GET", "/x")
    assert timed_out.value.kind == "timeout"
    gone = dead_url()
    with pytest.raises(TransportError) as refused:
        Transport(gone, {}, timeout=5).request("GET", "/x")
    assert refused.value.kind == "connect" and refused.value.url == gone + "/x"
    for bad in ("ftp://host/api", "http://", "http://host:port/"):
        with pytest.raises(TransportError) as invalid:
            Transport(bad, {}, timeout=5).request("GET", "/x")
        assert invalid.value.kind == "url"
    garbage = serve(lambda conn, server: server.read_head(conn) and conn.sendall(b"HELLO\r\n\r\n"))
    with pytest.raises(TransportError) as protocol:
        Transport(garbage.url, {}, timeout=5).request("POST", "/x")
    assert protocol.value.kind == "transport"


def test_an_answer_over_the_bound_is_refused(serve: Callable[[Handler], RawServer]) -> None:
    big = serve(lambda conn, server: server.read_head(conn) and conn.sendall(answer(b"1" * 5000)))
    with pytest.raises(TransportError, match="larger than 4096 bytes"):
        Transport(big.url, {}, timeout=5, max_body=4096).request("GET", "/x")


def test_streamed_lines_and_an_error_head(serve: Callable[[Handler], RawServer]) -> None:
    def chunked(conn: socket.socket, server: RawServer) -> None:
        server.read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"one\nt", b"wo\r\n", b"thr\xffee\n", b"last"):
            conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.sendall(b"0\r\n\r\n")

    transport = Transport(serve(chunked).url, {}, timeout=5)
    head, lines = transport.stream_lines("/logs", None, None)
    assert head.status == 200 and list(lines) == ["one", "two", "thr\ufffdee", "last"]
    transport.close()
    missing = serve(
        lambda conn, server: (
            server.read_head(conn)
            and conn.sendall(answer(b'{"error": "no such service", "code": "not_found"}', "404 NF"))
        )
    )
    head, lines = Transport(missing.url, {}, timeout=5).stream_lines("/logs", None, 5)
    assert head.status == 404 and head.json()["code"] == "not_found" and list(lines) == []


def test_client_quotes_names_and_words_errors(serve: Callable[[Handler], RawServer]) -> None:
    server = serve(
        lambda conn, server: (
            server.read_head(conn)
            and conn.sendall(
                answer(b'{"error": "service not found", "code": "not_found"}', "404 NF")
            )
        )
    )
    with PierClient(server.url, "token") as client, pytest.raises(PierAPIError) as missing:
        client.get("a/b?c d#e")
    assert server.targets == ["/api/v1/services/a%2Fb%3Fc%20d%23e"]
    assert b"\r\nAuthorization: Bearer token\r\n" in server.heads[0]
    assert b"\r\nUser-Agent: pier/" in server.heads[0]
    assert missing.value.status == 404 and missing.value.message == "service not found"
    html = serve(
        lambda conn, server: (
            server.read_head(conn)
            and conn.sendall(answer(b"<html>proxy</html>", "502 Bad Gateway"))
        )
    )
    with PierClient(html.url, "token") as client, pytest.raises(PierAPIError) as foreign:
        client.list()
    assert foreign.value.status == 502 and "<html>proxy</html>" in foreign.value.message
    gone = dead_url()
    with PierClient(gone, "token") as client, pytest.raises(PierConnectionError) as down:
        client.list()
    assert gone in down.value.message and "pier up" in down.value.message
    with PierClient(server.url, "tok\nen") as client, pytest.raises(ConfigError):
        client.list()  # a header http.client will not send
