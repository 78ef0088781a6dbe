"""``inference.GRPCInferenceService``: the Open Inference Protocol over gRPC (Triton's RPC set)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import json_format

from pier.errors import InvalidInput, NotFound, PierError
from pier.serving.dataplane import DataPlane
from pier.serving.protocols import v2_codec, v2_config, v2_metadata, v2_repository, v2_statistics
from pier.serving.protocols.bounds import parse_version
from pier.serving.protocols.grpc import v2_codec as pb_codec
from pier.serving.protocols.grpc.edge import Context, grpc_edge
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2 as pb
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2_grpc as pb_grpc
from pier.serving.protocols.grpc.protos.inference import model_config_pb2 as mc_pb

PROTOCOL = "v2-grpc"


def _version(text: str) -> int | None:
    return parse_version(text) if text else None  # "" = the server picks


def _parse(doc: Any, message: Any) -> Any:
    return json_format.ParseDict(doc, message, ignore_unknown_fields=True)


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    """Every RPC of the service, over the same data plane as REST; errors leave through grpc_edge."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    @grpc_edge
    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: Context
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self.plane.live())

    @grpc_edge
    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: Context
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.plane.ready())

    @grpc_edge
    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: Context
    ) -> pb.ModelReadyResponse:
        try:
            self.plane.resolve(request.name, _version(request.version))
        except (NotFound, InvalidInput):  # a bad name or version is not "not ready"
            raise
        except PierError:
            return pb.ModelReadyResponse(ready=False)  # known, but not servable now
        return pb.ModelReadyResponse(ready=True)

    @grpc_edge
    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Context
    ) -> pb.ServerMetadataResponse:
        result: pb.ServerMetadataResponse = _parse(
            v2_metadata.server_metadata(), pb.ServerMetadataResponse()
        )
        return result

    @grpc_edge
    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Context
    ) -> pb.ModelMetadataResponse:
        version = _version(request.version)
        served = self.plane.resolve(request.name, version)
        versions = self.plane.metadata_versions(served, explicit=version is not None)
        result: pb.ModelMetadataResponse = _parse(
            v2_metadata.model_metadata(served, versions), pb.ModelMetadataResponse()
        )
        return result

    @grpc_edge
    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Context
    ) -> pb.ModelInferResponse:
        return await self._infer(request)

    @grpc_edge
    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[pb.ModelInferRequest], context: Context
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        async for request in request_iterator:
            try:
                response = await self._infer(request)
            except PierError as exc:
                # A stream carries each request's error in its answer and goes on (Triton).
                yield pb.ModelStreamInferResponse(error_message=exc.message)
            else:
                yield pb.ModelStreamInferResponse(infer_response=response)

    async def _infer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        plane = self.plane
        served = plane.resolve(request.model_name, _version(request.model_version))
        t0 = time.perf_counter()
        try:
            inputs, wanted, _parameters = pb_codec.infer_request_to_arrays(
                request, self.plane.max_elements
            )
            names = [o.name for o in wanted] if wanted is not None else None
            outputs = await plane.infer(served, inputs, PROTOCOL, names)
            if wanted is None:
                encoded = list(outputs.items())
            else:
                pairs = v2_codec.classified(
                    outputs, wanted, served.config.class_labels, served.model.batched
                )
                encoded = [(ro.name, arr) for ro, arr in pairs]
            return pb_codec.arrays_to_infer_response(
                served.name, served.version_str, request.id, encoded
            )
        except Exception as exc:
            plane.record_failure(served, PROTOCOL, exc, t0)
            raise

    @grpc_edge
    async def ModelConfig(
        self, request: pb.ModelConfigRequest, context: Context
    ) -> pb.ModelConfigResponse:
        served = self.plane.resolve(request.name, _version(request.version))
        config = _parse(v2_config.model_config(served), mc_pb.ModelConfig())
        return pb.ModelConfigResponse(config=config)

    @grpc_edge
    async def ModelStatistics(
        self, request: pb.ModelStatisticsRequest, context: Context
    ) -> pb.ModelStatisticsResponse:
        servable = self.plane.servable(request.name, _version(request.version))
        result: pb.ModelStatisticsResponse = _parse(
            v2_statistics.statistics(servable), pb.ModelStatisticsResponse()
        )
        return result

    @grpc_edge
    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: Context
    ) -> pb.RepositoryIndexResponse:
        rows = v2_repository.repository_index(self.plane.index(), request.ready)
        result: pb.RepositoryIndexResponse = _parse({"models": rows}, pb.RepositoryIndexResponse())
        return result

    @grpc_edge
    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: Context
    ) -> pb.RepositoryModelLoadResponse:
        params: dict[str, Any] = {}
        for key, param in request.parameters.items():
            kind = param.WhichOneof("parameter_choice")
            params[key] = getattr(param, kind) if kind else None
        name = request.model_name
        await self.plane.load(name, v2_repository.load_override(name, params))
        return pb.RepositoryModelLoadResponse()

    @grpc_edge
    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: Context
    ) -> pb.RepositoryModelUnloadResponse:
        await self.plane.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse()
