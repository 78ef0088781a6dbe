"""The REST app in-process: inference paths answer the same once their route is cached."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from pier.observe.metrics import Metrics
from pier.serving.dataplane import DataPlane
from pier.serving.protocols.rest import RestApp
from pier.serving.repository import ModelRepository
from pier.serving.status import ServerState
from tests import builders as b

V2_BODY = orjson.dumps(
    {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
)
TF_BODY = b'{"instances": [[1, 2, 3, 4]]}'


async def call(app: RestApp, method: str, path: str, body: bytes = b"") -> tuple[int, Any]:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"content-length", b"%d" % len(body))],
        "client": ("127.0.0.1", 1),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], orjson.loads(sent[1]["body"])


def test_inference_paths_answer_alike_before_and_after_caching(tmp_path: Path) -> None:
    b.onnx_add_mul(tmp_path / "m" / "1" / "model.onnx", 2.0)

    async def go() -> None:
        metrics = Metrics()
        executor = ThreadPoolExecutor(2)
        repo = ModelRepository(tmp_path, executor, metrics)
        await repo.scan()
        app = RestApp(DataPlane(repo, metrics, ServerState(True)), 1 << 20, None)
        y = [[3.0, 5.0, 7.0, 9.0]]
        for path, body, ok in (
            ("/v2/models/m/infer", V2_BODY, "outputs"),
            ("/v2/models/m/versions/1/infer", V2_BODY, "outputs"),
            ("/v1/models/m:predict", TF_BODY, "predictions"),
            ("/v1/models/m/versions/1:predict", TF_BODY, "predictions"),
        ):
            for _ in range(3):  # the first call routes the path, later ones find it cached
                status, doc = await call(app, "POST", path, body)
                assert status == 200
                assert (doc[ok][0]["data"] if ok == "outputs" else doc[ok]) == (
                    [v for row in y for v in row] if ok == "outputs" else y
                )
                status, doc = await call(app, "GET", path)
                assert (status, doc) == (405, {"error": "use POST here, not GET"})
                status, doc = await call(app, "POST", path, b"{}")
                assert status == 400
        served = repo.resolve("m")
        assert (served.stats.success, served.stats.failure) == (12, 12)
        metrics.flush()
        for protocol in ("v2", "tfserving"):
            labels = {
                "model": "m",
                "version": "1",
                "protocol": protocol,
                "code": "invalid_argument",
            }
            assert metrics.registry.get_sample_value("pier_inference_failures_total", labels) == 6
        for path in ("/v2/models/nope/infer", "/v1/models/nope:predict"):
            for _ in range(2):
                status, doc = await call(app, "POST", path, b"{}")
                assert (status, doc) == (
                    404,
                    {"error": "model 'nope' is not found in the repository"},
                )
        status, doc = await call(app, "POST", "/v1/models/m/labels/x:predict", TF_BODY)
        assert status == 404 and "no version label 'x'" in doc["error"]
        await repo.close()
        executor.shutdown()

    asyncio.run(go())
