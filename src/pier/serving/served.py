"""A loaded, servable model version: its instances, runner, batcher, metrics and statistics."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pier.observe.metrics import SuccessTotals, VersionMetrics
from pier.serving.batching import Batcher
from pier.serving.execution import Runner, RunResult
from pier.serving.model import Array, Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.tensors import to_numpy_dtype


@dataclass(slots=True)
class VersionStats:
    """Cumulative counts and times, as the V2 statistics extension reports them.

    Successes are recorded once, in the version's metrics (``VersionMetrics.record_success``,
    the cheapest record on the request path), and read from their running totals here.
    Failures are rarer and counted here. Times add up as float seconds and the last
    request keeps its ``perf_counter`` stamp; the integer nanoseconds and wall-clock
    milliseconds the extension reports are worked out when read.
    """

    metrics: VersionMetrics
    failure: int = 0
    failure_s: float = 0.0
    #: ``time.perf_counter()`` when the last failed request ended; None before one
    last_failure: float | None = None

    def record_failure(self, total_s: float) -> None:
        self.failure += 1
        self.last_failure = time.perf_counter()
        self.failure_s += total_s

    @property
    def _successes(self) -> SuccessTotals:
        self.metrics.observe_pending()
        return self.metrics.totals

    @property
    def success(self) -> int:
        return self._successes.count

    @property
    def inference_count(self) -> int:
        """Rows inferred by successful requests."""
        return self._successes.rows

    @property
    def last_inference_ms(self) -> int:
        """Wall-clock milliseconds since the epoch of the last request (0 before any)."""
        stamps = [s for s in (self._successes.last_stamp, self.last_failure) if s is not None]
        if not stamps:
            return 0
        return int((time.time() - (time.perf_counter() - max(stamps))) * 1000)

    @property
    def success_ns(self) -> int:
        return int(self._successes.total_s * 1e9)

    @property
    def failure_ns(self) -> int:
        return int(self.failure_s * 1e9)

    @property
    def queue_ns(self) -> int:
        return int(self._successes.queue_s * 1e9)

    @property
    def compute_ns(self) -> int:
        return int(self._successes.compute_s * 1e9)


@dataclass(slots=True)
class ServedVersion:
    """Everything the request path needs about one model version, found by one lookup."""

    name: str
    version: int
    model: Model
    config: ModelConfig
    runner: Runner
    batcher: Batcher | None
    metrics: VersionMetrics
    stats: VersionStats = field(init=False)
    #: input name -> (numpy dtype, shape, V2 datatype), for validating requests
    expected: dict[str, tuple[np.dtype[Any], tuple[int, ...], str]] = field(init=False)
    #: the version as the protocols write it
    version_str: str = field(init=False)
    #: calls run on the event loop, unbatched: the data plane calls the runner directly
    inline: bool = field(init=False)

    def __post_init__(self) -> None:
        self.stats = VersionStats(self.metrics)
        self.expected = {
            s.name: (to_numpy_dtype(s.datatype), s.shape, s.datatype) for s in self.model.inputs
        }
        self.version_str = str(self.version)
        self.inline = self.batcher is None and self.runner.inline

    async def run(self, inputs: Mapping[str, Array]) -> RunResult:
        if self.batcher is not None:
            return await self.batcher.run(inputs)
        return await self.runner.run(inputs)

    async def drain(self) -> None:
        """Finish queued and running calls; no new ones may start after this."""
        if self.batcher is not None:
            await self.batcher.close()
        await self.runner.close()

    def release(self) -> None:
        """Let every instance drop its runtime objects (called off the event loop)."""
        seen: set[int] = set()
        for instance in self.runner.instances:
            if id(instance) not in seen:
                seen.add(id(instance))
                instance.unload()
