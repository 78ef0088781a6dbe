"""Every Prometheus metric Pier exports, defined once, with children bound per model version."""

from __future__ import annotations

import contextlib
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

import numpy as np
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
# Successful requests a version keeps recorded but not yet counted (VersionMetrics.pending).
# A flush (every second, and before a scrape) or a statistics read usually counts them
# sooner; this bounds the list if neither comes.
PENDING_LIMIT = 16384

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class FastHistogram:
    """Counts observations in plain Python; ``flush`` hands them to a prometheus_client child.

    ``Histogram.observe`` takes two locks and walks the bucket list on every call, a few
    microseconds each, four times per request. Here an observation is one ``bisect`` and
    two additions on the event-loop thread, and the totals move into the real histogram
    (and so into the exposition, multiprocess files included) when flushed: before every
    scrape of this process and once a second in the background.
    """

    __slots__ = ("_bounds", "_child", "_counts", "_sum")

    def __init__(self, child: Histogram, bounds: tuple[float, ...]) -> None:
        self._child = child
        self._bounds = (*bounds, float("inf"))
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self._bounds, value)] += 1
        self._sum += value

    def observe_many(self, values: np.ndarray[Any, np.dtype[np.float64]]) -> None:
        """Count many observations at once, in the buckets ``observe`` would use."""
        found = np.bincount(np.searchsorted(self._bounds, values), minlength=len(self._counts))
        for i, n in enumerate(found.tolist()):
            self._counts[i] += n
        self._sum += float(values.sum())

    def flush(self) -> None:
        counts = self._counts
        if not any(counts):
            return
        self._counts = [0] * len(counts)
        total, self._sum = self._sum, 0.0
        buckets = self._child._buckets  # one value per bucket, in bound order
        for i, n in enumerate(counts):
            if n:
                buckets[i].inc(n)
        self._child._sum.inc(total)


class FastCounter:
    """A counter child incremented in plain Python and flushed like ``FastHistogram``."""

    __slots__ = ("_child", "n")

    def __init__(self, child: Counter) -> None:
        self._child = child
        self.n = 0

    def inc(self) -> None:
        self.n += 1

    def flush(self) -> None:
        if self.n:
            n, self.n = self.n, 0
            self._child.inc(n)


@dataclass(slots=True)
class SuccessTotals:
    """Running totals of a version's successful requests (the V2 statistics extension's)."""

    count: int = 0
    rows: int = 0
    total_s: float = 0.0
    queue_s: float = 0.0
    compute_s: float = 0.0
    #: ``time.perf_counter()`` when the last one ended; None before the first
    last_stamp: float | None = None


@dataclass(slots=True)
class VersionMetrics:
    """Metric children bound once for one model version, used on every request.

    A successful request is recorded as one tuple, and counted into the four histograms
    and the running ``totals`` later, all at once (``observe_pending``): on a
    microsecond model each Python operation on the request path shows in the requests
    per second, and numpy sums and buckets thousands of values in the time that eager
    counting takes for a few requests.
    """

    success: dict[str, FastCounter]
    total: FastHistogram
    queue: FastHistogram
    compute: FastHistogram
    batch: FastHistogram
    #: (total_s, queue_s, compute_s, batch_rows, rows, ended) of requests not yet counted
    pending: list[tuple[float, float, float, int, int, float]] = field(default_factory=list)
    totals: SuccessTotals = field(default_factory=SuccessTotals)

    def record_success(
        self,
        protocol: str,
        total_s: float,
        queue_s: float,
        compute_s: float,
        batch_rows: int,
        rows: int,
        ended: float,
    ) -> None:
        """Record one successful request of ``rows`` rows that ended at ``ended`` (perf_counter).

        ``batch_rows`` is the size of the model call that served it (dynamic batching).
        """
        self.success[protocol].n += 1
        pending = self.pending
        pending.append((total_s, queue_s, compute_s, batch_rows, rows, ended))
        if len(pending) >= PENDING_LIMIT:
            self.observe_pending()

    def observe_pending(self) -> None:
        """Count the requests recorded since the last call into the histograms and totals."""
        pending = self.pending
        if not pending:
            return
        self.pending = []
        columns = np.array(pending, dtype=np.float64).T
        for hist, values in zip(
            (self.total, self.queue, self.compute, self.batch), columns[:4], strict=True
        ):
            hist.observe_many(values)
        t = self.totals
        t.count += len(pending)
        t.rows += sum(p[4] for p in pending)  # integers, exactly
        t.total_s += float(columns[0].sum())
        t.queue_s += float(columns[1].sum())
        t.compute_s += float(columns[2].sum())
        t.last_stamp = pending[-1][5]

    def flush(self) -> None:
        self.observe_pending()
        for counter in self.success.values():
            counter.flush()
        for hist in (self.total, self.queue, self.compute, self.batch):
            hist.flush()


class Metrics:
    """Owns the registry and the metric families of one server process."""

    PROTOCOLS = ("tfserving", "v2", "tfserving-grpc", "v2-grpc")

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
        self._http: dict[tuple[str, int], FastCounter] = {}
        self._bound: list[VersionMetrics] = []

    def bind(self, model: str, version: int) -> VersionMetrics:
        """Pre-bind the per-request children of a model version."""
        v = str(version)
        bound = VersionMetrics(
            success={p: FastCounter(self.requests.labels(model, v, p)) for p in self.PROTOCOLS},
            total=FastHistogram(self.request_seconds.labels(model, v), LATENCY_BUCKETS),
            queue=FastHistogram(self.queue_seconds.labels(model, v), LATENCY_BUCKETS),
            compute=FastHistogram(self.compute_seconds.labels(model, v), LATENCY_BUCKETS),
            batch=FastHistogram(self.batch_size.labels(model, v), BATCH_BUCKETS),
        )
        self._bound.append(bound)
        return bound

    def unbind(self, bound: VersionMetrics) -> None:
        """Flush and stop tracking the children of a version that was unloaded."""
        bound.flush()
        with contextlib.suppress(ValueError):
            self._bound.remove(bound)

    def flush(self) -> None:
        """Move what the fast children counted into the prometheus_client metrics."""
        for bound in self._bound:
            bound.flush()
        for counter in self._http.values():
            counter.flush()

    def failed(self, model: str, version: int | None, protocol: str, code: str) -> None:
        self.failures.labels(model, "" if version is None else str(version), protocol, code).inc()

    def http_response(self, protocol: str, status: int) -> None:
        key = (protocol, status)
        child = self._http.get(key)
        if child is None:
            child = self._http[key] = FastCounter(self.http_responses.labels(protocol, str(status)))
        child.n += 1  # what child.inc() does, without a second call per response

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

        self.flush()
        if self.multiprocess:
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
