"""A real management API on 127.0.0.1 for the CLI tests: uvicorn in a thread, no controller."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

TOKEN = "cli-test-token"


class Hooks:
    """ControlHooks without a controller: counts wakes, serves ``log_lines`` (two by default)."""

    def __init__(self) -> None:
        self.wakes = 0
        self.log_lines: list[str] | None = None

    def wake(self) -> None:
        self.wakes += 1

    async def logs(
        self, service: str, replica: str | None, tail: int, follow: bool
    ) -> AsyncIterator[str]:
        lines = self.log_lines
        if lines is None:
            lines = [f"{service} {replica or 'all'} line 1", f"{service} line 2"]
        for line in lines:
            yield line


class ThreadServer:
    """An ASGI app served by uvicorn on a free 127.0.0.1 port, in a background thread."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="api-server", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


async def echo_gateway(scope: Any, receive: Any, send: Any) -> None:
    """A stand-in gateway: answers every POST with its path and the JSON body it got."""
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = json.dumps({"path": scope["path"], "body": json.loads(body)}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})
