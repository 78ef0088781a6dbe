"""The data plane without HTTP: inline and thread-pool runs count the same statistics."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from pier.errors import InvalidInput
from pier.observe.metrics import Metrics
from pier.serving.dataplane import DataPlane
from pier.serving.repository import ModelRepository
from pier.serving.served import VersionStats
from tests import builders as b


@pytest.mark.parametrize("execution", ["inline", "thread"])
def test_infer_runs_and_counts(tmp_path: Path, execution: str) -> None:
    b.onnx_add_mul(tmp_path / "m" / "1" / "model.onnx", 2.0)
    b.write_config(tmp_path / "m", {"execution": execution})

    async def go() -> None:
        metrics = Metrics()
        executor = ThreadPoolExecutor(2)
        repo = ModelRepository(tmp_path, executor, metrics)
        await repo.scan()
        plane = DataPlane(repo, metrics)
        served = plane.resolve("m")
        assert served.inline is (execution == "inline")
        x = np.ones((3, 4), np.float32)
        out = await plane.infer(served, {"x": x}, "v2")
        np.testing.assert_array_equal(out["y"], np.full((3, 4), 3.0, np.float32))
        assert list(await plane.infer(served, {"x": x}, "tfserving", ["y"])) == ["y"]
        with pytest.raises(InvalidInput, match="unknown output\\(s\\) 'z'"):
            await plane.infer(served, {"x": x}, "v2", ["z"])
        with pytest.raises(InvalidInput, match="input 'x': shape \\[3\\] does not match"):
            await plane.infer(served, {"x": np.ones(3, np.float32)}, "v2")

        assert [p[4] for p in served.metrics.pending] == [3, 3]  # rows, not yet counted
        st = served.stats  # reading it counts what is pending
        # the unknown output is found after the model ran; failures are the callers' to count
        assert (st.success, st.failure, st.inference_count) == (2, 0, 6)
        assert served.runner.executions == 3
        assert st.success_ns > 0 and st.compute_ns > 0 and st.queue_ns >= 0
        assert st.success_ns >= st.compute_ns
        assert abs(st.last_inference_ms - time.time() * 1000) < 5000
        assert served.metrics.pending == []
        await repo.close()
        executor.shutdown()

    asyncio.run(go())


def test_statistics_before_any_request_and_after_some() -> None:
    metrics = Metrics().bind("m", 1)
    st = VersionStats(metrics)
    assert (st.last_inference_ms, st.success, st.success_ns, st.failure_ns) == (0, 0, 0, 0)
    st.record_failure(0.0025)
    assert (st.failure, st.failure_ns) == (1, 2_500_000)
    assert abs(st.last_inference_ms - time.time() * 1000) < 5000
    now = time.perf_counter()
    metrics.record_success("v2", 0.5, 0.125, 0.25, 4, 2, now - 10)
    metrics.record_success("v2", 0.5, 0.0, 0.25, 1, 1, now - 5)
    assert (st.success, st.inference_count) == (2, 3)
    assert (st.success_ns, st.queue_ns, st.compute_ns) == (10**9, 125_000_000, 5 * 10**8)
    assert abs(st.last_inference_ms - time.time() * 1000) < 5000  # the failure, just now
