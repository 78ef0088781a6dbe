"""Listening TCP sockets, made one way for every server Pier starts (model server, API, gateway)."""

from __future__ import annotations

import socket


def listen(
    host: str, port: int, *, inheritable: bool = False, backlog: int = 2048
) -> socket.socket:
    """A non-blocking socket listening on ``host:port`` (port 0 picks a free one).

    ``inheritable`` lets worker processes share it (``pier serve --workers``).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    sock.set_inheritable(inheritable)
    return sock
