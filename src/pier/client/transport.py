"""The SDK's HTTP/1.1 transport on the standard library: JSON requests and streamed lines.

The client talks to one API and one gateway, one request at a time, so ``http.client``
with a kept-alive connection per host is all it needs; httpx would cost ~100 ms of import
on every ``pier`` command (`pier list` answers in about half the time without it).
Failures come out as ``TransportError`` with a kind, so the client words them once.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import urllib.parse
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: The largest response body read into memory (a service list, a document, a prediction).
MAX_BODY = 256 * 1024 * 1024
#: The longest log line read in one piece; a longer one comes out in pieces.
MAX_LINE = 1024 * 1024

ErrorKind = Literal["connect", "timeout", "transport", "url"]

# Methods that are safe to send again when a kept-alive connection turns out closed.
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class TransportError(Exception):
    """The request did not get an answer: ``kind`` says why, the message gives the detail."""

    def __init__(self, kind: ErrorKind, url: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.url = url


@dataclass(frozen=True)
class Response:
    """A complete answer: status, reason, headers (lower-case names) and body."""

    method: str
    url: str
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def is_error(self) -> bool:
        return self.status >= 400

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON (ValueError when it is not)."""
        try:
            return json.loads(self.body)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


class Transport:
    """Sends requests relative to ``base_url`` (or to absolute URLs) with fixed headers."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        max_body: int = MAX_BODY,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.timeout = timeout
        self.max_body = max_body
        self._connections: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The absolute URL of ``path`` (relative to the base URL unless it has a scheme)."""
        url = path if "://" in path else self.base_url + path
        if params:
            query = {k: _param(v) for k, v in params.items()}
            url += "?" + urllib.parse.urlencode(query)
        return url

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Response:
        """Send one request and read the whole answer, on a kept-alive connection."""
        url = self.url(path, params)
        body = None if json_body is None else json.dumps(json_body).encode()
        key, target = _split(url)
        for attempt in (1, 2):
            conn, reused = self._connection(key, url)
            try:
                answer = self._exchange(conn, method, target, body)
                data = answer.read(self.max_body + 1)
            except (ConnectionError, http.client.BadStatusLine) as exc:
                self._drop(key)
                # The server may close an idle kept-alive connection just as we reuse it.
                if reused and attempt == 1 and method in _IDEMPOTENT:
                    continue
                raise _failure(exc, url) from None
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self._drop(key)  # ValueError: a header value http.client refuses to send
                raise _failure(exc, url) from None
            if len(data) > self.max_body:
                self._drop(key)
                raise TransportError("transport", url, f"answer larger than {self.max_body} bytes")
            if answer.will_close:
                self._drop(key)
            headers = {k.lower(): v for k, v in answer.getheaders()}
            return Response(method, url, answer.status, answer.reason, headers, data)
        raise AssertionError("unreachable")  # the loop returns or raises

    def stream_lines(
        self, path: str, params: Mapping[str, Any] | None, read_timeout: float | None
    ) -> tuple[Response, Generator[str, None, None]]:
        """GET ``path`` on a connection of its own: the head (body empty) and its lines.

        An error answer comes back whole, with no lines. ``read_timeout`` None waits for
        each line as long as it takes (``--follow``).
        """
        url = self.url(path, params)
        key, target = _split(url)
        conn = self._open(key, url)
        try:
            answer = self._exchange(conn, "GET", target, None)
            headers = {k.lower(): v for k, v in answer.getheaders()}
            if answer.status >= 400:
                data = answer.read(self.max_body)
                conn.close()
                return Response("GET", url, answer.status, answer.reason, headers, data), _none()
            if conn.sock is not None:
                conn.sock.settimeout(read_timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            conn.close()
            raise _failure(exc, url) from None
        head = Response("GET", url, answer.status, answer.reason, headers, b"")
        return head, self._lines(conn, answer, url)

    def close(self) -> None:
        """Close every kept-alive connection."""
        for key in list(self._connections):
            self._drop(key)

    # -- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _lines(
        conn: http.client.HTTPConnection, answer: http.client.HTTPResponse, url: str
    ) -> Generator[str, None, None]:
        try:
            while True:
                try:
                    raw = answer.readline(MAX_LINE)
                except (OSError, http.client.HTTPException) as exc:
                    raise _failure(exc, url) from None
                if not raw:
                    return
                yield raw.decode("utf-8", "replace").rstrip("\r\n")
        finally:
            conn.close()

    def _exchange(
        self, conn: http.client.HTTPConnection, method: str, target: str, body: bytes | None
    ) -> http.client.HTTPResponse:
        headers = {**self.headers, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, target, body=body, headers=headers)
        return conn.getresponse()

    def _connection(
        self, key: tuple[str, str, int], url: str
    ) -> tuple[http.client.HTTPConnection, bool]:
        conn = self._connections.get(key)
        if conn is not None and conn.sock is not None and not _readable(conn.sock):
            return conn, True
        self._drop(key)  # closed by the server, or never opened
        conn = self._connections[key] = self._open(key, url)
        return conn, False

    def _open(self, key: tuple[str, str, int], url: str) -> http.client.HTTPConnection:
        scheme, host, port = key
        if scheme == "https":
            import ssl  # only for https: most APIs are on 127.0.0.1

            context = ssl.create_default_context()
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=context)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def _drop(self, key: tuple[str, str, int]) -> None:
        conn = self._connections.pop(key, None)
        if conn is not None:
            conn.close()


def _split(url: str) -> tuple[tuple[str, str, int], str]:
    """(scheme, host, port) and the request target of an absolute http(s) URL."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TransportError("url", url, str(exc)) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError("url", url, "expected http://HOST[:PORT] or https://HOST[:PORT]")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    # Names from the command line are quoted, so '?', '#' or ' ' stay part of the path.
    path = urllib.parse.quote(parts.path or "/", safe="/:@!$&'()*+,;=-._~%")
    target = path + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port), target


def _none() -> Generator[str, None, None]:
    yield from ()


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _readable(sock: socket.socket) -> bool:
    """Whether an idle connection has something to read: the server closed it (or misbehaved)."""
    try:
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(ready)


def _failure(exc: BaseException, url: str) -> TransportError:
    if isinstance(exc, http.client.InvalidURL):
        return TransportError("url", url, str(exc))
    if isinstance(exc, TimeoutError):
        return TransportError("timeout", url, type(exc).__name__)
    if isinstance(exc, ConnectionRefusedError | socket.gaierror):
        return TransportError("connect", url, str(exc))
    if isinstance(exc, ValueError):  # a header (the token) that is not Latin-1, or has a newline
        return TransportError("url", url, f"a request header cannot be sent: {exc}")
    return TransportError("transport", url, str(exc) or type(exc).__name__)
