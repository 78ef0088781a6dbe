"""Every Prometheus metric Pier exports, defined once, with children bound per model version."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

# Latency buckets from 100 µs to 60 s: single-row models answer in well under a
# millisecond, image models in tens to hundreds.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
STATES = ("START", "LOADING", "AVAILABLE", "UNLOADING", "END", "FAILED")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(slots=True)
class VersionMetrics:
    """Metric children bound once for one model version, used on every request."""

    success: dict[str, Counter] = field(default_factory=dict)
    failure: dict[str, Counter] = field(default_factory=dict)
    total: Histogram | None = None
    queue: Histogram | None = None
    compute: Histogram | None = None
    batch: Histogram | None = None


class Metrics:
    """Owns the registry and the metric families of one server process."""

    PROTOCOLS = ("tfserving", "v2")

    def __init__(self, multiprocess: bool = False) -> None:
        # In multiprocess mode (several workers on one port) prometheus_client keeps the
        # values in files under PROMETHEUS_MULTIPROC_DIR, set before the workers start.
        self.multiprocess = multiprocess
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        labels = ["model", "version"]
        self.requests = Counter(
            "pier_inference_requests",
            "Inference requests that succeeded.",
            [*labels, "protocol"],
            registry=r,
        )
        self.failures = Counter(
            "pier_inference_failures",
            "Inference requests that failed, by error code.",
            [*labels, "protocol", "code"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "pier_request_duration_seconds",
            "Time from request decoded to response encoded.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_seconds = Histogram(
            "pier_queue_duration_seconds",
            "Time a request waited for its batch or model instance.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.compute_seconds = Histogram(
            "pier_compute_duration_seconds",
            "Time the runtime spent on the model call.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "pier_batch_size",
            "Rows in each model call (dynamic batching stacks requests).",
            labels,
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.http_responses = Counter(
            "pier_http_responses",
            "HTTP responses by protocol and status code.",
            ["protocol", "status"],
            registry=r,
        )
        self.version_state = Gauge(
            "pier_model_version_state",
            "1 for the current load state of a model version.",
            [*labels, "state"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self._http: dict[tuple[str, int], Counter] = {}

    def bind(self, model: str, version: int) -> VersionMetrics:
        """Pre-bind the per-request children of a model version."""
        v = str(version)
        return VersionMetrics(
            success={p: self.requests.labels(model, v, p) for p in self.PROTOCOLS},
            failure={},
            total=self.request_seconds.labels(model, v),
            queue=self.queue_seconds.labels(model, v),
            compute=self.compute_seconds.labels(model, v),
            batch=self.batch_size.labels(model, v),
        )

    def failed(self, model: str, version: int | None, protocol: str, code: str) -> None:
        self.failures.labels(model, "" if version is None else str(version), protocol, code).inc()

    def http_response(self, protocol: str, status: int) -> None:
        key = (protocol, status)
        child = self._http.get(key)
        if child is None:
            child = self._http[key] = self.http_responses.labels(protocol, str(status))
        child.inc()

    def set_state(self, model: str, version: int, state: str) -> None:
        v = str(version)
        for s in STATES:
            self.version_state.labels(model, v, s).set(1 if s == state else 0)

    def forget(self, model: str, version: int) -> None:
        """Drop the state series of a version that left the repository."""
        v = str(version)
        for s in STATES:
            with contextlib.suppress(KeyError):
                self.version_state.remove(model, v, s)

    def render(self) -> tuple[bytes, str]:
        """The exposition text of this process, or of all workers in multiprocess mode."""
        from prometheus_client import CONTENT_TYPE_LATEST

        if self.multiprocess:
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
