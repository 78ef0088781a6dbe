"""Dynamic batching against a real server: concurrent requests stack, split back exactly."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from tests import builders as b
from tests.integration.server import PierServer


async def _fire(url: str, model: str, rows: list[np.ndarray]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as client:
        calls = [
            client.post(
                f"{url}/v2/models/{model}/infer",
                json={
                    "inputs": [
                        {
                            "name": "x",
                            "shape": list(r.shape),
                            "datatype": "FP32",
                            "data": r.ravel().tolist(),
                        }
                    ]
                },
            )
            for r in rows
        ]
        return await asyncio.gather(*calls)


def _batches(url: str, model: str) -> tuple[int, int]:
    stats = httpx.get(f"{url}/v2/models/{model}/stats").json()["model_stats"][0]
    return stats["inference_count"], stats["execution_count"]


def test_concurrent_requests_are_stacked_and_split_exactly(url: str) -> None:
    before_rows, before_runs = _batches(url, "batched")
    rng = np.random.default_rng(7)
    rows = [rng.normal(size=(int(rng.integers(1, 4)), 4)).astype(np.float32) for _ in range(40)]
    responses = asyncio.run(_fire(url, "batched", rows))
    for r, x in zip(responses, rows, strict=True):
        assert r.status_code == 200, r.text
        (out,) = r.json()["outputs"]
        assert out["shape"] == list(x.shape)
        np.testing.assert_allclose(
            np.asarray(out["data"], np.float32).reshape(x.shape), x * 2 + 1, rtol=1e-6
        )
    after_rows, after_runs = _batches(url, "batched")
    assert after_rows - before_rows == sum(len(x) for x in rows)
    # 40 concurrent requests with a 20 ms window must share model runs
    assert after_runs - before_runs < 40
    metrics = httpx.get(url + "/metrics").text
    assert 'pier_batch_size_bucket{le="8.0",model="batched",version="1"}' in metrics


@pytest.fixture(scope="module")
def ragged(tmp_path_factory: pytest.TempPathFactory) -> object:
    root = tmp_path_factory.mktemp("ragged")
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "n"])
    graph = helper.make_graph([helper.make_node("Neg", ["x"], ["y"])], "neg", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (root / "neg" / "1").mkdir(parents=True)
    onnx.save(model, str(root / "neg" / "1" / "model.onnx"))
    b.write_config(
        root / "neg", {"dynamic_batching": {"max_batch_size": 16, "max_queue_delay_ms": 20}}
    )
    srv = PierServer(root, tmp_path_factory.mktemp("ragged-logs"))
    srv.wait_ready()
    yield srv
    srv.stop()


def test_requests_that_cannot_stack_are_still_served(ragged: PierServer) -> None:
    rows = [np.full((1, 3 if i % 2 else 5), float(i), np.float32) for i in range(20)]
    responses = asyncio.run(_fire(ragged.url, "neg", rows))
    for r, x in zip(responses, rows, strict=True):
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == (-x).ravel().tolist()
    inferences, runs = _batches(ragged.url, "neg")
    assert inferences == 20 and runs < 20
