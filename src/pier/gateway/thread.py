"""Run a Gateway on its own thread and event loop (uvloop where installed).

``pier up`` runs the control plane on its own loop; the gateway's data path is on every
request, so it gets a loop that nothing else schedules work on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from pier.gateway.server import Gateway


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else asyncio's default."""
    try:
        import uvloop
    except ImportError:  # Windows
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class GatewayThread:
    """A gateway listening on a thread of its own; ``stop()`` closes it and ends the thread."""

    def __init__(self, gateway: Gateway, loop: asyncio.AbstractEventLoop, thread: threading.Thread):
        self.gateway = gateway
        self.loop = loop
        self.thread = thread

    @property
    def port(self) -> int:
        return self.gateway.port

    def call(self, fn: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 30.0) -> Any:
        """Run a coroutine on the gateway's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Close the gateway (in-flight requests finish) and end its thread."""
        if self.loop.is_running():
            self.call(self.gateway.close, timeout)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)


def run_in_thread(gateway: Gateway, host: str, port: int) -> GatewayThread:
    """Start ``gateway`` on host:port on a new daemon thread with its own loop; wait until it listens."""
    loop = new_event_loop()
    started: concurrent.futures.Future[None] = concurrent.futures.Future()

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(gateway.start(host, port))
        except BaseException as exc:
            started.set_exception(exc)
            loop.close()
            return
        started.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=main, name=f"pier-gateway-{port}", daemon=True)
    thread.start()
    started.result(timeout=30)
    return GatewayThread(gateway, loop, thread)
