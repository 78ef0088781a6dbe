"""The gRPC error edge, on a real grpc.aio server on 127.0.0.1: statuses, logging, counting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from pier.errors import NotFound
from pier.observe.metrics import Metrics
from pier.serving.dataplane import DataPlane
from pier.serving.protocols.grpc.edge import Context, grpc_edge
from pier.serving.protocols.grpc.protos.tensorflow.core.example import (
    example_pb2,
    feature_pb2,
)
from pier.serving.protocols.grpc.protos.tensorflow_serving.apis import (
    classification_pb2,
    input_pb2,
    model_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from pier.serving.protocols.grpc.server import GrpcServer
from pier.serving.repository import ModelRepository
from pier.serving.status import ServerState
from tests import builders as b
from tests.integration.server import free_port


class Failing:
    """Handlers that fail the ways a servicer can: ours, and a bug."""

    @grpc_edge
    async def Missing(self, request: bytes, context: Context) -> bytes:
        raise NotFound("model 'nope' is not found in the repository")

    @grpc_edge
    async def Broken(self, request: bytes, context: Context) -> bytes:
        return {}["no such key"]

    @grpc_edge
    async def Stream(self, request: bytes, context: Context) -> AsyncIterator[bytes]:
        yield b"first"
        raise ZeroDivisionError("in the middle of a stream")


def test_edge_maps_ours_to_their_status_and_bugs_to_internal_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = Failing()
    handlers = {
        "Missing": grpc.unary_unary_rpc_method_handler(service.Missing),
        "Broken": grpc.unary_unary_rpc_method_handler(service.Broken),
        "Stream": grpc.unary_stream_rpc_method_handler(service.Stream),
    }

    async def go() -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.T", handlers),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await channel.unary_unary("/t.T/Missing")(b"")
                assert info.value.code() == grpc.StatusCode.NOT_FOUND
                assert info.value.details() == "model 'nope' is not found in the repository"
                caplog.clear()
                with caplog.at_level(logging.ERROR), pytest.raises(grpc.aio.AioRpcError) as info:
                    await channel.unary_unary("/t.T/Broken")(b"")
                assert info.value.code() == grpc.StatusCode.INTERNAL
                assert info.value.details() == "internal error (KeyError); see the server log"
                logged = [r for r in caplog.records if r.name.startswith("pier.")]
                assert len(logged) == 1 and "Broken" in logged[0].getMessage()
                assert logged[0].exc_info is not None  # the traceback goes with it
                got = []
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    async for item in channel.unary_stream("/t.T/Stream")(b""):
                        got.append(item)
                assert got == [b"first"]
                assert info.value.code() == grpc.StatusCode.INTERNAL
        finally:
            await server.stop(None)

    asyncio.run(go())


@asynccontextmanager
async def tfs_stub(root: Path) -> AsyncIterator[tuple[Any, ModelRepository, Metrics]]:
    metrics = Metrics()
    executor = ThreadPoolExecutor(2)
    repo = ModelRepository(root, executor, metrics)
    await repo.scan()
    port = free_port()
    server = GrpcServer(
        DataPlane(repo, metrics, ServerState(True)), "127.0.0.1", port, 1 << 20, False
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield prediction_service_pb2_grpc.PredictionServiceStub(channel), repo, metrics
    finally:
        await server.stop(None)
        await repo.close()
        executor.shutdown()


def _examples(*rows: dict[str, float]) -> input_pb2.Input:
    examples = [
        example_pb2.Example(
            features=feature_pb2.Features(
                feature={
                    k: feature_pb2.Feature(float_list=feature_pb2.FloatList(value=[v]))
                    for k, v in row.items()
                }
            )
        )
        for row in rows
    ]
    return input_pb2.Input(example_list=input_pb2.ExampleList(examples=examples))


def test_grpc_classify_and_regress_are_counted(tmp_path: Path) -> None:
    b.sklearn_regressor(tmp_path / "linear" / "1" / "model.joblib")

    async def go() -> None:
        async with tfs_stub(tmp_path) as (stub, repo, metrics):
            spec = model_pb2.ModelSpec(name="linear")
            data = _examples(*[{"x0": 1.0, "x1": 0.0, "x2": 0.0}] * 2)
            answer = await stub.Regress(
                regression_pb2.RegressionRequest(model_spec=spec, input=data)
            )
            assert len(answer.result.regressions) == 2
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Classify(
                    classification_pb2.ClassificationRequest(model_spec=spec, input=data)
                )
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
            with pytest.raises(grpc.aio.AioRpcError) as info:  # fails to decode: counted too
                await stub.Regress(
                    regression_pb2.RegressionRequest(model_spec=spec, input=input_pb2.Input())
                )
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            served = repo.resolve("linear")
            assert (served.stats.success, served.stats.inference_count) == (1, 2)
            assert (served.stats.failure, served.runner.executions) == (2, 2)
            metrics.flush()
            get = metrics.registry.get_sample_value
            labels = {"model": "linear", "version": "1", "protocol": "tfserving-grpc"}
            assert get("pier_inference_requests_total", labels) == 1
            for code in ("unimplemented", "invalid_argument"):
                assert get("pier_inference_failures_total", {**labels, "code": code}) == 1

    asyncio.run(go())
