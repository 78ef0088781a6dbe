"""Classify and regress run like predict: in an instance slot, counted in metrics and statistics."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import orjson

from pier.observe.metrics import Metrics
from pier.serving.dataplane import DataPlane
from pier.serving.protocols.rest import RestApp
from pier.serving.repository import ModelRepository
from pier.serving.status import ServerState
from tests import builders as b
from tests.unit.serving.protocols.test_rest import call

# Records how many of its calls run at once; writes the peak next to the repository.
SLOW_MODEL = """
    import threading
    import time

    import numpy as np

    lock = threading.Lock()
    active = 0
    peak = 0

    def busy(seconds):
        global active, peak
        with lock:
            active += 1
            peak = max(peak, active)
            with open({peak_file!r}, "w") as f:
                f.write(str(peak))
        time.sleep(seconds)
        with lock:
            active -= 1

    class Model:
        inputs = [{{"name": "x", "datatype": "FP64", "shape": [-1, 2]}}]
        outputs = [{{"name": "y", "datatype": "FP64", "shape": [-1]}}]

        def predict(self, inputs):
            busy(0.02)
            return {{"y": inputs["x"].sum(axis=1)}}

        def classify(self, x):
            busy(0.02)
            return ["low", "high"], np.tile([0.25, 0.75], (len(x), 1))

        def regress(self, x):
            busy(0.02)
            return x.sum(axis=1)
"""

EXAMPLES = orjson.dumps({"examples": [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]})


@asynccontextmanager
async def rest_app(root: Path) -> AsyncIterator[tuple[RestApp, ModelRepository, Metrics]]:
    metrics = Metrics()
    executor = ThreadPoolExecutor(4)
    repo = ModelRepository(root, executor, metrics)
    await repo.scan()
    try:
        yield (
            RestApp(DataPlane(repo, metrics, ServerState(True)), 1 << 20, None),
            repo,
            metrics,
        )
    finally:
        await repo.close()
        executor.shutdown()


def test_classify_and_regress_are_counted_like_predict(tmp_path: Path) -> None:
    b.sklearn_regressor(tmp_path / "linear" / "1" / "model.joblib")
    b.write_config(tmp_path / "linear", {"feature_names": ["x0", "x1", "x2"]})

    async def go() -> None:
        async with rest_app(tmp_path) as (app, repo, metrics):
            body = orjson.dumps({"examples": [{"x0": 1.0, "x1": 0.0, "x2": 0.0}] * 3})
            status, doc = await call(app, "POST", "/v1/models/linear:regress", body)
            assert status == 200, doc
            status, doc = await call(app, "POST", "/v1/models/linear:classify", body)
            assert status == 501, doc  # a regressor cannot classify: a counted failure
            served = repo.resolve("linear")
            assert (served.stats.success, served.stats.inference_count) == (1, 3)
            assert (served.stats.failure, served.runner.executions) == (1, 2)
            metrics.flush()
            labels = {"model": "linear", "version": "1", "protocol": "tfserving"}
            get = metrics.registry.get_sample_value
            assert get("pier_inference_requests_total", labels) == 1
            failed = {**labels, "code": "unimplemented"}
            assert get("pier_inference_failures_total", failed) == 1
            stats = (await call(app, "GET", "/v2/models/linear/stats"))[1]["model_stats"][0]
            assert stats["execution_count"] == 2
            assert stats["inference_stats"]["success"]["count"] == 1

    asyncio.run(go())


def test_one_instance_never_runs_two_calls_at_once(tmp_path: Path) -> None:
    peak_file = tmp_path / "peak.txt"
    root = tmp_path / "repo"
    version = root / "slow" / "1"
    version.mkdir(parents=True)
    (version / "model.py").write_text(
        textwrap.dedent(SLOW_MODEL.format(peak_file=str(peak_file))), encoding="utf-8"
    )
    # thread execution: the calls go to the thread pool, where they could overlap
    b.write_config(root / "slow", {"instances": 1, "execution": "thread"})

    async def go() -> None:
        async with rest_app(root) as (app, repo, _metrics):
            predict = orjson.dumps({"instances": [[1.0, 2.0]]})
            requests = [
                ("/v1/models/slow:classify", EXAMPLES),
                ("/v1/models/slow:regress", EXAMPLES),
                ("/v1/models/slow:predict", predict),
            ] * 3
            answers = await asyncio.gather(*(call(app, "POST", p, body) for p, body in requests))
            assert [status for status, _ in answers] == [200] * 9, answers
            assert answers[0][1] == {"results": [[["low", 0.25], ["high", 0.75]]] * 2}
            assert answers[1][1] == {"results": [3.0, 7.0]}
            assert peak_file.read_text() == "1"
            served = repo.resolve("slow")
            assert (served.stats.success, served.runner.executions) == (9, 9)

    asyncio.run(go())
