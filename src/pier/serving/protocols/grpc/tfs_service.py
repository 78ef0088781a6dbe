"""TF Serving's gRPC API: ``PredictionService`` (Predict, GetModelMetadata, Classify, Regress)
and ``ModelService.GetModelStatus``, wire-compatible with TF Serving's own messages."""

from __future__ import annotations

import time
from typing import Any

from google.protobuf import any_pb2, json_format, wrappers_pb2

from pier.errors import InvalidInput, PierError
from pier.serving.dataplane import DataPlane
from pier.serving.protocols import documents
from pier.serving.protocols.bounds import check_version
from pier.serving.protocols.grpc import codec
from pier.serving.protocols.grpc.errors import abort
from pier.serving.protocols.grpc.protos.tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from pier.serving.served import ServedVersion
from pier.serving.status import VersionState

PROTOCOL = "tfserving-grpc"

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


def _resolve(plane: DataPlane, spec: Any) -> ServedVersion:
    if not spec.name:
        raise InvalidInput("model_spec.name is empty")
    choice = spec.WhichOneof("version_choice")
    version = check_version(spec.version.value) if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    return plane.resolve(spec.name, version, label)


def _spec(served: ServedVersion, signature: str = documents.SIGNATURE) -> Any:
    return model_pb2.ModelSpec(
        name=served.name,
        version=wrappers_pb2.Int64Value(value=served.version),
        signature_name=signature,
    )


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, metadata, classify and regress over the shared data plane."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    async def Predict(self, request: Any, context: Any) -> Any:
        try:
            served = _resolve(self.plane, request.model_spec)
        except PierError as exc:
            await abort(context, exc)
        t0 = time.perf_counter()
        try:
            documents.check_signature(request.model_spec.signature_name)
            declared = {s.name: s.datatype for s in served.model.inputs}
            inputs = {
                name: codec.tensor_proto_to_array(
                    tp, declared.get(name), name=name, max_elements=self.plane.max_elements
                )
                for name, tp in request.inputs.items()
            }
            wanted = list(request.output_filter) or None
            outputs = await self.plane.infer(served, inputs, PROTOCOL, wanted)
        except PierError as exc:
            self.plane.record_failure(served, PROTOCOL, exc, time.perf_counter() - t0)
            await abort(context, exc)
        response = predict_pb2.PredictResponse(model_spec=_spec(served))
        for name, arr in outputs.items():
            response.outputs[name].CopyFrom(codec.array_to_tensor_proto(arr))
        return response

    async def GetModelMetadata(self, request: Any, context: Any) -> Any:
        try:
            served = _resolve(self.plane, request.model_spec)
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise InvalidInput(
                    f"metadata_field must be ['signature_def'] (the only one served), got {fields}"
                )
        except PierError as exc:
            await abort(context, exc)
        signatures = json_format.ParseDict(
            documents.tfs_signature_defs(served), get_model_metadata_pb2.SignatureDefMap()
        )
        packed = any_pb2.Any()
        packed.Pack(signatures)
        response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=_spec(served, ""))
        response.metadata["signature_def"].CopyFrom(packed)
        return response

    async def Classify(self, request: Any, context: Any) -> Any:
        try:
            served = _resolve(self.plane, request.model_spec)
            documents.check_signature(request.model_spec.signature_name)
            x = codec.examples_to_matrix(request.input, served.model.feature_names)
            labels, scores = await self.plane.classify(served, x)
        except PierError as exc:
            await abort(context, exc)
        result = classification_pb2.ClassificationResult()
        for row in scores:
            classes = result.classifications.add().classes
            for label, score in zip(labels, row, strict=True):
                classes.add(label=label, score=float(score))
        return classification_pb2.ClassificationResponse(result=result, model_spec=_spec(served))

    async def Regress(self, request: Any, context: Any) -> Any:
        try:
            served = _resolve(self.plane, request.model_spec)
            documents.check_signature(request.model_spec.signature_name)
            x = codec.examples_to_matrix(request.input, served.model.feature_names)
            values = await self.plane.regress(served, x)
        except PierError as exc:
            await abort(context, exc)
        result = regression_pb2.RegressionResult()
        for value in values.reshape(-1):
            result.regressions.add(value=float(value))
        return regression_pb2.RegressionResponse(result=result, model_spec=_spec(served))


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus: each version's state and, for a failed load, the error."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    async def GetModelStatus(self, request: Any, context: Any) -> Any:
        spec = request.model_spec
        try:
            if not spec.name:
                raise InvalidInput("model_spec.name is empty")
            choice = spec.WhichOneof("version_choice")
            version = check_version(spec.version.value) if choice == "version" else None
            if choice == "version_label":
                version = self.plane.resolve(spec.name, None, spec.version_label).version
            statuses = self.plane.repository.statuses(spec.name, version)
        except PierError as exc:
            await abort(context, exc)
        response = get_model_status_pb2.GetModelStatusResponse()
        for s in statuses:
            entry = response.model_version_status.add(version=s.version, state=_STATE[s.state])
            if s.reason:
                entry.status.error_code = _ERROR_UNKNOWN
                entry.status.error_message = s.reason
        return response
