"""Protocol-neutral documents: metadata, config, statistics, status, repository index.

Each function returns the JSON-shaped dict the REST protocols send. The gRPC services
turn the same dicts into their messages (the field names are the proto's), so both
transports always report the same facts.
"""

from __future__ import annotations

from typing import Any

import orjson

import pier
from pier.errors import InvalidInput, NotFound
from pier.serving.modelconfig import ModelConfig, parse_config
from pier.serving.served import ServedVersion
from pier.serving.status import VersionStatus
from pier.serving.tensors import TensorSpec

EXTENSIONS = [
    "binary_tensor_data",
    "classification",
    "model_configuration",
    "model_repository",
    "statistics",
]

SIGNATURE = "serving_default"

_TF_DTYPES = {
    "BOOL": "DT_BOOL",
    "UINT8": "DT_UINT8",
    "UINT16": "DT_UINT16",
    "UINT32": "DT_UINT32",
    "UINT64": "DT_UINT64",
    "INT8": "DT_INT8",
    "INT16": "DT_INT16",
    "INT32": "DT_INT32",
    "INT64": "DT_INT64",
    "FP16": "DT_HALF",
    "BF16": "DT_BFLOAT16",
    "FP32": "DT_FLOAT",
    "FP64": "DT_DOUBLE",
    "BYTES": "DT_STRING",
}


def server_metadata() -> dict[str, Any]:
    return {"name": "pier", "version": pier.__version__, "extensions": EXTENSIONS}


def model_metadata(served: ServedVersion, versions: list[str]) -> dict[str, Any]:
    return {
        "name": served.name,
        "versions": versions,
        "platform": served.model.platform,
        "inputs": [t.as_json() for t in served.model.inputs],
        "outputs": [t.as_json() for t in served.model.outputs],
    }


def model_config(served: ServedVersion) -> dict[str, Any]:
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
    return data


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


def statistics(servable: list[ServedVersion]) -> dict[str, Any]:
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
    return {"model_stats": stats}


def repository_index(
    index: list[tuple[str, VersionStatus | None]], ready_only: bool
) -> list[dict[str, Any]]:
    """The repository extension's index rows, from the data plane's ``index()``."""
    rows: list[dict[str, Any]] = []
    for name, status in index:
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
    return rows


def load_override(name: str, params: dict[str, Any]) -> ModelConfig | None:
    """The repository extension's load parameters: an optional ``config`` JSON override."""
    if "config" not in params:
        return None
    text = params["config"]
    try:
        data = orjson.loads(text) if isinstance(text, str | bytes) else text
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"load: parameters.config is not valid JSON: {exc}") from None
    return parse_config(data, f"load '{name}': parameters.config")


def tfs_status(statuses: list[VersionStatus]) -> list[dict[str, Any]]:
    """TF Serving's model_version_status entries."""
    return [
        {
            "version": str(s.version),
            "state": s.state.tfserving,
            "status": {"error_code": "UNKNOWN" if s.reason else "OK", "error_message": s.reason},
        }
        for s in statuses
    ]


def _tensor_info(t: TensorSpec) -> dict[str, Any]:
    return {
        "dtype": _TF_DTYPES.get(t.datatype, "DT_INVALID"),
        "tensor_shape": {
            "dim": [{"size": str(d), "name": ""} for d in t.shape],
            "unknown_rank": False,
        },
        "name": t.name,
    }


def tfs_signature_defs(served: ServedVersion) -> dict[str, Any]:
    """The SignatureDefMap of a model: one ``serving_default`` predict signature."""
    signature = {
        "inputs": {t.name: _tensor_info(t) for t in served.model.inputs},
        "outputs": {t.name: _tensor_info(t) for t in served.model.outputs},
        "method_name": "tensorflow/serving/predict",
    }
    return {"signature_def": {SIGNATURE: signature}}


def check_signature(name: str) -> None:
    if name not in (SIGNATURE, ""):
        raise NotFound(
            f'Serving signature name: "{name}" not found in signature def; use "{SIGNATURE}"'
        )
