"""The gateway's Prometheus metrics, defined once, with children bound per (service, revision).

The per-request path touches only plain Python counters (``FastCounter``,
``FastHistogram``); they move into the prometheus_client families when the metrics
are rendered.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from pier.observe.metrics import LATENCY_BUCKETS, FastCounter, FastHistogram

CODE_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


class BoundGatewayMetrics:
    """The children one (service, revision) uses on every request."""

    __slots__ = ("codes", "duration")

    def __init__(self, codes: list[FastCounter], duration: FastHistogram) -> None:
        #: indexed by ``status // 100 - 1``: 1xx to 5xx
        self.codes = codes
        self.duration = duration

    def observe(self, status: int, seconds: float) -> None:
        """Count one response of ``status`` that took ``seconds``."""
        self.codes[min(max(status // 100, 1), 5) - 1].n += 1
        self.duration.observe(seconds)

    def flush(self) -> None:
        for counter in self.codes:
            counter.flush()
        self.duration.flush()


class GatewayMetrics:
    """The gateway's metric families on ``registry`` (one registry per gateway)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "pier_gateway_requests",
            "Requests the gateway answered for a service, by revision and status class.",
            ["service", "revision", "code"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "pier_gateway_in_flight_requests",
            "Requests the gateway is forwarding now, by service.",
            ["service"],
            registry=registry,
        )
        self.duration = Histogram(
            "pier_gateway_request_duration_seconds",
            "Time from a request fully read to its response fully written, by revision.",
            ["service", "revision"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "pier_gateway_retries",
            "Requests sent a second time because the first connection failed.",
            ["service"],
            registry=registry,
        )
        self.ejections = Counter(
            "pier_gateway_ejections",
            "Times a replica was taken out of balancing after consecutive failures.",
            ["service"],
            registry=registry,
        )
        self.no_ready_replica = Counter(
            "pier_gateway_no_ready_replica",
            "Requests answered 503 because the service had no ready replica.",
            ["service"],
            registry=registry,
        )
        self._bound: dict[tuple[str, int | None], BoundGatewayMetrics] = {}

    def bind(self, service: str, revision: int | None) -> BoundGatewayMetrics:
        """The children of (service, revision), created on first use and kept."""
        key = (service, revision)
        bound = self._bound.get(key)
        if bound is None:
            rev = "" if revision is None else str(revision)
            codes = [FastCounter(self.requests.labels(service, rev, c)) for c in CODE_CLASSES]
            bound = BoundGatewayMetrics(
                codes, FastHistogram(self.duration.labels(service, rev), LATENCY_BUCKETS)
            )
            self._bound[key] = bound
        return bound

    def track_in_flight(self, service: str, read: Callable[[], float]) -> None:
        """Report ``read()`` as the service's in-flight requests at every scrape."""
        self.in_flight.labels(service).set_function(read)

    def forget_service(self, service: str) -> None:
        """Stop reporting the in-flight gauge of a removed service (its counters stay)."""
        with contextlib.suppress(KeyError):
            self.in_flight.remove(service)

    def flush(self) -> None:
        for bound in self._bound.values():
            bound.flush()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        self.flush()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
