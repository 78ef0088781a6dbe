"""Forwarding decisions around one exchange: pick a replica, connect, retry once, account."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from pier.gateway.balancer import choose, record_failure, record_success
from pier.gateway.exchange import Exchange
from pier.gateway.pool import RoutedReplica
from pier.gateway.settings import GatewaySettings
from pier.observe.gateway_metrics import GatewayMetrics


class Proxy:
    """Sends exchanges to replicas of their service and keeps the balancer's counts."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        settings: GatewaySettings,
        *,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        self.metrics = metrics
        self.retry = settings.retry
        self.eject_after = settings.eject_after
        self.eject_seconds = settings.eject_seconds
        self.clock = clock
        self.rng = rng or random.Random()
        self._connecting: set[asyncio.Task[None]] = set()

    def forward(self, ex: Exchange) -> bool:
        """Send ``ex`` to a ready replica; False when the service has none."""
        route = ex.route
        replicas = route.replicas
        if not replicas:
            return False
        replica = replicas[0] if len(replicas) == 1 else choose(replicas, self.clock(), self.rng)
        route.inflight += 1
        self._send(ex, replica, False)
        return True

    def _send(self, ex: Exchange, replica: RoutedReplica, fresh: bool) -> None:
        ex.replica = replica
        ex.tries += 1
        replica.inflight += 1
        conn = None if fresh else replica.pool.take()
        if conn is not None:
            conn.send(ex)
            return
        task = asyncio.get_running_loop().create_task(
            self._connect_and_send(ex, replica), name=f"gateway-connect-{replica.record.id}"
        )
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect_and_send(self, ex: Exchange, replica: RoutedReplica) -> None:
        try:
            conn = await replica.pool.connect()
        except (OSError, TimeoutError) as exc:
            if ex.replica is replica:
                reason = "connection timed out" if isinstance(exc, TimeoutError) else str(exc)
                ex.client.upstream_failed(ex, f"cannot connect ({reason})", True)
            return
        if ex.replica is not replica:  # the exchange timed out meanwhile
            replica.pool.give_back(conn)
            return
        conn.send(ex)

    def failed(self, ex: Exchange, retryable: bool) -> bool:
        """Count a failed attempt of ``ex``; True when it was sent again (once, at most)."""
        replica = ex.replica
        assert replica is not None
        replica.inflight -= 1
        now = self.clock()
        route = ex.route
        if not ex.stale and record_failure(replica, now, self.eject_after, self.eject_seconds):
            self.metrics.ejections.labels(route.name).inc()
        ex.stale = False
        if retryable and self.retry and ex.tries < 2 and not ex.forwarded:
            others = [r for r in route.replicas if r is not replica]
            nxt = choose(others, now, self.rng) if others else replica
            self.metrics.retries.labels(route.name).inc()
            self._send(ex, nxt, nxt is replica)
            return True
        route.inflight -= 1
        replica.bound.observe(502, time.perf_counter() - ex.started)
        return False

    def done(self, ex: Exchange, status: int) -> None:
        """Account a response passed on in full."""
        replica = ex.replica
        assert replica is not None
        replica.inflight -= 1
        ex.route.inflight -= 1
        if 502 <= status <= 504:
            if record_failure(replica, self.clock(), self.eject_after, self.eject_seconds):
                self.metrics.ejections.labels(ex.route.name).inc()
        elif replica.failures:
            record_success(replica)
        replica.bound.observe(status, time.perf_counter() - ex.started)

    def abandoned(self, ex: Exchange) -> None:
        """Account an exchange given up on (it timed out): no counts for the balancer."""
        replica = ex.replica
        if replica is not None:
            replica.inflight -= 1
            ex.route.inflight -= 1
            replica.bound.observe(504, time.perf_counter() - ex.started)
        ex.replica = None
