"""``inference.GRPCInferenceService``: the Open Inference Protocol over gRPC (Triton's RPC set)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import json_format

from pier.errors import InvalidInput, NotFound, PierError
from pier.serving.dataplane import DataPlane
from pier.serving.protocols import documents, v2
from pier.serving.protocols.bounds import parse_version
from pier.serving.protocols.grpc import codec
from pier.serving.protocols.grpc.errors import abort
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2 as pb
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2_grpc as pb_grpc
from pier.serving.protocols.grpc.protos.inference import model_config_pb2 as mc_pb
from pier.serving.served import ServedVersion
from pier.serving.state import ServerState

PROTOCOL = "v2-grpc"


def _version(text: str) -> int | None:
    return parse_version(text) if text else None  # "" = the server picks


def _parse(doc: Any, message: Any) -> Any:
    return json_format.ParseDict(doc, message, ignore_unknown_fields=True)


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    """Every RPC of the service, over the same data plane as REST."""

    def __init__(self, plane: DataPlane, state: ServerState) -> None:
        self.plane = plane
        self.state = state

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=not self.state.draining)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.state.is_ready(self.plane.repository))

    async def ModelReady(self, request: Any, context: Any) -> Any:
        try:
            self.plane.resolve(request.name, _version(request.version))
        except (NotFound, InvalidInput) as exc:  # a bad name or version is not "not ready"
            await abort(context, exc)
        except PierError:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return _parse(documents.server_metadata(), pb.ServerMetadataResponse())

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        try:
            version = _version(request.version)
            served = self.plane.resolve(request.name, version)
        except PierError as exc:
            await abort(context, exc)
        versions = (
            [served.version_str]
            if version is not None
            else [s.version_str for s in self.plane.repository.available(request.name)]
        )
        return _parse(documents.model_metadata(served, versions), pb.ModelMetadataResponse())

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        try:
            return await self._infer(request)
        except PierError as exc:
            await abort(context, exc)

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        async for request in request_iterator:
            try:
                response = await self._infer(request)
            except PierError as exc:
                yield pb.ModelStreamInferResponse(error_message=exc.message)
            else:
                yield pb.ModelStreamInferResponse(infer_response=response)

    async def _infer(self, request: Any) -> Any:
        served = self.plane.resolve(request.model_name, _version(request.model_version))
        t0 = time.perf_counter()
        try:
            inputs, wanted, _parameters = codec.infer_request_to_arrays(
                request, self.plane.max_elements
            )
            names = [o.name for o in wanted] if wanted is not None else None
            outputs = await self.plane.infer(served, inputs, PROTOCOL, names)
            encoded = _apply_classification(served, outputs, wanted)
            return codec.arrays_to_infer_response(
                served.name, served.version_str, request.id, encoded
            )
        except PierError as exc:
            self.plane.record_failure(served, PROTOCOL, exc, time.perf_counter() - t0)
            raise

    async def ModelConfig(self, request: Any, context: Any) -> Any:
        try:
            served = self.plane.resolve(request.name, _version(request.version))
        except PierError as exc:
            await abort(context, exc)
        config = _parse(documents.model_config(served), mc_pb.ModelConfig())
        return pb.ModelConfigResponse(config=config)

    async def ModelStatistics(self, request: Any, context: Any) -> Any:
        repo = self.plane.repository
        try:
            if request.name:
                servable = [self.plane.resolve(request.name, _version(request.version))]
            else:
                servable = [s for m in repo.model_names() for s in repo.available(m)]
        except PierError as exc:
            await abort(context, exc)
        return _parse(documents.statistics(servable), pb.ModelStatisticsResponse())

    async def RepositoryIndex(self, request: Any, context: Any) -> Any:
        rows = documents.repository_index(self.plane.repository, request.ready)
        return _parse({"models": rows}, pb.RepositoryIndexResponse())

    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        params: dict[str, Any] = {}
        for key, param in request.parameters.items():
            kind = param.WhichOneof("parameter_choice")
            params[key] = getattr(param, kind) if kind else None
        try:
            await documents.load_model(self.plane.repository, request.model_name, params)
        except PierError as exc:
            await abort(context, exc)
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        try:
            await self.plane.repository.unload_model(request.model_name)
        except PierError as exc:
            await abort(context, exc)
        return pb.RepositoryModelUnloadResponse()


def _apply_classification(
    served: ServedVersion, outputs: dict[str, Any], wanted: list[v2.RequestedOutput] | None
) -> list[tuple[str, Any]]:
    if wanted is None:
        return list(outputs.items())
    result = []
    for ro in wanted:
        arr = outputs[ro.name]
        if ro.classification:
            arr = v2.classify_output(
                arr,
                ro.classification,
                served.config.class_labels,
                served.model.batched,
                name=ro.name,
            )
        result.append((ro.name, arr))
    return result
