"""The gRPC side of one server process: both protocols' services and grpc.health.v1."""

from __future__ import annotations

import logging
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from pier.errors import PierError
from pier.serving.dataplane import DataPlane
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2_grpc
from pier.serving.protocols.grpc.protos.tensorflow_serving.apis import (
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)
from pier.serving.protocols.grpc.tfs_servicer import ModelService, PredictionService
from pier.serving.protocols.grpc.v2_servicer import InferenceService

log = logging.getLogger(__name__)


class GrpcServer:
    """A grpc.aio server on the process's event loop, serving the shared data plane."""

    def __init__(
        self,
        plane: DataPlane,
        host: str,
        port: int,
        max_message_size: int,
        reuse_port: bool,
    ) -> None:
        self._plane = plane
        self._address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", max_message_size),
            ("grpc.max_send_message_length", max_message_size),
            # Several worker processes share the port only when asked to; otherwise a
            # second server on a taken port fails instead of silently sharing it.
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
        self._server: Any = None
        self._health = health_aio.HealthServicer()
        self._serving: bool | None = None

    async def start(self) -> None:
        server = grpc.aio.server(options=self._options)
        # The generated registration functions carry no annotations.
        grpc_service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            InferenceService(self._plane), server
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(  # type: ignore[no-untyped-call]
            PredictionService(self._plane), server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(  # type: ignore[no-untyped-call]
            ModelService(self._plane), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        try:
            bound = server.add_insecure_port(self._address)
        except RuntimeError as exc:
            raise PierError(f"cannot listen for gRPC on {self._address}: {exc}") from None
        if not bound:
            raise PierError(f"cannot listen for gRPC on {self._address}")
        await server.start()
        self._server = server
        await self.refresh_health()
        log.info("gRPC (Open Inference Protocol and TF Serving) on %s", self._address)

    async def refresh_health(self) -> None:
        """Publish readiness through grpc.health.v1 when it changes."""
        serving = self._plane.ready()
        if serving == self._serving:
            return
        self._serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in (
            "",
            "inference.GRPCInferenceService",
            "tensorflow.serving.PredictionService",
        ):
            await self._health.set(service, status)

    async def stop(self, grace: float) -> None:
        """Refuse new calls, let running ones finish for up to ``grace`` seconds."""
        if self._server is not None:
            await self._health.enter_graceful_shutdown()
            await self._server.stop(grace)
            self._server = None
