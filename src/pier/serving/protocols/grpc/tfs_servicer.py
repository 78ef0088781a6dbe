"""TF Serving's gRPC API: ``PredictionService`` (Predict, GetModelMetadata, Classify, Regress)
and ``ModelService.GetModelStatus``, wire-compatible with TF Serving's own messages."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.protobuf import any_pb2, json_format, wrappers_pb2

from pier.errors import InvalidInput
from pier.serving.dataplane import DataPlane
from pier.serving.model import Array
from pier.serving.protocols import tfs_metadata
from pier.serving.protocols.bounds import check_version
from pier.serving.protocols.grpc import tfs_codec as pb_codec
from pier.serving.protocols.grpc.edge import Context, grpc_edge
from pier.serving.protocols.grpc.protos.tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    input_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from pier.serving.served import ServedVersion
from pier.serving.status import VersionState

PROTOCOL = "tfserving-grpc"

T = TypeVar("T")

# ModelVersionStatus.State numbers
_STATE = {
    VersionState.START: 10,
    VersionState.LOADING: 20,
    VersionState.AVAILABLE: 30,
    VersionState.UNLOADING: 40,
    VersionState.END: 50,
    VersionState.FAILED: 50,
}
_ERROR_UNKNOWN = 2  # tensorflow.error.Code.UNKNOWN


def _address(spec: model_pb2.ModelSpec) -> tuple[str, int | None, str | None]:
    """(name, version, label) of a ModelSpec: at most one of version and label is set."""
    if not spec.name:
        raise InvalidInput("model_spec.name is empty")
    choice = spec.WhichOneof("version_choice")
    version = check_version(spec.version.value) if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    return spec.name, version, label


def _spec(served: ServedVersion, signature: str = tfs_metadata.SIGNATURE) -> model_pb2.ModelSpec:
    return model_pb2.ModelSpec(
        name=served.name,
        version=wrappers_pb2.Int64Value(value=served.version),
        signature_name=signature,
    )


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, metadata, classify and regress over the shared data plane."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def _resolve(self, spec: model_pb2.ModelSpec) -> ServedVersion:
        return self.plane.resolve(*_address(spec))

    async def _counted(self, served: ServedVersion, work: Callable[[], Awaitable[T]]) -> T:
        """Run a request that found its model; count it against the model if it fails."""
        t0 = time.perf_counter()
        try:
            return await work()
        except Exception as exc:
            self.plane.record_failure(served, PROTOCOL, exc, t0)
            raise

    @grpc_edge
    async def Predict(
        self, request: predict_pb2.PredictRequest, context: Context
    ) -> predict_pb2.PredictResponse:
        served = self._resolve(request.model_spec)

        async def predict() -> dict[str, Array]:
            tfs_metadata.check_signature(request.model_spec.signature_name)
            declared = {s.name: s.datatype for s in served.model.inputs}
            inputs = {
                name: pb_codec.tensor_proto_to_array(
                    tp, declared.get(name), name=name, max_elements=self.plane.max_elements
                )
                for name, tp in request.inputs.items()
            }
            wanted = list(request.output_filter) or None
            return await self.plane.infer(served, inputs, PROTOCOL, wanted)

        outputs = await self._counted(served, predict)
        response = predict_pb2.PredictResponse(model_spec=_spec(served))
        for name, arr in outputs.items():
            response.outputs[name].CopyFrom(pb_codec.array_to_tensor_proto(arr))
        return response

    @grpc_edge
    async def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: Context
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        served = self._resolve(request.model_spec)
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            raise InvalidInput(
                f"metadata_field must be ['signature_def'] (the only one served), got {fields}"
            )
        signatures = json_format.ParseDict(
            tfs_metadata.signature_defs(served), get_model_metadata_pb2.SignatureDefMap()
        )
        packed = any_pb2.Any()
        packed.Pack(signatures)
        response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=_spec(served, ""))
        response.metadata["signature_def"].CopyFrom(packed)
        return response

    def _features(
        self, served: ServedVersion, spec: model_pb2.ModelSpec, data: input_pb2.Input
    ) -> Array:
        tfs_metadata.check_signature(spec.signature_name)
        return pb_codec.examples_to_matrix(data, served.model.feature_names)

    @grpc_edge
    async def Classify(
        self, request: classification_pb2.ClassificationRequest, context: Context
    ) -> classification_pb2.ClassificationResponse:
        served = self._resolve(request.model_spec)

        async def classify() -> tuple[list[str], Array]:
            x = self._features(served, request.model_spec, request.input)
            return await self.plane.classify(served, x, PROTOCOL)

        labels, scores = await self._counted(served, classify)
        result = classification_pb2.ClassificationResult()
        for row in scores:
            classes = result.classifications.add().classes
            for label, score in zip(labels, row, strict=True):
                classes.add(label=label, score=float(score))
        return classification_pb2.ClassificationResponse(result=result, model_spec=_spec(served))

    @grpc_edge
    async def Regress(
        self, request: regression_pb2.RegressionRequest, context: Context
    ) -> regression_pb2.RegressionResponse:
        served = self._resolve(request.model_spec)

        async def regress() -> Array:
            x = self._features(served, request.model_spec, request.input)
            return await self.plane.regress(served, x, PROTOCOL)

        values = await self._counted(served, regress)
        result = regression_pb2.RegressionResult()
        for value in values.reshape(-1):
            result.regressions.add(value=float(value))
        return regression_pb2.RegressionResponse(result=result, model_spec=_spec(served))


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus: each version's state and, for a failed load, the error."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    @grpc_edge
    async def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: Context
    ) -> get_model_status_pb2.GetModelStatusResponse:
        statuses = self.plane.statuses(*_address(request.model_spec))
        response = get_model_status_pb2.GetModelStatusResponse()
        for s in statuses:
            entry = response.model_version_status.add(version=s.version, state=_STATE[s.state])
            if s.reason:
                entry.status.error_code = _ERROR_UNKNOWN
                entry.status.error_message = s.reason
        return response
