"""Open Inference Protocol (KServe V2 / Triton) REST handlers over the data plane."""

from __future__ import annotations

from typing import Any

import orjson

from pier.errors import InvalidInput, MethodNotAllowed, NotFound
from pier.serving.dataplane import DataPlane
from pier.serving.model import Array
from pier.serving.protocols import v2_codec, v2_repository
from pier.serving.protocols.bounds import parse_version
from pier.serving.protocols.http import (
    OCTETS,
    RequestHeaders,
    Response,
    json_response,
)
from pier.serving.served import ServedVersion

PROTOCOL = "v2"


def parse_model_path(path: str) -> tuple[str, int | None, str | None]:
    """Split ``/v2/models/{m}[/versions/{v}][/{action}]``; action None = not a model path."""
    parts = path.split("/")
    if len(parts) < 4 or parts[2] != "models" or (len(parts) == 4 and parts[3] == "stats"):
        return "", None, None
    name = parts[3]
    rest = parts[4:]
    version = None
    if len(rest) >= 2 and rest[0] == "versions":
        version = parse_version(rest[1])
        rest = rest[2:]
    if not rest:
        return name, version, ""
    if len(rest) == 1:
        return name, version, rest[0]
    return "", None, None


def infer_request(
    served: ServedVersion, body: bytes, headers: RequestHeaders, max_elements: int
) -> v2_codec.V2Request:
    """Decode a V2 infer request for a model version: JSON, binary, or raw binary."""
    if headers.inference_header_length == 0:
        if len(served.model.inputs) != 1:
            raise InvalidInput(
                "a raw binary request (Inference-Header-Content-Length: 0) needs a model "
                f"with exactly one input; '{served.name}' has {len(served.model.inputs)}"
            )
        return v2_codec.decode_raw_request(
            body, served.model.inputs[0], served.model.batched, max_elements
        )
    return v2_codec.decode_infer_request(body, headers.inference_header_length, max_elements)


def requested_outputs(request: v2_codec.V2Request) -> list[str] | None:
    """The output names the data plane should return; None for all of them."""
    return None if request.outputs is None else [o.name for o in request.outputs]


def infer_response(
    served: ServedVersion, request: v2_codec.V2Request, outputs: dict[str, Array]
) -> Response:
    """Encode the outputs of a V2 infer request, as JSON or binary as the request asked."""
    encoded: list[tuple[str, Any, bool]] = []
    if request.outputs is None:
        for name, arr in outputs.items():
            encoded.append((name, arr, request.binary_output))
    else:
        labels = served.config.class_labels
        for ro, arr in v2_codec.classified(outputs, request.outputs, labels, served.model.batched):
            binary = request.binary_output if ro.binary is None else ro.binary
            encoded.append((ro.name, arr, binary))
    body_out, header_length = v2_codec.encode_infer_response(
        served.name, served.version_str, request.id, encoded
    )
    if header_length is None:
        return Response(200, body_out)
    return Response(
        200,
        body_out,
        OCTETS,
        [(b"inference-header-content-length", str(header_length).encode())],
    )


def repository_index(plane: DataPlane, body: bytes) -> Response:
    data = _json_object(body, "repository index")
    return json_response(
        v2_repository.repository_index(plane.index(), bool(data.get("ready", False)))
    )


async def repository_action(plane: DataPlane, name: str, action: str, body: bytes) -> Response:
    params = _json_object(body, action).get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidInput(f"{action}: 'parameters' must be an object")
    if action == "load":
        await plane.load(name, v2_repository.load_override(name, params))
        return json_response({"name": name, "load": True})
    if action == "unload":
        await plane.unload(name)
        return json_response({"name": name, "unload": True})
    raise NotFound(f"unknown repository action '{action}'; use load or unload")


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{what} body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{what} body must be a JSON object")
    return data


def check_method(method: str, allowed: str) -> None:
    if method != allowed:
        raise MethodNotAllowed(f"use {allowed} here, not {method}")
