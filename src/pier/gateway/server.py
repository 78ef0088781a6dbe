"""The Gateway: one port for TF Serving REST and V2 REST of every service, routed by model name."""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import threading
import time
from collections.abc import Callable, Sequence

import orjson
from prometheus_client import CollectorRegistry

from pier.gateway.exchange import Exchange
from pier.gateway.http1 import ClientConnection
from pier.gateway.pool import ConnectionPool, RoutedReplica
from pier.gateway.proxy import Proxy
from pier.gateway.replies import Local, error_reply, reply
from pier.gateway.routes import Replica, ServiceRoute, service_of
from pier.gateway.settings import GatewaySettings
from pier.observe.gateway_metrics import GatewayMetrics

PATH_CACHE_SIZE = 4096
#: how often request timeouts and stale idle connections are looked for
SWEEP_SECONDS = 1.0
_ALIVE = orjson.dumps({"status": "alive"})
_LIVE = orjson.dumps({"live": True})
_READY = orjson.dumps({"ready": True})


class Gateway:
    """Forwards inference requests to the ready replicas of the service they name."""

    def __init__(
        self,
        settings: GatewaySettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        #: the defaults when none are given: the entry points build them from their options
        self.settings = settings or GatewaySettings()
        self.request_timeout = self.settings.request_timeout
        self.metrics = GatewayMetrics(CollectorRegistry(auto_describe=True))
        self.proxy = Proxy(self.metrics, self.settings, clock=clock, rng=random.Random())
        self.routes: dict[str, ServiceRoute] = {}
        #: request target -> (service or None, path without the query)
        self.paths: dict[bytes, tuple[str | None, str]] = {}
        self.clients: set[ClientConnection] = set()
        self.closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    # ----- routing table (called by the control plane) ------------------------

    def set_routes(
        self,
        service: str,
        replicas: Sequence[Replica],
        *,
        wanted: int | None = None,
        stopped: bool = False,
    ) -> None:
        """Replace the ready replicas of ``service``; counters and ejections stay by replica id.

        ``wanted`` (how many replicas the service should have) and ``stopped`` say why
        there may be none ready, for the 503 a request gets then. Safe to call from any
        thread: from another thread than the gateway's loop it waits until the gateway
        has applied the change.
        """
        self._on_loop(self._apply_routes, service, tuple(replicas), wanted, stopped)

    def remove_routes(self, service: str) -> None:
        """Forget ``service``: its requests get 404 from now on."""
        self._on_loop(self._remove_routes, service)

    def services(self) -> list[str]:
        """The services the gateway routes, sorted."""
        return sorted(self.routes)

    def _on_loop(self, fn: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is None or not loop.is_running() or threading.get_ident() == self._thread:
            fn(*args)
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def call() -> None:
            try:
                fn(*args)
                done.set_result(None)
            except BaseException as exc:
                done.set_exception(exc)
                raise

        loop.call_soon_threadsafe(call)
        done.result(timeout=30)

    def _apply_routes(
        self, service: str, records: tuple[Replica, ...], wanted: int | None, stopped: bool
    ) -> None:
        route = self.routes.get(service)
        if route is None:
            route = ServiceRoute(service)
            self.metrics.track_in_flight(service, route.read_inflight)
        old = {r.record.id: r for r in route.replicas}
        replicas = []
        for record in records:
            r = old.pop(record.id, None)
            if r is not None and (r.record.host, r.record.port) != (record.host, record.port):
                r.pool.close()
                r = None
            if r is None:
                pool = ConnectionPool(record.host, record.port, self.settings)
                r = RoutedReplica(record, pool, self.metrics.bind(service, record.revision))
            elif r.record != record:
                r.record = record
                r.bound = self.metrics.bind(service, record.revision)
            replicas.append(r)
        route.replicas = tuple(replicas)
        route.wanted = wanted
        route.stopped = stopped
        self.routes[service] = route
        for r in old.values():
            r.pool.close()

    def _remove_routes(self, service: str) -> None:
        route = self.routes.pop(service, None)
        if route is None:
            return
        for r in route.replicas:
            r.pool.close()
        route.replicas = ()
        self.metrics.forget_service(service)

    # ----- what ClientConnection asks ------------------------------------------

    def resolve(self, url: bytes) -> tuple[ServiceRoute | None, str | None, str]:
        """(route or None, service the path names or None, path) of a request target."""
        entry = self.paths.get(url)
        if entry is None:
            path = url.split(b"?", 1)[0].decode("latin-1")
            found = service_of(path)
            entry = (None if found is None else found[0], path)
            if len(self.paths) < PATH_CACHE_SIZE:  # remembered for the next time
                self.paths[url] = entry
        service, path = entry
        return (None if service is None else self.routes.get(service)), service, path

    def local(self, req: Local) -> bytes:
        """The reply to a request the gateway answers itself."""
        keep, head_only = req.keep_alive, req.head_only
        if req.service is not None:
            return error_reply(404, f"service '{req.service}' not found", keep, head_only)
        path, method = req.path, req.method
        if method not in (b"GET", b"HEAD"):
            if path in ("/", "/metrics", "/v2/health/live", "/v2/health/ready"):
                return error_reply(404, f"no route for {method.decode()} {path}", keep)
        elif path == "/":
            return reply(200, _ALIVE, keep, head_only=head_only)
        elif path == "/v2/health/live":
            return reply(200, _LIVE, keep, head_only=head_only)
        elif path == "/v2/health/ready":
            return reply(200, _READY, keep, head_only=head_only)
        elif path == "/metrics":
            text, content_type = self.metrics.render()
            return reply(200, text, keep, content_type.encode(), head_only)
        return error_reply(
            404,
            f"no route for {path}: the gateway serves /v1/models/NAME... (TF Serving REST) "
            "and /v2/models/NAME... (Open Inference Protocol)",
            keep,
            head_only,
        )

    def no_replica(self, ex: Exchange) -> bytes:
        """The 503 for a request whose service has no ready replica now."""
        route = ex.route
        self.metrics.no_ready_replica.labels(route.name).inc()
        self.metrics.bind(route.name, None).observe(503, time.perf_counter() - ex.started)
        return error_reply(503, route.no_replica_reason(), ex.keep_alive, ex.is_head)

    # ----- lifecycle ---------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (0 picks a free port)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._thread = threading.get_ident()
        self.closing = False
        self._server = await loop.create_server(
            lambda: ClientConnection(self), host, port, reuse_address=True, backlog=2048
        )
        self._sweeper = loop.call_later(SWEEP_SECONDS, self._sweep)

    @property
    def port(self) -> int:
        """The port the gateway listens on."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the gateway is not listening; call start() first")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def _sweep(self) -> None:
        now = time.perf_counter()
        for client in list(self.clients):
            client.check_timeout(now, self.request_timeout)
        mono = time.monotonic()
        for route in self.routes.values():
            for r in route.replicas:
                r.pool.close_stale(mono)
        if self._loop is not None and not self.closing:
            self._sweeper = self._loop.call_later(SWEEP_SECONDS, self._sweep)

    async def close(self) -> None:
        """Stop listening, let requests in flight finish (up to request_timeout), close pools."""
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + self.request_timeout
        while True:
            for client in list(self.clients):
                client.close_if_idle()
            if not self.clients or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        for client in list(self.clients):
            client.check_timeout(float("inf"), 0.0)
        for route in self.routes.values():
            for r in route.replicas:
                r.pool.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
