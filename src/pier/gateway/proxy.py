"""Forwarding decisions around one exchange: pick a replica, connect, retry once, account."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from pier.gateway.balancer import choose, record_failure, record_success
from pier.gateway.exchange import Exchange
from pier.gateway.pool import Target
from pier.observe.gateway_metrics import GatewayMetrics


class Proxy:
    """Sends exchanges to replicas of their service and keeps the balancer's counts."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        *,
        retry: bool,
        eject_after: int,
        eject_seconds: float,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        self.metrics = metrics
        self.retry = retry
        self.eject_after = eject_after
        self.eject_seconds = eject_seconds
        self.clock = clock
        self.rng = rng or random.Random()
        self._connecting: set[asyncio.Task[None]] = set()

    def forward(self, ex: Exchange) -> bool:
        """Send ``ex`` to a ready replica; False when the service has none."""
        route = ex.route
        targets = route.targets
        if not targets:
            return False
        target = targets[0] if len(targets) == 1 else choose(targets, self.clock(), self.rng)
        route.inflight += 1
        self._send(ex, target, False)
        return True

    def _send(self, ex: Exchange, target: Target, fresh: bool) -> None:
        ex.target = target
        ex.tries += 1
        target.inflight += 1
        conn = None if fresh else target.pool.take()
        if conn is not None:
            conn.send(ex)
            return
        task = asyncio.get_running_loop().create_task(
            self._connect_and_send(ex, target), name=f"gateway-connect-{target.backend.id}"
        )
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect_and_send(self, ex: Exchange, target: Target) -> None:
        try:
            conn = await target.pool.connect()
        except (OSError, TimeoutError) as exc:
            if ex.target is target:
                reason = "connection timed out" if isinstance(exc, TimeoutError) else str(exc)
                ex.client.upstream_failed(ex, f"cannot connect ({reason})", True)
            return
        if ex.target is not target:  # the exchange timed out meanwhile
            target.pool.give_back(conn)
            return
        conn.send(ex)

    def failed(self, ex: Exchange, retryable: bool) -> bool:
        """Count a failed attempt of ``ex``; True when it was sent again (once, at most)."""
        target = ex.target
        assert target is not None
        target.inflight -= 1
        now = self.clock()
        route = ex.route
        if not ex.stale and record_failure(target, now, self.eject_after, self.eject_seconds):
            self.metrics.ejections.labels(route.name).inc()
        ex.stale = False
        if retryable and self.retry and ex.tries < 2 and not ex.forwarded:
            others = [t for t in route.targets if t is not target]
            nxt = choose(others, now, self.rng) if others else target
            self.metrics.retries.labels(route.name).inc()
            self._send(ex, nxt, nxt is target)
            return True
        route.inflight -= 1
        target.bound.observe(502, time.perf_counter() - ex.started)
        return False

    def done(self, ex: Exchange, status: int) -> None:
        """Account a response passed on in full."""
        target = ex.target
        assert target is not None
        target.inflight -= 1
        ex.route.inflight -= 1
        if 502 <= status <= 504:
            if record_failure(target, self.clock(), self.eject_after, self.eject_seconds):
                self.metrics.ejections.labels(ex.route.name).inc()
        elif target.failures:
            record_success(target)
        target.bound.observe(status, time.perf_counter() - ex.started)

    def abandoned(self, ex: Exchange) -> None:
        """Account an exchange given up on (it timed out): no counts for the balancer."""
        target = ex.target
        if target is not None:
            target.inflight -= 1
            ex.route.inflight -= 1
            target.bound.observe(504, time.perf_counter() - ex.started)
        ex.target = None
