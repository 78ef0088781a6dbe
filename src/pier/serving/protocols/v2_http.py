"""Open Inference Protocol (KServe V2 / Triton) REST handlers over the data plane."""

from __future__ import annotations

from typing import Any

import orjson

import pier
from pier.errors import InvalidInput, NotFound
from pier.serving.dataplane import DataPlane
from pier.serving.modelconfig import parse_config
from pier.serving.protocols import v2
from pier.serving.protocols.http import (
    OCTETS,
    MethodNotAllowed,
    RequestHeaders,
    Response,
    json_response,
)
from pier.serving.served import ServedVersion

EXTENSIONS = [
    "binary_tensor_data",
    "classification",
    "model_configuration",
    "model_repository",
    "statistics",
]

PROTOCOL = "v2"


def server_metadata() -> Response:
    return json_response({"name": "pier", "version": pier.__version__, "extensions": EXTENSIONS})


def model_metadata(served: ServedVersion, versions: list[str]) -> Response:
    return json_response(
        {
            "name": served.name,
            "versions": versions,
            "platform": served.model.platform,
            "inputs": [t.as_json() for t in served.model.inputs],
            "outputs": [t.as_json() for t in served.model.outputs],
        }
    )


def parse_version(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(f"version '{text}' is not a positive integer")
    return int(text)


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


async def infer(
    plane: DataPlane, served: ServedVersion, body: bytes, headers: RequestHeaders
) -> Response:
    """Decode a V2 infer request (JSON or binary), run it, encode the reply the same way."""
    if headers.inference_header_length == 0:
        if len(served.model.inputs) != 1:
            raise InvalidInput(
                "a raw binary request (Inference-Header-Content-Length: 0) needs a model "
                f"with exactly one input; '{served.name}' has {len(served.model.inputs)}"
            )
        request = v2.decode_raw_request(body, served.model.inputs[0], served.model.batched)
    else:
        request = v2.decode_infer_request(body, headers.inference_header_length)
    wanted = [o.name for o in request.outputs] if request.outputs is not None else None
    outputs = await plane.infer(served, request.inputs, PROTOCOL, wanted)
    encoded: list[tuple[str, Any, bool]] = []
    if request.outputs is None:
        encoded = [(name, arr, request.binary_output) for name, arr in outputs.items()]
    else:
        for ro in request.outputs:
            arr = outputs[ro.name]
            if ro.classification:
                arr = v2.classify_output(
                    arr, ro.classification, served.config.class_labels, served.model.batched
                )
            binary = request.binary_output if ro.binary is None else ro.binary
            encoded.append((ro.name, arr, binary))
    body_out, header_length = v2.encode_infer_response(
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


def model_config(served: ServedVersion) -> Response:
    """A Triton-style ModelConfig JSON (what perf_analyzer and tritonclient read)."""
    cfg = served.config
    batching = cfg.dynamic_batching
    max_batch = batching.max_batch_size if batching is not None else 0

    def dims(shape: tuple[int, ...]) -> list[int]:
        return list(shape[1:]) if max_batch > 0 else list(shape)

    data: dict[str, Any] = {
        "name": served.name,
        "platform": served.model.platform,
        "backend": served.model.runtime,
        "max_batch_size": max_batch,
        "input": [
            {"name": t.name, "data_type": _triton_type(t.datatype), "dims": dims(t.shape)}
            for t in served.model.inputs
        ],
        "output": [
            {"name": t.name, "data_type": _triton_type(t.datatype), "dims": dims(t.shape)}
            for t in served.model.outputs
        ],
        "instance_group": [{"name": served.name, "kind": "KIND_CPU", "count": cfg.instances}],
        "model_transaction_policy": {"decoupled": False},
        "version_policy": _version_policy(served),
        "parameters": {k: {"string_value": str(v)} for k, v in cfg.parameters.items()},
    }
    if batching is not None:
        data["dynamic_batching"] = {
            "preferred_batch_size": batching.preferred_batch_sizes,
            "max_queue_delay_microseconds": int(batching.max_queue_delay_ms * 1000),
        }
    return json_response(data)


def _triton_type(datatype: str) -> str:
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"


def _version_policy(served: ServedVersion) -> dict[str, Any]:
    policy = served.config.version_policy
    if policy.all:
        return {"all": {}}
    if policy.specific is not None:
        return {"specific": {"versions": policy.specific}}
    return {"latest": {"num_versions": policy.latest or 1}}


def _duration(count: int, ns: int) -> dict[str, int]:
    return {"count": count, "ns": ns}


def statistics(servable: list[ServedVersion]) -> Response:
    stats = []
    for s in servable:
        st = s.stats
        stats.append(
            {
                "name": s.name,
                "version": s.version_str,
                "last_inference": st.last_inference_ms,
                "inference_count": st.inference_count,
                "execution_count": s.runner.executions,
                "inference_stats": {
                    "success": _duration(st.success, st.success_ns),
                    "fail": _duration(st.failure, st.failure_ns),
                    "queue": _duration(st.success, st.queue_ns),
                    "compute_input": _duration(st.success, 0),
                    "compute_infer": _duration(st.success, st.compute_ns),
                    "compute_output": _duration(st.success, 0),
                    "cache_hit": _duration(0, 0),
                    "cache_miss": _duration(0, 0),
                },
                "batch_stats": [],
                "memory_usage": [],
                "response_stats": {},
            }
        )
    return json_response({"model_stats": stats})


def repository_index(plane: DataPlane, body: bytes) -> Response:
    ready_only = False
    if body.strip():
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"repository index body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInput("repository index body must be a JSON object")
        ready_only = bool(data.get("ready", False))
    rows = []
    for name, status in plane.repository.index():
        if status is None:
            if not ready_only:
                rows.append({"name": name, "state": "UNAVAILABLE", "reason": "not loaded"})
            continue
        if ready_only and status.state.v2 != "READY":
            continue
        row: dict[str, Any] = {
            "name": name,
            "version": str(status.version),
            "state": status.state.v2,
        }
        if status.reason:
            row["reason"] = status.reason
        rows.append(row)
    return json_response(rows)


async def repository_action(plane: DataPlane, name: str, action: str, body: bytes) -> Response:
    params: dict[str, Any] = {}
    if body.strip():
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"{action} body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInput(f"{action} body must be a JSON object")
        params = data.get("parameters") or {}
        if not isinstance(params, dict):
            raise InvalidInput(f"{action}: 'parameters' must be an object")
    if action == "load":
        override = None
        if "config" in params:
            text = params["config"]
            try:
                data = orjson.loads(text) if isinstance(text, str | bytes) else text
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"load: parameters.config is not valid JSON: {exc}") from None
            override = parse_config(data, f"load '{name}': parameters.config")
        await plane.repository.load_model(name, override)
        return json_response({"name": name, "load": True})
    if action == "unload":
        await plane.repository.unload_model(name)
        return json_response({"name": name, "unload": True})
    raise NotFound(f"unknown repository action '{action}'; use load or unload")


def check_method(method: str, allowed: str) -> None:
    if method != allowed:
        raise MethodNotAllowed(f"use {allowed} here, not {method}")
