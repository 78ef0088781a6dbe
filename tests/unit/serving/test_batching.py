"""The dynamic batcher on its own: stacking, splitting, cut rules, failures."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pier.errors import InternalError, ResourceExhausted
from pier.serving.batching import Batcher, batch_key
from pier.serving.execution import Runner
from pier.serving.model import Array, Model
from pier.serving.modelconfig import DynamicBatching, ModelConfig


class Recorder(Model):
    """Doubles x and records the batch sizes it was called with."""

    runtime = "test"
    platform = "test"

    def __init__(self, delay: float = 0.0, fail: bool = False, drop_row: bool = False) -> None:
        super().__init__(Path("."), ModelConfig())
        self.calls: list[int] = []
        self.delay = delay
        self.fail = fail
        self.drop_row = drop_row
        self.lock = threading.Lock()

    def load(self) -> None:
        pass

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        x = inputs["x"]
        with self.lock:
            self.calls.append(int(x.shape[0]))
        if self.delay:
            threading.Event().wait(self.delay)
        if self.fail:
            raise RuntimeError("boom")
        y = x * 2
        return {"y": y[1:] if self.drop_row else y}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _batched(model: Recorder, cfg: DynamicBatching, requests: list[Array]) -> list[Any]:
    with ThreadPoolExecutor(4) as pool:
        runner = Runner([model], pool, inline=False)
        batcher = Batcher(runner, cfg, "m")
        try:
            return await asyncio.gather(
                *(batcher.run({"x": r}) for r in requests), return_exceptions=True
            )
        finally:
            await batcher.close()


def test_concurrent_requests_share_a_call_and_split_back() -> None:
    model = Recorder()
    reqs = [np.full((i % 3 + 1, 2), i, np.float32) for i in range(10)]
    results = run(_batched(model, DynamicBatching(max_batch_size=64, max_queue_delay_ms=50), reqs))
    for r, x in zip(results, reqs, strict=True):
        np.testing.assert_array_equal(r.outputs["y"], x * 2)
        assert r.rows == len(x)
    assert sum(model.calls) == sum(len(x) for x in reqs)
    assert len(model.calls) == 1  # all arrived within the delay


def test_max_batch_size_cuts_batches() -> None:
    model = Recorder(delay=0.01)
    reqs = [np.ones((1, 2), np.float32) for _ in range(10)]
    run(_batched(model, DynamicBatching(max_batch_size=4, max_queue_delay_ms=100), reqs))
    assert max(model.calls) <= 4 and sum(model.calls) == 10


def test_preferred_size_dispatches_without_waiting() -> None:
    model = Recorder()

    async def go() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await _batched(model, DynamicBatching(max_batch_size=16, max_queue_delay_ms=5000,
                                              preferred_batch_sizes=[2]), [np.ones((1, 2), np.float32)] * 2)
        return loop.time() - t0

    assert run(go()) < 2.0
    assert model.calls == [2]


def test_incompatible_shapes_are_served_separately() -> None:
    model = Recorder()
    reqs = [np.ones((1, 2 + i % 2), np.float32) for i in range(6)]
    results = run(_batched(model, DynamicBatching(max_batch_size=8, max_queue_delay_ms=20), reqs))
    for r, x in zip(results, reqs, strict=True):
        np.testing.assert_array_equal(r.outputs["y"], x * 2)
    assert sorted(model.calls) == [3, 3]


def test_oversized_request_runs_alone() -> None:
    model = Recorder()
    results = run(_batched(model, DynamicBatching(max_batch_size=2), [np.ones((5, 2), np.float32)]))
    assert results[0].outputs["y"].shape == (5, 2)
    assert model.calls == [5]


def test_model_failure_reaches_every_caller() -> None:
    results = run(_batched(Recorder(fail=True), DynamicBatching(max_queue_delay_ms=20), [np.ones((1, 2))] * 3))
    assert all(isinstance(r, InternalError) and "boom" in r.message for r in results)


def test_output_without_batch_dim_is_an_error() -> None:
    results = run(_batched(Recorder(drop_row=True), DynamicBatching(max_queue_delay_ms=20), [np.ones((2, 2))] * 2))
    assert all(isinstance(r, InternalError) and "dim 0" in r.message for r in results)


def test_queue_limit() -> None:
    model = Recorder(delay=0.2)
    cfg = DynamicBatching(max_batch_size=1, max_queue_delay_ms=0, max_queue_size=2)
    results = run(_batched(model, cfg, [np.ones((1, 2))] * 6))
    assert any(isinstance(r, ResourceExhausted) for r in results)
    assert any(not isinstance(r, Exception) for r in results)


def test_batch_key() -> None:
    a = {"x": np.ones((2, 3), np.float32)}
    assert batch_key(a) == batch_key({"x": np.zeros((5, 3), np.float32)})
    assert batch_key(a) != batch_key({"x": np.ones((2, 3), np.float64)})
    assert batch_key({"x": np.float32(1.0) * np.ones(())}) is None


@pytest.mark.parametrize("inline", [True, False])
def test_runner_limits_concurrency_to_instances(inline: bool) -> None:
    model = Recorder(delay=0.05)
    active = 0
    peak = 0
    original = model.predict

    def tracking(inputs: Mapping[str, Array]) -> dict[str, Array]:
        nonlocal active, peak
        with model.lock:
            active += 1
            peak = max(peak, active)
        try:
            return original(inputs)
        finally:
            with model.lock:
                active -= 1

    model.predict = tracking  # type: ignore[method-assign]

    async def go() -> None:
        with ThreadPoolExecutor(8) as pool:
            runner = Runner([model, model], pool, inline=inline)
            await asyncio.gather(*(runner.run({"x": np.ones((1, 1))}) for _ in range(6)))
            assert runner.executions == 6

    run(go())
    assert peak == (1 if inline else 2)
