"""TensorFlow Serving REST handlers (status, metadata, predict, classify, regress)."""

from __future__ import annotations

from dataclasses import dataclass

from pier.errors import InvalidInput
from pier.serving.dataplane import DataPlane
from pier.serving.model import Array
from pier.serving.protocols import tfs_codec, tfs_metadata
from pier.serving.protocols.bounds import parse_version
from pier.serving.protocols.http import Response, json_response
from pier.serving.served import ServedVersion

PROTOCOL = "tfserving"
VERBS = ("predict", "classify", "regress")


@dataclass(slots=True)
class TfsPath:
    """A parsed ``/v1/models/...`` path."""

    model: str
    version: int | None = None
    label: str | None = None
    metadata: bool = False
    verb: str | None = None


def parse_path(path: str) -> TfsPath | None:
    """Parse what follows ``/v1/models``; None means the model list."""
    rest = path[len("/v1/models") :]
    if rest in ("", "/"):
        return None
    if not rest.startswith("/"):
        raise InvalidInput(f"Malformed request: {path}")
    verb = None
    last = rest.rfind("/")
    colon = rest.find(":", last)
    if colon != -1:
        verb = rest[colon + 1 :]
        rest = rest[:colon]
        if verb not in VERBS:
            raise InvalidInput(
                f"Malformed request: unknown method ':{verb}' (use :predict, :classify or :regress)"
            )
    segments = rest[1:].split("/")
    parsed = TfsPath(segments[0], verb=verb)
    if not parsed.model:
        raise InvalidInput(f"Malformed request: {path}")
    tail = segments[1:]
    if len(tail) >= 2 and tail[0] == "versions":
        try:
            parsed.version = parse_version(tail[1])
        except InvalidInput as exc:
            raise InvalidInput(f"Malformed request: {exc.message}") from None
        tail = tail[2:]
    elif len(tail) >= 2 and tail[0] == "labels":
        parsed.label = tail[1]
        tail = tail[2:]
    if tail == ["metadata"] and verb is None:
        parsed.metadata = True
    elif tail:
        raise InvalidInput(f"Malformed request: {path}")
    return parsed


def model_status(plane: DataPlane, p: TfsPath) -> Response:
    """TF Serving's status body, plus KServe V1's ``name``/``ready`` keys in one object."""
    statuses = plane.statuses(p.model, p.version, p.label)
    ready = any(s.state.v2 == "READY" for s in statuses)
    rows = tfs_metadata.model_status(statuses)
    return json_response({"name": p.model, "ready": ready, "model_version_status": rows})


def model_metadata(served: ServedVersion) -> Response:
    return json_response(
        {
            "model_spec": {
                "name": served.name,
                "signature_name": "",
                "version": served.version_str,
            },
            "metadata": {"signature_def": tfs_metadata.signature_defs(served)},
        }
    )


def predict_request(
    served: ServedVersion, body: bytes, max_elements: int
) -> tfs_codec.PredictRequest:
    """Decode a predict request for a model version, checking its signature name."""
    request = tfs_codec.decode_predict(body, served.model.inputs, max_elements)
    if request.signature_name != tfs_metadata.SIGNATURE:  # the default needs no check
        tfs_metadata.check_signature(request.signature_name)
    return request


def predict_response(request: tfs_codec.PredictRequest, outputs: dict[str, Array]) -> Response:
    """Encode predict outputs in the request's format (rows or columns)."""
    return Response(200, tfs_codec.encode_predict(outputs, request.row_format))


async def classify(plane: DataPlane, served: ServedVersion, body: bytes) -> Response:
    signature, x = tfs_codec.decode_examples(body, served.model.feature_names)
    tfs_metadata.check_signature(signature)
    labels, scores = await plane.classify(served, x, PROTOCOL)
    return Response(200, tfs_codec.encode_classify(labels, scores))


async def regress(plane: DataPlane, served: ServedVersion, body: bytes) -> Response:
    signature, x = tfs_codec.decode_examples(body, served.model.feature_names)
    tfs_metadata.check_signature(signature)
    values = await plane.regress(served, x, PROTOCOL)
    return Response(200, tfs_codec.encode_regress(values))
