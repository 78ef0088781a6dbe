"""A loaded, servable model version: its instances, runner, batcher, metrics and statistics."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pier.observe.metrics import VersionMetrics
from pier.serving.batching import Batcher
from pier.serving.execution import Runner, RunResult
from pier.serving.model import Array, Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.tensors import to_numpy_dtype


@dataclass(slots=True)
class VersionStats:
    """Cumulative counts and times, as the V2 statistics extension reports them."""

    success: int = 0
    failure: int = 0
    inference_count: int = 0
    last_inference_ms: int = 0
    success_ns: int = 0
    failure_ns: int = 0
    queue_ns: int = 0
    compute_ns: int = 0

    def record_success(self, rows: int, total_s: float, queue_s: float, compute_s: float) -> None:
        self.success += 1
        self.inference_count += rows
        self.last_inference_ms = int(time.time() * 1000)
        self.success_ns += int(total_s * 1e9)
        self.queue_ns += int(queue_s * 1e9)
        self.compute_ns += int(compute_s * 1e9)

    def record_failure(self, total_s: float) -> None:
        self.failure += 1
        self.last_inference_ms = int(time.time() * 1000)
        self.failure_ns += int(total_s * 1e9)


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
    stats: VersionStats = field(default_factory=VersionStats)
    #: input name -> (numpy dtype, shape, V2 datatype), for validating requests
    expected: dict[str, tuple[np.dtype[Any], tuple[int, ...], str]] = field(init=False)

    def __post_init__(self) -> None:
        self.expected = {
            s.name: (to_numpy_dtype(s.datatype), s.shape, s.datatype) for s in self.model.inputs
        }

    @property
    def version_str(self) -> str:
        return str(self.version)

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
